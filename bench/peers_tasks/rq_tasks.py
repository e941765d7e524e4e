"""RQ: plain functions; the default worker forks a child per job, so counts go to Redis."""

from __future__ import annotations

from peers_tasks.common import drained_shared, latency


def drain() -> None:
    drained_shared()


def pickup(enqueued_at: float) -> None:
    latency(enqueued_at)
