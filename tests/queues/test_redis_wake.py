"""The push wake-up side channel: mwjobs pushes of ready jobs name their queue on it."""

from __future__ import annotations

import time

import redis

from mwjobs.model.data import JobSpec
from mwjobs.queues.redis import RedisBackend
from mwjobs.queues.redis.endpoint import parse_redis_endpoint
from mwjobs.queues.redis.wake import PushListener
from tests.servers import RedisServer


def collect(listener: PushListener, count: int) -> set[tuple[str, str]]:
    """Queues named until ``count`` are seen (one poll returns what has arrived so far)."""
    deadline = time.monotonic() + 5
    seen: set[tuple[str, str]] = set()
    while len(seen) < count and time.monotonic() < deadline:
        seen |= listener.poll(timeout=0.1)
    return seen


def test_a_push_of_ready_jobs_wakes_a_listener(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    listener = PushListener(parse_redis_endpoint(redis_server.url))
    backend = RedisBackend(redis_server.url)
    quiet = RedisBackend(redis_server.url, wake_pushes=False)
    try:
        assert listener.fileno() >= 0  # subscribed from here on
        assert listener.poll() == set()
        backend.queue("enwiki", "refreshLinks").push([JobSpec.create("refreshLinks", {})])
        backend.queue("dewiki", "null").push([JobSpec.create("null", {"a": 1})] * 2)
        assert collect(listener, 2) == {("refreshLinks", "enwiki"), ("null", "dewiki")}
        # Delayed jobs, duplicates and pushes that opted out name nothing.
        backend.queue("enwiki", "null").push([JobSpec.create("null", {}, delay=600)])
        dedup = JobSpec.create("null", {"b": 1}, remove_duplicates=True)
        backend.queue("frwiki", "null").push([dedup])
        backend.queue("frwiki", "null").push([dedup])
        quiet.queue("itwiki", "null").push([JobSpec.create("null", {})])
        redis_client.publish(listener.channel, b"not a queue ID")
        assert collect(listener, 1) == {("null", "frwiki")}
        assert listener.poll(timeout=0.05) == set()
    finally:
        listener.close()
        backend.close()
        quiet.close()
