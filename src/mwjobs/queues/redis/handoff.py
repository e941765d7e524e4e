"""Handoff: an idle consumer blocks on Redis and gets the next pushed job already claimed.

MediaWiki's Redis layout has no blocking pop: a consumer learns of new jobs by polling, or
(mwjobs) from the push wake-up channel, and then pops, one more round trip. A
:class:`HandoffWaiter` instead registers itself on its queues' ``z-mwjobsWaiters`` set
(``wait.lua``, only while the queues are empty, checked in the same script) and blocks in
``BLPOP`` on its own list. mwjobs' push script, finding a live waiter on an empty queue,
claims the job for it exactly as a pop would (``z-claimed``, ``h-attempts``) and appends the
record to that list: Redis answers the blocked ``BLPOP`` at once, so the job reaches the
consumer with the push's own round trip. Pushes from MediaWiki hand nothing over; the
consumer sees them when its wait times out and the next ``wait.lua`` finds them ready.

A consumer gets one job per wait: the push that serves it deletes its ``:live`` key, which
ends its registrations on every queue, and a wait that times out leaves at once (taking what
was handed over in between), so nothing is claimed for a consumer that is busy. A
handed-over job is an ordinary claimed job: acked when it ran, recycled by the chron after
the claim TTL if its consumer died. Registrations also expire on their own 0.5 s after the
consumer's block would end, so a consumer killed while blocked strands at most the jobs
pushed in that moment (claimed, recycled by the chron, never lost), as does an interrupt in
the microseconds between ``BLPOP``'s reply and :meth:`HandoffWaiter.wait` returning it.

Needs Redis 6.0 or later (fractional ``BLPOP`` timeouts); :meth:`RedisBackend.waiter`
checks and falls back to polling on older servers.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

import redis

from mwjobs.model.data import QueuedJob
from mwjobs.queues.base import JobWaiter
from mwjobs.queues.redis.keys import QueueKeys
from mwjobs.queues.redis.replies import popped_item
from mwjobs.queues.redis.scripts import Scripts

__all__ = [
    "HANDOFF_PREFIX",
    "MAX_WAIT",
    "HandoffQueue",
    "HandoffServer",
    "HandoffWaiter",
    "parse_handoff",
]

log = logging.getLogger(__name__)

HANDOFF_PREFIX = "mwjobs:jobqueue:handoff:"
# The longest block per wait() (a longer timeout is cut to this); the connection's read
# timeout is the endpoint's plus this, so a vanished server still ends the block.
MAX_WAIT = 30.0
# A registration outlives the block by this much, covering the round trip to leave.lua.
REGISTRATION_GRACE = 0.5
# The read timeout under the block when the backend's connection has none.
UNBOUNDED_READ_TIMEOUT = 5.0


class HandoffServer(Protocol):
    """What a waiter needs of its backend (a :class:`~mwjobs.queues.redis.RedisBackend`)."""

    scripts: Scripts

    @property
    def client(self) -> redis.Redis: ...

    def guard(self, operation: str) -> AbstractContextManager[None]: ...


class HandoffQueue(Protocol):
    """What a waiter needs of a queue (a :class:`~mwjobs.queues.redis.RedisJobQueue`)."""

    type: str
    keys: QueueKeys

    def take_handed(self, raw_id: bytes, blob: bytes, attempts: int) -> QueuedJob | None: ...


def parse_handoff(item: bytes) -> tuple[str, bytes, int, bytes]:
    """(queue ID, job ID, attempts, record) of one handoff list entry (push.lua's format:
    the first three fields end with NUL bytes; the record is the rest, NULs and all)."""
    queue_id, raw_id, attempts, blob = item.split(b"\0", 3)
    return queue_id.decode(), raw_id, int(attempts), blob


class HandoffWaiter(JobWaiter):
    """One consumer's handoff list and registrations on ``queues`` (all on ``backend``).
    Uses its own connection, since ``BLPOP`` holds it while blocked. One thread at a time:
    a consumer waits, then works, then waits again."""

    def __init__(self, backend: HandoffServer, queues: Sequence[HandoffQueue]) -> None:
        if not queues:
            raise ValueError("a waiter needs at least one queue")
        self.backend = backend
        self.queues = {queue.keys.queue_id: queue for queue in queues}
        self.key = HANDOFF_PREFIX + os.urandom(16).hex()
        self._leave_keys = [self.key, *(queue.keys.waiters for queue in queues)]
        self._client: redis.Redis | None = None
        self._registered = False

    def __repr__(self) -> str:
        return f"<HandoffWaiter {self.key} on {len(self.queues)} queue(s) of {self.backend}>"

    @property
    def client(self) -> redis.Redis:
        """A connection like the backend's (same address, TLS, credentials), whose read
        timeout allows for the longest block."""
        if self._client is None:
            pool = self.backend.client.connection_pool
            options = dict(pool.connection_kwargs)
            # Always bounded: a block must end even if the server vanished unannounced.
            read_timeout = options.get("socket_timeout") or UNBOUNDED_READ_TIMEOUT
            options["socket_timeout"] = read_timeout + MAX_WAIT
            self._client = redis.Redis(
                connection_pool=redis.ConnectionPool(
                    connection_class=pool.connection_class, **options
                )
            )
        return self._client

    def wait(self, timeout: float, skip: Collection[str] = ()) -> list[QueuedJob]:
        timeout = min(max(timeout, 0.01), MAX_WAIT)
        queues = [queue for queue in self.queues.values() if queue.type not in skip]
        if not queues:  # every type is backing off: nothing to wait for but the time
            with self._blocked():
                time.sleep(timeout)
            return []
        keys = [self.key]
        for queue in queues:
            keys += [queue.keys.unclaimed, queue.keys.waiters]
        # A skipped queue's set may still name us (an earlier wait served elsewhere): drop
        # that, or the :live key set now would let its pushes reach us after all.
        keys += [queue.keys.waiters for queue in self.queues.values() if queue.type in skip]
        ttl_ms = int((timeout + REGISTRATION_GRACE) * 1000)
        scripts = self.backend.scripts
        # Marked before the script runs: if anything interrupts us after it registered,
        # close() must still leave.
        self._registered = True
        with self.backend.guard("waiting for jobs"):
            reply = scripts.wait.run(self.client, keys, [ttl_ms, len(queues)])
            handed: list[bytes] = reply[0]
            if handed or len(reply) > 1:  # jobs claimed for us earlier, or ready ones to pop
                self._registered = False
                return self._jobs(handed)
            with self._blocked():
                popped = popped_item(self.client.blpop([self.key], timeout))
            if popped is not None:  # the push that served us ended our registrations
                self._registered = False
                return self._jobs([popped[1]])
            # Timed out: leave now, taking whatever a push handed over since the block
            # ended, so nothing is claimed for us while we are busy elsewhere.
            items: list[bytes] = scripts.leave.run(self.client, self._leave_keys, [])
            self._registered = False
        return self._jobs(items)

    def close(self) -> list[QueuedJob]:
        items: list[bytes] = []
        if self._registered:
            with self.backend.guard("leaving the waiters"):
                items = self.backend.scripts.leave.run(self.client, self._leave_keys, [])
            self._registered = False
        self._drop_client()
        return self._jobs(items)

    def _drop_client(self) -> None:
        if self._client is not None:
            # Redis.close() leaves a pool it was given open: disconnect ours explicitly.
            self._client.connection_pool.disconnect()
            self._client = None

    def _jobs(self, items: Sequence[bytes]) -> list[QueuedJob]:
        jobs: list[QueuedJob] = []
        for item in items:
            try:
                queue_id, raw_id, attempts, blob = parse_handoff(item)
                queue = self.queues[queue_id]
            except (ValueError, KeyError) as exc:  # not push.lua's: its claim, if any, recycles
                log.error("%s: ignoring a malformed handoff entry %r: %s", self, item[:200], exc)
                continue
            job = queue.take_handed(raw_id, blob, attempts)
            if job is not None:
                jobs.append(job)
        return jobs
