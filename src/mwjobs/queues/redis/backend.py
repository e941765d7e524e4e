"""The Redis backend: MediaWiki's ``JobQueueRedis`` data layout, read and written as MW 1.43.

Every queue of (domain, type) is eight keys on one server (``{wiki}:jobqueue:{type}:*``,
``JobQueueRedis::getQueueKey``) plus its member in ``global:jobqueue:s-queuesWithJobs``;
records are MW's 8-field PHP-serialized arrays. PHP MediaWiki, the PHP jobrunner/jobchron and
mwjobs can share one server. Each operation is one atomic Lua script (``lua/*.lua``, schema in
each header); where MW has a bug the script fixes it without changing the data format, see
``docs/compatibility.md``.

Errors: every redis-py error leaves this module as :class:`~mwjobs.errors.QueueError` naming
the server and the operation. No command is retried automatically: a push or pop that timed
out may have happened, and retrying it could push twice; callers back off and go on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import redis

from mwjobs.codec import (
    QUEUES_WITH_JOBS_KEY,
    ROOT_JOB_TTL,
    decode_record,
    encode_record,
    new_job_id,
    parse_queue_id,
    root_job_key,
)
from mwjobs.errors import QueueError, RecordError
from mwjobs.model.data import JobSpec, JobState, QueuedJob
from mwjobs.queues.backends import BackendLocation
from mwjobs.queues.base import (
    Clock,
    EventSink,
    JobQueue,
    JobWaiter,
    MaintenancePolicy,
    MaintenanceResult,
    PollingWaiter,
    QueueBackend,
    QueueSizes,
)
from mwjobs.queues.redis.connection import endpoint_of, error_class, make_client, redis_version
from mwjobs.queues.redis.endpoint import RedisEndpoint, parse_redis_endpoint
from mwjobs.queues.redis.handoff import HandoffWaiter
from mwjobs.queues.redis.keys import QueueKeys
from mwjobs.queues.redis.replies import byte_list, byte_set
from mwjobs.queues.redis.scripts import (
    Arg,
    LuaScript,
    ScriptCall,
    Scripts,
    load_scripts,
    run_pipelined,
)
from mwjobs.queues.redis.wake import wake_channel

__all__ = ["GHOST_BUDGET", "RedisBackend", "RedisJobQueue"]

log = logging.getLogger(__name__)

# IDs without a record that one pop call may drop before it returns (bounds script time;
# the caller simply calls again).
GHOST_BUDGET = 1000


_scripts = functools.cache(load_scripts)



class RedisBackend(QueueBackend):
    """One Redis server holding MediaWiki-layout queues.

    ``endpoint`` is a :class:`RedisEndpoint` or any string :func:`parse_redis_endpoint`
    accepts. ``compression`` writes large records in MW's gzip wrapper (records of either
    form are always read). ``new_id`` makes job IDs (``uuid4().hex``; tests inject fixed
    ones). ``wake_pushes`` publishes each push of ready jobs on :func:`wake_channel` (see
    :mod:`mwjobs.queues.redis.wake`). Nothing connects until the first operation.
    """

    def __init__(
        self,
        endpoint: RedisEndpoint | str,
        *,
        clock: Clock = time.time,
        on_event: EventSink | None = None,
        compression: bool = False,
        new_id: Callable[[], str] = new_job_id,
        wake_pushes: bool = True,
    ) -> None:
        super().__init__(clock=clock, on_event=on_event)
        self.endpoint = parse_redis_endpoint(endpoint) if isinstance(endpoint, str) else endpoint
        self.compression = compression
        self.new_id = new_id
        self.wake_channel = wake_channel(self.endpoint.db) if wake_pushes else ""
        self.scripts: Scripts = _scripts()
        self._client: redis.Redis | None = None
        self._owns_client = True
        self._reported_bad_queue_ids: set[bytes] = set()
        self._handoff: bool | None = None  # see supports_handoff

    @classmethod
    def from_client(
        cls,
        client: redis.Redis,
        *,
        clock: Clock = time.time,
        on_event: EventSink | None = None,
        compression: bool = False,
        new_id: Callable[[], str] = new_job_id,
        wake_pushes: bool = True,
    ) -> RedisBackend:
        """Use an existing redis-py client (``decode_responses`` must be off). The client
        stays the caller's: :meth:`close` does not close it."""
        if client.get_encoder().decode_responses:
            raise ValueError("RedisBackend needs a client with decode_responses=False")
        backend = cls(
            endpoint_of(client),
            clock=clock,
            on_event=on_event,
            compression=compression,
            new_id=new_id,
            wake_pushes=wake_pushes,
        )
        backend._client = client
        backend._owns_client = False
        return backend

    def __str__(self) -> str:
        return f"Redis {self.endpoint.display}"

    def __repr__(self) -> str:
        return f"<RedisBackend {self.endpoint.display}>"

    @property
    def client(self) -> redis.Redis:
        """The redis-py client, made on first use (making it does not connect either)."""
        if self._client is None:
            self._client = make_client(self.endpoint)
        return self._client

    @contextlib.contextmanager
    def guard(self, operation: str) -> Iterator[None]:
        """Map redis-py errors inside the block to QueueError naming server and operation."""
        try:
            yield
        except (redis.RedisError, OSError) as exc:
            raise self.error(operation, exc) from exc

    def error(self, operation: str, exc: BaseException) -> QueueError:
        kind = error_class(exc)
        return kind(f"Redis {self.endpoint.display}: {operation} failed: {exc}")

    def queue(self, domain: str, job_type: str) -> RedisJobQueue:
        return RedisJobQueue(self, domain, job_type)

    def queues_with_jobs(self) -> list[tuple[str, str]]:
        with self.guard("reading global:jobqueue:s-queuesWithJobs"):
            members = byte_set(self.client.smembers(QUEUES_WITH_JOBS_KEY))
        found: list[tuple[str, str]] = []
        for member in sorted(members):
            try:
                found.append(parse_queue_id(member.decode()))
            except (RecordError, UnicodeDecodeError) as exc:  # someone else's junk: skip it
                # Warn once per bad member, not on every chron pass (once a second).
                if member not in self._reported_bad_queue_ids:
                    self._reported_bad_queue_ids.add(member)
                    log.warning("%s: skipping bad queue ID %r in %s: %s",
                                self, member, QUEUES_WITH_JOBS_KEY, exc)  # fmt: skip
        return found

    def maintain_many(
        self, items: Sequence[tuple[str, str, MaintenancePolicy]], now: int | None = None
    ) -> list[MaintenanceResult | Exception]:
        """All the queues' maintain scripts in one pipelined round trip."""
        if not items:
            return []
        when = int(self.clock()) if now is None else now
        queues = [(self.queue(domain, job_type), policy) for job_type, domain, policy in items]
        calls = [queue.maintain_call(policy, when) for queue, policy in queues]
        try:
            with self.guard(f"maintenance of {len(calls)} queues"):
                replies = run_pipelined(self.client, calls)
        except QueueError as exc:  # the server is unreachable: every queue failed alike
            return [exc for _ in items]
        results: list[MaintenanceResult | Exception] = []
        for (queue, _), reply in zip(queues, replies, strict=True):
            if isinstance(reply, Exception):
                results.append(self.error(f"maintenance of {queue.label}", reply))
            else:
                results.append(queue.count_maintenance(_maintenance_result(reply)))
        return results

    def waiter(self, queues: Sequence[JobQueue]) -> JobWaiter:
        """A :class:`~mwjobs.queues.redis.handoff.HandoffWaiter`: pushes hand jobs over."""
        mine = [queue for queue in queues if isinstance(queue, RedisJobQueue)]
        if len(mine) != len(queues) or any(queue.redis is not self for queue in mine):
            raise ValueError(f"{self}: a waiter's queues must all be on this backend")
        if not self.supports_handoff():
            return PollingWaiter(queues)
        return HandoffWaiter(self, mine)

    def supports_handoff(self) -> bool:
        """Whether the server can serve a :class:`HandoffWaiter` (Redis 6.0 or later: it
        blocks with fractional timeouts). Asked once per backend."""
        if self._handoff is None:
            try:
                with self.guard("reading the server version"):
                    info: dict[str, Any] = self.client.info("server")
            except QueueError as exc:
                if not isinstance(exc.__cause__, redis.exceptions.NoPermissionError):
                    raise
                # INFO is @dangerous; an ACL user that may not run it is on Redis 6 or
                # later (ACLs came with 6.0), which is all handoff needs.
                info = {"redis_version": "6.0"}
            self._handoff = redis_version(info) >= (6, 0)
            if not self._handoff:
                version = info.get("redis_version")
                log.warning("%s: Redis %s is older than 6.0; idle waiters poll instead "
                            "of getting jobs handed over", self, version)  # fmt: skip
        return self._handoff

    def close(self) -> None:
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None


