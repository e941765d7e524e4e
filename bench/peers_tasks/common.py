"""What every library's no-op task does, so all are measured the same way.

``drained()``: counts in the worker process (threads share the count); every
``PROGRESS_EVERY`` jobs and at the N-th (``BENCH_DRAIN_N``) it writes "count, first job's
time, now" to ``bench:progress``, so a slow worker can be timed on part of the batch.
Forking workers (RQ's default) count in Redis instead (``drained_shared``).
``latency(t)``: pushes the pickup delay (now - enqueue time) to ``bench:lat``, after the
delay is measured.
"""

from __future__ import annotations

import os
import threading
import time

import redis

_lock = threading.Lock()
_count = 0
_first = 0.0
_client: redis.Redis | None = None
PROGRESS_EVERY = 500


def client() -> redis.Redis:
    global _client  # noqa: PLW0603 - one lazy client per worker process
    if _client is None:
        _client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    return _client


def _target() -> int:
    return int(os.environ["BENCH_DRAIN_N"])


def drained() -> None:
    global _count, _first  # noqa: PLW0603 - the worker's count, shared by its threads
    now = time.time()
    with _lock:
        _count += 1
        count = _count
        if count == 1:
            _first = now
    if count % PROGRESS_EVERY == 0 or count == _target():
        client().set("bench:progress", f"{count} {_first} {now}")


def drained_shared() -> None:
    now = time.time()
    count = int(client().incr("bench:count"))
    if count == 1:
        client().set("bench:first", now)
    if count % PROGRESS_EVERY == 0 or count == _target():
        first = float(client().get("bench:first") or now)
        client().set("bench:progress", f"{count} {first} {now}")


def latency(enqueued_at: float) -> None:
    delay = time.time() - enqueued_at
    client().rpush("bench:lat", delay)
