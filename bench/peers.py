"""mwjobs against RQ, Celery, Dramatiq and Huey: one workload, one private redis-server.

    .venv/bin/python bench/peers.py [--jobs 20000] [--only mwjobs,rq,...]

The peers are installed from bench/requirements.txt into bench/.venv-peers (made on first
run, never the project's .venv); each peer's side runs in that environment
(``peers.py --peer NAME``). For each library, on a flushed server:

* enqueue single: N no-op jobs, one library call each;
* enqueue bulk: N jobs through the library's batch API in chunks of 1,000 (RQ
  ``enqueue_many``, Celery and Dramatiq ``group``, mwjobs a list push; Huey has none);
* drain: N jobs queued, then ONE worker process (threads as the library recommends: 8 for
  Celery, Dramatiq and Huey; RQ's default forking worker; mwjobs one thread claiming
  100 at a time) runs them; the rate is timed from the first job's start to the last one's
  (worker start-up excluded), counted inside the worker (``peers_tasks/common.py``);
* pickup latency: with the worker idle, 200 jobs at 50/s, each carrying its enqueue time;
  the task records now - then. Median and p99;
* baseline (printed under the table, not a library): N plain redis-py ``LPUSH`` calls, one
  per job, on the same server, before and after the libraries: the round-trip ceiling of
  any single enqueue.

mwjobs runs in three configurations: the executor loop in one process, idle-blocked on the
group's waiter (a push hands its job over already claimed, ``mwjobs.queues.redis.handoff``);
the same loop idle-waiting on the push wake-up channel (``mwjobs.queues.redis.wake``) and
popping after each wake-up; and the services as deployed: ``mwjobs chron`` + ``mwjobs
runner`` with one slot and the python dispatcher (its one worker process runs the jobs; the
runner and the chron are two more, mostly idle, processes). mwjobs' enqueue is also timed
with ``lazy_push`` in ``deferred()`` blocks (MediaWiki's lazyPush), printed apart.
"""

# Each library is imported inside its driver: the peers live in bench/.venv-peers, mwjobs in
# the project's .venv, and one side's process never has the other's packages.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from benchredis import private_redis

from mwjobs.queues.redis.replies import byte_list

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-peers"
PEERS = ("rq", "celery", "dramatiq", "huey")
CHUNK = 1000
LATENCY_JOBS = 200
LATENCY_RATE = 50.0
# A worker is timed on at most this many seconds of draining (slow ones on part of the batch).
DRAIN_BUDGET = 60.0
PROGRESS_EVERY = 500  # as peers_tasks/common.py
# MediaWiki's Redis layout has no blocking pop: the polling loop pops again this often...
MWJOBS_IDLE_POLL = 0.0005
# ...and the woken loop at least this often (jobs pushed by MediaWiki publish no wake-up).
MWJOBS_FALLBACK_POLL = 0.1
MWJOBS = Path(sys.executable).with_name("mwjobs")


@dataclass
class Driver:
    """How to feed one library and start its worker."""

    name: str
    enqueue_single: Callable[[], None]
    enqueue_bulk: Callable[[int], None] | None
    enqueue_pickup: Callable[[float], None]
    workers: dict[str, list[str]]  # worker configuration -> argv
    # mwjobs only: one lazy_push call per job inside a deferred block of n jobs (MediaWiki's
    # lazyPush); printed beside the table, never counted as enqueue single.
    enqueue_lazy: Callable[[int], None] | None = None


# -- the peers (run inside bench/.venv-peers) --------------------------------------------------


def rq_driver(url: str) -> Driver:
    from peers_tasks import rq_tasks
    from rq import Queue

    queue = Queue("bench", connection=redis.Redis.from_url(url))
    argv = [str(VENV / "bin" / "rq"), "worker", "--url", url, "--quiet"]

    def bulk(n: int) -> None:
        queue.enqueue_many([Queue.prepare_data(rq_tasks.drain) for _ in range(n)])

    return Driver(
        "rq",
        lambda: queue.enqueue(rq_tasks.drain) and None,
        bulk,
        lambda t: queue.enqueue(rq_tasks.pickup, t) and None,
        {
            "fork per job (default)": [*argv, "bench"],
            "SimpleWorker": [*argv, "-w", "rq.worker.SimpleWorker", "bench"],
        },
    )