class RedisJobQueue(JobQueue):
    """One (domain, type) queue on a :class:`RedisBackend`."""

    def __init__(self, backend: RedisBackend, domain: str, job_type: str) -> None:
        super().__init__(backend, domain, job_type)
        self.redis = backend
        self.keys = QueueKeys.build(domain, job_type)
        self.label = f"the {job_type!r} queue of {domain!r}"

    def _run(self, operation: str, script: LuaScript, keys: list[str], args: Sequence[Arg]) -> Any:
        # What guard() does, inline: every push and pop passes here, and a context manager
        # plus the message (built only on failure here) cost about 1 µs per call.
        try:
            return script.run(self.redis.client, keys, args)
        except (redis.RedisError, OSError) as exc:
            raise self.redis.error(f"{operation} {self.label}", exc) from exc

    # -- push ---------------------------------------------------------------------------

    def _push(self, specs: list[JobSpec], now: int) -> int:
        # In-batch dedup as MW's doBatchPush: keyed by dedup hash, else by ID; a later
        # duplicate replaces the earlier one's data but keeps its place.
        items: dict[str, tuple[str, str, str, bytes]] = {}
        for spec in specs:
            job_id = self.redis.new_id()
            record = spec.to_record(job_id, now)
            blob = encode_record(record, compress=self.redis.compression)
            release = str(record.release_timestamp or 0)
            items[record.sha1 or job_id] = (job_id, record.sha1, release, blob)
        args: list[Arg] = [self.keys.queue_id, self.redis.wake_channel, now]
        for item in items.values():
            args.extend(item)
        return int(self._run("push to", self.redis.scripts.push, self.keys.for_push(), args))

    # -- pop ----------------------------------------------------------------------------

    def _pop_many(self, n: int, now: int) -> list[QueuedJob]:
        jobs: list[QueuedJob] = []
        while len(jobs) < n:
            want = n - len(jobs)
            reply = self._run("pop from", self.redis.scripts.pop_many, self.keys.for_pop(),
                              [now, want, want + GHOST_BUDGET])  # fmt: skip
            ghosts, drained = int(reply[0]), int(reply[1])
            corrupt: list[bytes] = []
            for i in range(2, len(reply), 3):
                raw_id, blob, attempts = reply[i], reply[i + 1], int(reply[i + 2])
                job = self._decode(raw_id, blob, attempts, JobState.CLAIMED)
                if job is None:
                    corrupt.append(raw_id)
                else:
                    jobs.append(job)
            if ghosts:
                log.warning("%s: dropped %d job ID(s) without a record from %s",
                            self.redis, ghosts, self.label)  # fmt: skip
            if corrupt:
                self._set_aside(corrupt, now)
            if drained:
                break
        return jobs

    def take_handed(self, raw_id: bytes, blob: bytes, attempts: int) -> QueuedJob | None:
        """A job push.lua claimed for a waiting consumer (:mod:`~mwjobs.queues.redis.handoff`),
        with pop's semantics: counted as a pop, superseded root jobs marked, an unreadable
        record set aside (None)."""
        job = self._decode(raw_id, blob, attempts, JobState.CLAIMED)
        if job is None:
            self._set_aside([raw_id], self._now())
            return None
        self._event("pops")
        return self._mark_superseded(job)

    def _decode(
        self, raw_id: bytes, blob: bytes, attempts: int, state: JobState
    ) -> QueuedJob | None:
        """The job, or None (logged) when the record cannot be read."""
        try:
            job_id = raw_id.decode()
            record = decode_record(blob)
            job = QueuedJob.from_record(record, self.domain, attempts=attempts, state=state)
        except Exception as exc:  # any unreadable record is corrupt; never kill the caller
            log.error("%s: unreadable record of job %r in %s: %s",
                      self.redis, raw_id, self.label, exc)  # fmt: skip
            return None
        # The Redis ID is the handle for ack, whatever the record says.
        return job if job.id == job_id else dataclasses.replace(job, id=job_id)

    def _set_aside(self, ids: list[bytes], now: int) -> None:
        """Move unreadable claimed jobs to z-abandoned so they never block the queue."""
        args: list[Arg] = [now, *ids]
        self._run("setting aside corrupt jobs of", self.redis.scripts.set_aside,
                  [self.keys.claimed, self.keys.abandoned], args)  # fmt: skip
        self._event("corrupt", len(ids))

    # -- ack ----------------------------------------------------------------------------

    def _ack_many(self, jobs: list[QueuedJob]) -> list[bool]:
        reply = self._run(
            "ack in", self.redis.scripts.ack, self.keys.for_ack(), [job.id for job in jobs]
        )
        results = [bool(int(flag)) for flag in reply]
        for job, done in zip(jobs, results, strict=True):
            if not done:
                log.debug("Could not acknowledge %s job %s.", self.type, job.id)
        return results

    # -- whole queue ----------------------------------------------------------------------

    def delete(self) -> None:
        self._run(
            "deleting", self.redis.scripts.delete, self.keys.for_delete(), [self.keys.queue_id]
        )

    def sizes(self) -> QueueSizes:
        with self.redis.guard(f"counting {self.label}"):
            pipe = self.redis.client.pipeline(transaction=False)
            pipe.llen(self.keys.unclaimed)
            pipe.zcard(self.keys.claimed)
            pipe.zcard(self.keys.abandoned)
            pipe.zcard(self.keys.delayed)
            unclaimed, claimed, abandoned, delayed = pipe.execute()
        return QueueSizes(int(unclaimed), int(claimed), int(abandoned), int(delayed))

    def list_jobs(self, state: JobState, limit: int | None = None) -> list[QueuedJob]:
        if limit is not None and limit <= 0:
            return []
        with self.redis.guard(f"listing {state} jobs of {self.label}"):
            ids = self._list_ids(state, limit)
            if not ids:
                return []
            pipe = self.redis.client.pipeline(transaction=False)
            pipe.hmget(self.keys.data, ids)
            pipe.hmget(self.keys.attempts, ids)
            blobs, attempts = pipe.execute()
        jobs: list[QueuedJob] = []
        for raw_id, blob, tries in zip(ids, blobs, attempts, strict=True):
            if blob is None:  # acked or pruned since the ID was read
                continue
            job = self._decode(raw_id, blob, int(tries or 0), state)
            if job is not None:
                jobs.append(job)
        return jobs

    def _list_ids(self, state: JobState, limit: int | None) -> list[bytes]:
        client = self.redis.client
        if state is JobState.UNCLAIMED:
            # LRANGE is newest first; the right end pops next, so reverse for pop order.
            ids = byte_list(client.lrange(self.keys.unclaimed, -limit if limit else 0, -1))
            return ids[::-1]
        key = {
            JobState.DELAYED: self.keys.delayed,
            JobState.CLAIMED: self.keys.claimed,
            JobState.ABANDONED: self.keys.abandoned,
        }[state]
        ranged = byte_list(client.zrange(key, 0, -1 if limit is None else limit - 1))
        return ranged

    # -- root jobs ------------------------------------------------------------------------

    def deduplicate_root_job(self, spec: JobSpec) -> bool:
        root = spec.root_job
        if root is None:
            raise ValueError(
                f"{spec.type} job has no root-job params (rootJobSignature, rootJobTimestamp)"
            )
        key = root_job_key(self.domain, self.type, root.signature)
        with self.redis.guard(f"registering a root job of {self.label}"):
            stored = _mw_timestamp(self.redis.client.get(key))
            if stored is not None and stored >= root.timestamp_int:
                return True
            self.redis.client.set(key, root.timestamp, ex=ROOT_JOB_TTL)
        return False

    def is_root_job_old_duplicate(self, job: QueuedJob) -> bool:
        root = job.root_job
        if root is None:
            return False
        key = root_job_key(self.domain, self.type, root.signature)
        with self.redis.guard(f"checking a root job of {self.label}"):
            stored = _mw_timestamp(self.redis.client.get(key))
        return stored is not None and stored > root.timestamp_int

    # -- maintenance ----------------------------------------------------------------------

    def _maintain(self, policy: MaintenancePolicy, now: int) -> MaintenanceResult:
        call = self.maintain_call(policy, now)
        reply = self._run("maintenance of", self.redis.scripts.maintain, list(call.keys), call.args)
        return _maintenance_result(reply)

    def maintain_call(self, policy: MaintenancePolicy, now: int) -> ScriptCall:
        """This queue's maintain script call (ARGV as PHP's PeriodicScriptParamsIterator)."""
        args: list[Arg] = [
            now - policy.claim_ttl,
            now - policy.abandoned_retention,
            policy.max_attempts,
            now,
            self.keys.queue_id,
            policy.batch,
        ]
        return ScriptCall(self.redis.scripts.maintain, self.keys.for_maintain(), args)

    def count_maintenance(self, result: MaintenanceResult) -> MaintenanceResult:
        """Emit the events :meth:`maintain` emits, for results got in a batch."""
        self._event("recycles", result.released)
        self._event("abandons", result.abandoned)
        self._event("prunes", result.pruned)
        self._event("undelays", result.undelayed)
        return result


def _maintenance_result(reply: Sequence[Any]) -> MaintenanceResult:
    released, abandoned, pruned, undelayed, ready = (int(x) for x in reply)
    return MaintenanceResult(released, abandoned, pruned, undelayed, ready)


def _mw_timestamp(raw: bytes | str | None) -> int | None:
    """A stored root-job timestamp as a number; None when unset or falsy in PHP terms."""
    if raw is None or raw in (b"", b"0", "", "0"):
        return None
    try:
        return int(raw)
    except ValueError:
        return 0


def open_location(
    location: BackendLocation, *, clock: Clock, on_event: EventSink | None
) -> RedisBackend:
    """The backend at a ``redis://``, ``rediss://`` or ``unix://`` location."""
    endpoint = parse_redis_endpoint(location.url, password=location.password)
    return RedisBackend(endpoint, clock=clock, on_event=on_event)
