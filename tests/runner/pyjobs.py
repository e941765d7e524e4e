"""Job classes for the python dispatcher tests, imported by the workers (``modules``).

``e2eRecord`` records each run on the queue's own Redis: ``SADD e2e:runs <n>`` (a repeat
also goes to ``e2e:repeats``), ``INCR e2e:count``, the worker's pid in ``e2e:pids``, and
``<n>`` in ``e2e:retried`` when the job is on a later attempt (a claim the chron recycled).
Params: ``n`` (required), ``sleep`` (seconds to sleep after recording, on the first attempt
only; meanwhile the key ``e2e:busy`` holds the worker's pid).

Importing this module fails with ImportError while the file named by the environment
variable ``MWJOBS_TEST_BREAK`` exists (a deploy of broken code, for the halt test).
"""

from __future__ import annotations

import os
import time

import redis

from mwjobs import Job, register
from mwjobs.group import JobQueueGroup
from mwjobs.queues.redis import RedisBackend

_BREAK = os.environ.get("MWJOBS_TEST_BREAK")
if _BREAK and os.path.exists(_BREAK):
    raise ImportError(f"tests.runner.pyjobs is broken on purpose ({_BREAK} exists)")


def _client(job: Job) -> redis.Redis:
    group = job.group
    assert isinstance(group, JobQueueGroup) and isinstance(group.backend, RedisBackend)
    return group.backend.client


@register("e2eRecord")
class Record(Job):
    def run(self) -> bool:
        client = _client(self)
        n = str(self.params["n"])
        pid = os.getpid()
        retry = self.queued is not None and self.queued.attempts > 1
        pipe = client.pipeline(transaction=False)
        pipe.sadd("e2e:runs", n)
        pipe.incr("e2e:count")
        pipe.sadd("e2e:pids", pid)
        if retry:
            pipe.sadd("e2e:retried", n)
        added = pipe.execute()[0]
        if not added:
            client.rpush("e2e:repeats", n)
        pause = self.params.get("sleep")
        if isinstance(pause, int | float) and pause > 0 and not retry:
            client.set("e2e:busy", pid)
            time.sleep(pause)
        return True