def celery_driver(url: str) -> Driver:
    from celery import group
    from peers_tasks import celery_tasks

    def bulk(n: int) -> None:
        group(celery_tasks.drain.s() for _ in range(n)).apply_async()

    argv = [str(VENV / "bin" / "celery"), "-A", "peers_tasks.celery_tasks", "worker",
            "--without-heartbeat", "--without-mingle", "--without-gossip",
            "-l", "WARNING"]  # fmt: skip
    return Driver(
        "celery",
        lambda: celery_tasks.drain.delay() and None,
        bulk,
        lambda t: celery_tasks.pickup.delay(t) and None,
        {
            "threads pool, 8": [*argv, "-P", "threads", "-c", "8"],
            "solo pool": [*argv, "-P", "solo"],
        },
    )


def dramatiq_driver(url: str) -> Driver:
    import dramatiq
    from peers_tasks import dramatiq_tasks

    def bulk(n: int) -> None:
        dramatiq.group(dramatiq_tasks.drain.message() for _ in range(n)).run()

    argv = [str(VENV / "bin" / "dramatiq"), "peers_tasks.dramatiq_tasks", "--processes", "1"]
    return Driver(
        "dramatiq",
        lambda: dramatiq_tasks.drain.send() and None,
        bulk,
        lambda t: dramatiq_tasks.pickup.send(t) and None,
        {"8 threads (default)": [*argv, "--threads", "8"], "1 thread": [*argv, "--threads", "1"]},
    )


def huey_driver(url: str) -> Driver:
    from peers_tasks import huey_tasks

    argv = [str(VENV / "bin" / "huey_consumer"), "peers_tasks.huey_tasks.huey", "-k", "thread",
            "-q"]  # fmt: skip
    return Driver(
        "huey",
        lambda: huey_tasks.drain() and None,
        None,
        lambda t: huey_tasks.pickup(t) and None,
        {"8 threads": [*argv, "-w", "8"], "1 thread (default)": [*argv, "-w", "1"]},
    )


# -- mwjobs (run in the project's environment) -----------------------------------------------


def mwjobs_driver(url: str) -> Driver:
    from mwjobs.group import JobQueueGroup, deferred
    from mwjobs.model.data import JobSpec
    from mwjobs.queues.redis import RedisBackend

    group = JobQueueGroup(RedisBackend(url), "benchwiki")
    queue = group.queue("benchNoop")

    def bulk(n: int) -> None:
        queue.push([JobSpec.create("benchNoop", {}) for _ in range(n)])

    def lazy(n: int) -> None:
        with deferred():
            for _ in range(n):
                group.lazy_push(JobSpec.create("benchNoop", {}))

    this = [sys.executable, str(Path(__file__).resolve())]
    return Driver(
        "mwjobs",
        lambda: queue.push([JobSpec.create("benchNoop", {})]) and None,
        bulk,
        lambda t: queue.push([JobSpec.create("benchNoop", {"t": t})]) and None,
        {
            "executor, claims of 100, pushes hand over jobs": [
                *this, "--mwjobs-worker", "handoff", "--url", url
            ],
            "executor, claims of 100, woken by pushes": [
                *this, "--mwjobs-worker", "wake", "--url", url
            ],
            "chron + runner + python dispatcher (1 slot)": [
                *this, "--mwjobs-services", "--url", url
            ],
        },
        enqueue_lazy=lazy,
    )


def _stop_on_sigterm() -> Callable[[], bool]:
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    return lambda: stop


