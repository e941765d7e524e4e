"""Celery: tasks without results on the Redis broker."""

from __future__ import annotations

import os

from celery import Celery

from peers_tasks.common import drained, latency

app = Celery("bench", broker=os.environ["BENCH_REDIS_URL"])
app.conf.task_ignore_result = True
app.conf.worker_hijack_root_logger = False


@app.task
def drain() -> None:
    drained()


@app.task
def pickup(enqueued_at: float) -> None:
    latency(enqueued_at)
