"""Huey: RedisHuey (blocking pops, its default)."""

from __future__ import annotations

import os

from huey import RedisHuey

from peers_tasks.common import drained, latency

huey = RedisHuey("bench", url=os.environ["BENCH_REDIS_URL"])


@huey.task()
def drain() -> None:
    drained()


@huey.task()
def pickup(enqueued_at: float) -> None:
    latency(enqueued_at)