def mwjobs_worker(url: str, idle: str) -> None:
    """The mwjobs worker: one process claiming 100 jobs at a time with the executor; when
    the queue is empty it blocks until a push hands it a job (``handoff``, the group's
    waiter), waits for a push wake-up (``wake``) or pops again 0.5 ms later (``poll``)."""
    import peers_tasks.mwjobs_tasks  # noqa: F401 - registers benchNoop

    from mwjobs.execution.backoff import BackoffFile
    from mwjobs.execution.executor import JobExecutor, RunOptions
    from mwjobs.group import JobQueueGroup
    from mwjobs.model.data import QueuedJob
    from mwjobs.queues.redis import RedisBackend
    from mwjobs.queues.redis.endpoint import parse_redis_endpoint
    from mwjobs.queues.redis.wake import PushListener

    stopped = _stop_on_sigterm()
    listener = PushListener(parse_redis_endpoint(url)) if idle == "wake" else None
    if listener is not None:
        listener.fileno()  # subscribed before the first pop: no push can slip between
    with tempfile.TemporaryDirectory() as tmp:
        executor = JobExecutor(
            JobQueueGroup(RedisBackend(url), "benchwiki"),
            backoffs=BackoffFile(Path(tmp) / "backoffs.json"),
        )
        options = RunOptions(job_type="benchNoop", batch=100)
        waiter = executor.group.waiter("benchNoop") if idle == "handoff" else None
        claimed: list[QueuedJob] = []
        while not stopped():
            if executor.run(options, claimed).jobs:
                claimed = []
                continue
            if waiter is not None:
                claimed = waiter.wait(MWJOBS_FALLBACK_POLL)
            elif listener is None:
                time.sleep(MWJOBS_IDLE_POLL)
            else:
                listener.poll(timeout=MWJOBS_FALLBACK_POLL)
        if waiter is not None:
            executor.hand_back(waiter.close())


