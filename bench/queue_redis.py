"""Throughput of the Redis backend: batched push, pop_many + ack_many, and single pop + ack
against a raw redis-py round trip (PING), on a private redis-server (or ``--url``).

    .venv/bin/python bench/queue_redis.py [--jobs 20000] [--batch 100] [--unix] [--url URL]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

from mwjobs.codec import decode_record, encode_record
from mwjobs.job import JobSpec
from mwjobs.queues.redis import RedisBackend, RedisJobQueue

DOMAIN = "benchwiki"
TYPE = "refreshLinks"


@contextlib.contextmanager
def private_redis() -> Iterator[tuple[str, str]]:
    """A throw-away redis-server: (TCP URL, Unix socket path)."""
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (./scripts/test installs it)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as workdir:
        sock_path = str(Path(workdir) / "redis.sock")
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                "--appendonly", "no", "--dir", workdir, "--unixsocket", sock_path]  # fmt: skip
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            url = f"redis://127.0.0.1:{port}/0"
            deadline = time.monotonic() + 10
            while True:  # a benchmark, not a test: polling for start-up is fine here
                try:
                    redis.Redis.from_url(url).ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
            yield url, sock_path
        finally:
            process.terminate()
            process.wait(timeout=10)


def specs(n: int, start: int) -> list[JobSpec]:
    """Realistic refreshLinks-sized jobs (a page title and a few params)."""
    return [
        JobSpec.create(
            TYPE,
            {"causeAction": "edit-page", "causeAgent": "Bench", "n": start + i},
            namespace=0,
            title=f"Page_{start + i}",
            request_id="0123456789abcdef01234567",
        )
        for i in range(n)
    ]


def rate(label: str, count: int, seconds: float, unit: str = "jobs") -> float:
    per_second = count / seconds
    print(f"{label:<44} {per_second:>11,.0f} {unit}/s  ({seconds * 1e6 / count:7.1f} µs each)")
    return per_second


def timed(work: Callable[[], int]) -> tuple[int, float]:
    began = time.perf_counter()
    done = work()
    return done, time.perf_counter() - began


def bench(queue: RedisJobQueue, client: redis.Redis, jobs: int, batch: int) -> None:
    batches = [specs(batch, i) for i in range(0, jobs, batch)]

    def push_all() -> int:
        return sum(queue.push(chunk) for chunk in batches)

    pushed, seconds = timed(push_all)
    rate(f"push, batches of {batch}", pushed, seconds)

    def pop_ack_batched() -> int:
        done = 0
        while popped := queue.pop_many(batch):
            done += sum(queue.ack_many(popped))
        return done

    acked, seconds = timed(pop_ack_batched)
    rate(f"pop_many({batch}) + ack_many", acked, seconds)

    singles = min(jobs, 5000)
    queue.push(specs(singles, 0))

    def pop_ack_single() -> int:
        done = 0
        while (job := queue.pop()) is not None:
            done += queue.ack(job)
        return done

    acked, seconds = timed(pop_ack_single)
    single = rate("pop + ack, one job at a time", acked, seconds)

    def pings() -> int:
        for _ in range(singles):
            client.ping()
        return singles

    count, seconds = timed(pings)
    ping = rate("raw redis-py round trip (PING)", count, seconds, "calls")
    print(f"pop + ack costs {ping / single:.1f} raw round trips (2 script calls)")

    # Where the rest of the time goes: reading a record back is pure Python (the codec).
    blob = encode_record(specs(1, 0)[0].to_record("0" * 32, 1_700_000_000))

    def decode_only() -> int:
        for _ in range(singles):
            decode_record(blob)
        return singles

    count, seconds = timed(decode_only)
    rate(f"decode_record alone ({len(blob)}-byte record)", count, seconds, "records")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--unix", action="store_true", help="use the Unix socket, not TCP")
    parser.add_argument("--url", help="an existing server (its data is NOT touched beyond "
                        f"the {TYPE!r} queue of {DOMAIN!r}, which is deleted)")  # fmt: skip
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.url:
            where = args.url
        else:
            url, sock_path = stack.enter_context(private_redis())
            where = sock_path if args.unix else url
        backend = RedisBackend(where)
        stack.callback(backend.close)
        queue = backend.queue(DOMAIN, TYPE)
        queue.delete()
        print(f"mwjobs Redis backend on {backend.endpoint.display}, {args.jobs} jobs")
        bench(queue, backend.client, args.jobs, args.batch)
        queue.delete()


if __name__ == "__main__":
    main()
