"""A dispatcher program for the runner tests: ``python child.py MODE ARG...``.

Modes:

* ``file PATH``: print the file (a runJobs result fixture) and exit 0;
* ``big BYTES``: print one runJobs result of at least BYTES bytes (many jobs) and exit 0;
* ``stubborn SECONDS DIR``: ignore SIGTERM, write DIR/<pid> (pid and pgid), sleep, exit 0;
* ``fail``: write to stderr and exit 1;
* ``orphan PIDFILE``: start ``sleep`` in a new session holding our stdout open, write its pid
  to PIDFILE (appended), print an empty result and exit 0 at once;
* ``record DIR ARG...``: write a JSON file (argv, pid, pgid, start time) into DIR, print an
  empty result, exit 0;
* ``hold DIR``: create DIR/running/<pid>, wait until DIR/release exists, remove the marker,
  append the pid to DIR/done, print an empty result.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

EMPTY = '{"jobs": [], "reached": "none-ready", "backoffs": [], "elapsed": 0}'


def big(size: int) -> None:
    job = {"type": "null", "status": "ok", "error": None, "time": 1}
    count = size // len(json.dumps(job)) + 1
    doc = {"jobs": [job] * count, "reached": "job-limit", "backoffs": [], "elapsed": count}
    sys.stdout.write(json.dumps(doc, indent=4))


def stubborn(seconds: float, directory: Path) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    directory.mkdir(exist_ok=True)
    (directory / str(os.getpid())).write_text(f"{os.getpid()} {os.getpgid(0)}")
    time.sleep(seconds)
    print(EMPTY)


def record(directory: Path, args: list[str]) -> None:
    data = {"argv": args, "pid": os.getpid(), "pgid": os.getpgid(0), "t": time.time()}
    (directory / f"{os.getpid()}.json").write_text(json.dumps(data))
    print(EMPTY)


def hold(directory: Path) -> None:
    marker = directory / "running" / str(os.getpid())
    marker.parent.mkdir(exist_ok=True)
    marker.write_text("")
    deadline = time.monotonic() + 30
    while not (directory / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # a test helper waiting for the test's go-ahead
    marker.unlink()
    with (directory / "done").open("a") as done:
        done.write(f"{os.getpid()}\n")
    print(EMPTY)


def main(argv: list[str]) -> int:
    mode, args = argv[0], argv[1:]
    if mode == "file":
        sys.stdout.write(Path(args[0]).read_text())
    elif mode == "big":
        big(int(args[0]))
    elif mode == "stubborn":
        stubborn(float(args[0]), Path(args[1]))
    elif mode == "fail":
        sys.stderr.write("PHP Fatal error: deliberate failure for the test\n")
        return 1
    elif mode == "orphan":
        sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
        with Path(args[0]).open("a") as pidfile:
            pidfile.write(f"{sleeper.pid}\n")
        print(EMPTY, flush=True)
    elif mode == "record":
        record(Path(args[0]), args[1:])
    elif mode == "hold":
        hold(Path(args[0]))
    else:
        raise SystemExit(f"unknown mode {mode}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