def mwjobs_services(url: str) -> None:
    """``mwjobs chron`` and ``mwjobs runner`` (one slot, the python dispatcher) on the
    bench's server, as deployed; SIGTERM stops both."""
    stopped = _stop_on_sigterm()
    address = url.removeprefix("redis://").partition("/")[0]
    config = {
        "groups": {"bench": {"runners": 1, "include": ["benchNoop"]}},
        "redis": {"aggregators": [address], "queues": [address]},
        "dispatcher": {"kind": "python", "modules": ["peers_tasks.mwjobs_tasks"],
                       "paths": [str(HERE)], "batch": 100},
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "jobrunner.json"
        path.write_text(json.dumps(config))
        daemons = [
            subprocess.Popen([str(MWJOBS), name, "--config-file", str(path)],
                             stdout=subprocess.DEVNULL)
            for name in ("chron", "runner")
        ]  # fmt: skip
        while not stopped() and all(d.poll() is None for d in daemons):
            time.sleep(0.1)
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        for daemon in daemons:
            daemon.wait(20)


DRIVERS: dict[str, Callable[[str], Driver]] = {
    "mwjobs": mwjobs_driver,
    "rq": rq_driver,
    "celery": celery_driver,
    "dramatiq": dramatiq_driver,
    "huey": huey_driver,
}


# -- measuring -------------------------------------------------------------------------------


def rate(n: int, work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    return n / (time.perf_counter() - start)


def raw_lpush_rate(url: str, n: int) -> float:
    """The baseline, not a library: N plain redis-py ``LPUSH`` calls, one per job, on the
    same server: what one round trip per job costs through redis-py, the ceiling of any
    "enqueue single"."""
    client = redis.Redis.from_url(url)

    def lpushes(count: int) -> None:
        for i in range(count):
            client.lpush("bench:raw", i)

    client.flushall()
    lpushes(1000)  # warm-up: connect, first allocations
    try:
        return rate(n, lambda: lpushes(n))
    finally:
        client.flushall()
        client.close()


@contextlib.contextmanager
def worker(argv: list[str], url: str, n: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "BENCH_REDIS_URL": url, "BENCH_DRAIN_N": str(n),
           "PYTHONPATH": str(HERE)}  # fmt: skip
    proc = subprocess.Popen(argv, env=env, cwd=HERE)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def measure(driver: Driver, url: str, n: int) -> dict[str, Any]:
    """Enqueue rates once, then drain and pickup latency for each worker configuration."""
    client = redis.Redis.from_url(url)
    client.flushall()
    single = rate(n, lambda: [driver.enqueue_single() for _ in range(n)] and None)
    bulk = None
    if driver.enqueue_bulk is not None:
        client.flushall()
        enqueue_bulk = driver.enqueue_bulk
        bulk = rate(n, lambda: [enqueue_bulk(CHUNK) for _ in range(n // CHUNK)] and None)
    lazy = None
    if driver.enqueue_lazy is not None:
        client.flushall()
        enqueue_lazy = driver.enqueue_lazy
        lazy = rate(n, lambda: [enqueue_lazy(CHUNK) for _ in range(n // CHUNK)] and None)
    workers = {name: drain_and_pickup(driver, argv, client, url, n)
               for name, argv in driver.workers.items()}  # fmt: skip
    return {"enqueue_single": single, "enqueue_bulk": bulk, "enqueue_lazy": lazy,
            "workers": workers}  # fmt: skip


def fill(driver: Driver, n: int) -> None:
    if driver.enqueue_bulk is not None:
        for _ in range(n // CHUNK):
            driver.enqueue_bulk(CHUNK)
    else:
        for _ in range(n):
            driver.enqueue_single()


def drain_and_pickup(
    driver: Driver, argv: list[str], client: redis.Redis, url: str, n: int
) -> dict[str, float]:
    client.flushall()
    fill(driver, n)
    with worker(argv, url, n):
        deadline = time.monotonic() + DRAIN_BUDGET
        while time.monotonic() < deadline:
            if _progress(client)[0] >= n:
                break
            time.sleep(0.05)
        done, first, last = _progress(client)
        if done < PROGRESS_EVERY:
            raise SystemExit(f"{driver.name}: fewer than {PROGRESS_EVERY} jobs ran in time")
        drained = (done - 1) / (last - first)
    client.flushall()  # what a slow worker left; pickups are timed on an idle worker
    with worker(argv, url, n):
        driver.enqueue_pickup(time.time())  # warm-up: the worker is up once this has run
        wait_for(lambda: client.llen("bench:lat") >= 1, 60, f"{driver.name} start-up")
        client.delete("bench:lat")
        for _ in range(LATENCY_JOBS):
            due = time.monotonic() + 1 / LATENCY_RATE
            driver.enqueue_pickup(time.time())
            time.sleep(max(0.0, due - time.monotonic()))
        wait_for(lambda: client.llen("bench:lat") >= LATENCY_JOBS, 60, f"{driver.name} pickups")
    raw = byte_list(client.lrange("bench:lat", 0, -1))
    delays = sorted(float(x) * 1000 for x in raw)
    return {
        "drained": done,
        "drain": drained,
        "latency_median_ms": statistics.median(delays),
        "latency_p99_ms": delays[int(len(delays) * 0.99) - 1],
    }


def _progress(client: redis.Redis) -> tuple[int, float, float]:
    raw = client.get("bench:progress")
    if raw is None:
        return 0, 0.0, 0.0
    count, first, last = raw.split()
    return int(count), float(first), float(last)


# -- orchestration ---------------------------------------------------------------------------


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {VENV} (peers from bench/requirements.txt) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    requirements = HERE / "requirements.txt"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)],
                   check=True)  # fmt: skip
    return python


def run_peer(python: Path, name: str, url: str, n: int) -> dict[str, Any]:
    argv = [str(python), str(Path(__file__).resolve()), "--peer", name, "--url", url,
            "--jobs", str(n)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(HERE), "BENCH_REDIS_URL": url}
    done = subprocess.run(
        argv, capture_output=True, text=True, cwd=HERE, check=False, env=env
    )
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| library | worker | enqueue single (jobs/s) | enqueue bulk (jobs/s) "
        "| drain (jobs/s) | pickup median (ms) | pickup p99 (ms) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        for config, w in r["workers"].items():
            lines.append(
                f"| {name} | {config} | {fmt(r['enqueue_single'])} | {fmt(r['enqueue_bulk'])} "
                f"| {fmt(w['drain'])} | {fmt(w['latency_median_ms'], 2)} "
                f"| {fmt(w['latency_p99_ms'], 2)} |"
            )
    return "\n".join(lines)


def best(r: dict[str, Any]) -> dict[str, float | None]:
    """A library's best figures over its worker configurations."""
    workers = r["workers"].values()
    return {
        "enqueue_single": r["enqueue_single"],
        "enqueue_bulk": r["enqueue_bulk"],
        "drain": max(w["drain"] for w in workers),
        "latency_median_ms": min(w["latency_median_ms"] for w in workers),
        "latency_p99_ms": min(w["latency_p99_ms"] for w in workers),
    }


def baseline_note(raw_lpush: tuple[float, float], results: dict[str, dict[str, Any]]) -> str:
    """The raw LPUSH baseline, measured before and after the libraries, under the table (it
    is not a library). The host's round trip can change during a run; both show it."""
    before, after = raw_lpush
    note = (f"\nBaseline (not a library): raw redis-py {redis.__version__} LPUSH, one call per "
            f"job, same server: {fmt(before)} jobs/s before the libraries, {fmt(after)} after; "
            "the round-trip ceiling of enqueue single.")  # fmt: skip
    if "mwjobs" in results:
        share = results["mwjobs"]["enqueue_single"] / max(raw_lpush)
        note += f" mwjobs enqueue single reaches {share:.0%} of the better one."
        lazy = results["mwjobs"].get("enqueue_lazy")
        if lazy:
            peers = [r["enqueue_single"] for name, r in results.items() if name != "mwjobs"]
            note += (f"\n\nmwjobs lazy_push (MediaWiki's lazyPush: one call per job inside a "
                     f"deferred() block of {CHUNK:,}, pushed when the block ends): "
                     f"{fmt(lazy)} jobs/s")  # fmt: skip
            if peers:
                note += f", {lazy / max(peers):.1f}x the best peer's enqueue single"
            note += "."
    return note


def ratios(results: dict[str, dict[str, Any]]) -> str:
    if "mwjobs" not in results:
        return ""
    ours = best(results["mwjobs"])
    lines = ["", "mwjobs vs each peer's best configuration (higher is better for mwjobs):", "",
             "| peer | enqueue single | enqueue bulk | drain | pickup median | pickup p99 |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, r in results.items():
        if name == "mwjobs":
            continue
        theirs = best(r)
        cells = []
        for key in ("enqueue_single", "enqueue_bulk", "drain"):
            mine, other = ours[key], theirs[key]
            cells.append("n/a" if not mine or not other else f"{mine / other:.1f}x")
        for key in ("latency_median_ms", "latency_p99_ms"):
            mine, other = ours[key], theirs[key]
            cells.append("n/a" if not mine or not other else f"{other / mine:.1f}x")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--only", default=",".join(("mwjobs", *PEERS)))
    parser.add_argument("--peer", help=argparse.SUPPRESS)  # the peer side, in the peers' venv
    parser.add_argument("--mwjobs-worker", choices=("handoff", "wake", "poll"),
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--mwjobs-services", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    if args.mwjobs_worker:
        mwjobs_worker(args.url, args.mwjobs_worker)
        return
    if args.mwjobs_services:
        mwjobs_services(args.url)
        return
    if args.peer:
        print(json.dumps(measure(DRIVERS[args.peer](args.url), args.url, args.jobs)))
        return
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    python = ensure_venv() if set(names) & set(PEERS) else Path(sys.executable)
    results: dict[str, dict[str, Any]] = {}
    with private_redis() as server:
        url = server.url
        print("measuring the raw LPUSH baseline ...", file=sys.stderr)
        raw_lpush_before = raw_lpush_rate(url, args.jobs)
        for name in names:
            print(f"measuring {name} ...", file=sys.stderr)
            if name == "mwjobs":
                results[name] = measure(mwjobs_driver(url), url, args.jobs)
            else:
                results[name] = run_peer(python, name, url, args.jobs)
        raw_lpush = (raw_lpush_before, raw_lpush_rate(url, args.jobs))
    print(f"{args.jobs:,} no-op jobs, one worker process each, one private redis-server\n")
    print(table(results))
    print(baseline_note(raw_lpush, results))
    print(ratios(results))


if __name__ == "__main__":
    main()
