"""The jobrunner's supervision: dispatch rate, exit-to-spawn latency, idle CPU.

1. **dispatch rate**: an in-process ``Runner`` with N slots (default 4) whose command
   dispatcher is ``/bin/echo '{"jobs":[]}'`` (a ``true`` that prints an empty result), on a
   fixed ready-queue map, for ``--seconds``: runs started and finished per second, and the
   runner's own CPU per run.
2. **exit -> next spawn** in the same slot: the dispatcher is
   ``bash -c 'echo {"jobs":[],"t":$EPOCHREALTIME}'``, so each child reports the wall time just
   before it exits; the runner's spawn hook notes the time the next process in that slot has
   been started. p50/p90/p99 of the difference. The PHP runner polled every 100 ms.
3. **idle CPU**: ``mwjobs chron`` and ``mwjobs runner`` (4 slots) as real processes on a
   private redis-server with empty queues, for ``--idle`` seconds (default 60): CPU seconds
   of each process (utime + stime from /proc), and of redis-server.

    .venv/bin/python bench/runner.py [--slots 4] [--seconds 10] [--idle 60] [--skip-idle]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchredis import private_redis

from mwjobs.config import RunnerConfig, parse_config
from mwjobs.metrics import NullCounters
from mwjobs.runner.dispatch import RunOutcome
from mwjobs.runner.result import RunSummary
from mwjobs.runner.service import Runner
from mwjobs.runner.slots import Slot

MWJOBS = Path(sys.executable).with_name("mwjobs")
QUEUE = ("null", "benchwiki")


class FixedMap:
    """A ready-queue map that always lists one queue."""

    def read(self) -> dict[tuple[str, str], int]:
        return {QUEUE: 1}

    def close(self) -> None:
        pass


def config(argv: list[str], slots: int, redis: str = "127.0.0.1:1") -> RunnerConfig:
    doc = {
        "groups": {"bench": {"runners": slots, "include": ["*"]}},
        "redis": {"aggregators": [redis], "queues": [redis]},
        "dispatcher": {"kind": "command", "argv": argv},
        # Re-read the (in-memory) map every turn: the "lay off an emptied queue until the
        # next read" rule would otherwise allow one run per second on a one-queue map.
        "mwjobs": {"timing": {"aggregator_cache_ttl": 0}},
    }
    return parse_config(json.dumps(doc), "bench.json")


def finish(runner: Runner) -> None:
    """Stop as the daemon does on SIGTERM (the trivial runs end at once), then close."""
    runner.request_stop()
    while not runner.finished:
        runner.step(max_wait=0.1)


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def dispatch_rate(slots: int, seconds: float) -> None:
    runner = Runner(config(["/bin/echo", '{"jobs":[]}'], slots), ready=FixedMap(),
                    metrics=NullCounters(), guard=False)  # fmt: skip
    with runner:
        runner.step(max_wait=0.1)  # warm up: first spawns
        start_runs, start_cpu, started = runner.totals.finished, cpu_self(), time.monotonic()
        while time.monotonic() - started < seconds:
            runner.step(max_wait=0.1)
        wall = time.monotonic() - started
        runs, cpu = runner.totals.finished - start_runs, cpu_self() - start_cpu
        finish(runner)
    runner.close()
    errors = runner.totals.errors
    print(f"dispatch rate, {slots} slots, /bin/echo: {runs / wall:,.0f} runs/s "
          f"({runs:,} in {wall:.1f} s, {errors} errors); runner CPU {cpu * 1e6 / runs:,.0f} µs "
          f"per run ({cpu / wall * 100:.0f} % of one core)")  # fmt: skip


def latency(slots: int, seconds: float) -> None:
    if shutil.which("bash") is None:
        print("exit -> spawn latency: skipped (no bash for $EPOCHREALTIME)")
        return
    exited: dict[int, float] = {}
    gaps: list[float] = []

    def on_finish(slot: Slot, outcome: RunOutcome, result: RunSummary, now: float) -> None:
        with contextlib.suppress(ValueError, KeyError):
            exited[slot.index] = float(json.loads(outcome.stdout)["t"])

    def on_spawn(slot: Slot, now: float) -> None:
        spawned = time.time()  # the hook runs as soon as the new process exists
        if slot.index in exited:
            gaps.append(spawned - exited.pop(slot.index))

    argv = ["bash", "-c", 'echo "{\\"jobs\\":[],\\"t\\":$EPOCHREALTIME}"']
    runner = Runner(config(argv, slots), ready=FixedMap(), metrics=NullCounters(), guard=False,
                    on_spawn=on_spawn, on_finish=on_finish)  # fmt: skip
    with runner:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            runner.step(max_wait=0.1)
        finish(runner)
    runner.close()
    gaps.sort()
    if not gaps:
        print("exit -> spawn latency: no samples")
        return

    def pct(p: float) -> float:
        return gaps[min(len(gaps) - 1, int(p * len(gaps)))] * 1000

    print(f"exit -> next spawn in the slot, {slots} slots, bash: p50 {pct(0.5):.2f} ms, "
          f"p90 {pct(0.9):.2f} ms, p99 {pct(0.99):.2f} ms, max {gaps[-1] * 1000:.2f} ms "
          f"({len(gaps):,} samples; mean {statistics.mean(gaps) * 1000:.2f} ms)")  # fmt: skip


def cpu_of(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(slots: int, seconds: float) -> None:
    with private_redis() as private, tempfile.TemporaryDirectory() as tmp:
        address, server = private.address, private.process
        path = Path(tmp) / "jobrunner.json"
        doc = {
            "groups": {"bench": {"runners": slots, "include": ["*"]}},
            "redis": {"aggregators": [address], "queues": [address]},
            "dispatcher": {"kind": "command", "argv": ["/bin/true"]},
        }
        path.write_text(json.dumps(doc))
        daemons = {
            name: subprocess.Popen(
                [str(MWJOBS), name, "--config-file", str(path)], stdout=subprocess.DEVNULL
            )
            for name in ("runner", "chron")
        }
        try:
            time.sleep(3)  # start-up (imports, first pass) is not idle time
            pids = {name: p.pid for name, p in daemons.items()} | {"redis-server": server.pid}
            before = {name: cpu_of(pid) for name, pid in pids.items()}
            time.sleep(seconds)
            used = {name: cpu_of(pid) - before[name] for name, pid in pids.items()}
        finally:
            for process in daemons.values():
                process.terminate()
                process.wait(10)
    shown = ", ".join(f"{name} {cpu:.2f} s ({cpu / seconds * 100:.2f} %)"
                      for name, cpu in used.items())  # fmt: skip
    print(f"idle CPU over {seconds:.0f} s, empty queues, runner with {slots} slots: {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10, help="per in-process measure")
    parser.add_argument("--idle", type=float, default=60, help="idle measure length")
    parser.add_argument("--skip-idle", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the stop's "ended after SIGTERM" lines are expected
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    dispatch_rate(args.slots, args.seconds)
    for slots in sorted({1, args.slots}):  # 1 slot: no CPU contention between children
        latency(slots, args.seconds)
    if not args.skip_idle:
        idle_cpu(args.slots, args.idle)


if __name__ == "__main__":
    main()
