"""Dramatiq: actors on the Redis broker, no retries."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from peers_tasks.common import drained, latency

broker = RedisBroker(url=os.environ["BENCH_REDIS_URL"])
dramatiq.set_broker(broker)


@dramatiq.actor(max_retries=0)
def drain() -> None:
    drained()


@dramatiq.actor(max_retries=0)
def pickup(enqueued_at: float) -> None:
    latency(enqueued_at)
