"""The job model: what is pushed (:class:`JobSpec`) and what a queue hands out (:class:`QueuedJob`).

Both sides are plain data. A ``JobSpec`` mirrors MediaWiki's ``JobSpecification`` (or, with
``dedup_style="job"``, a ``Job`` object): the type, the params as PHP would serialize them,
and the de-duplication options. A ``QueuedJob`` is a popped or listed job with the metadata a
queue keeps (ID, enqueue time, attempts). Running jobs is not this module's business: Python
job classes live in the registry, MediaWiki jobs run in PHP.
"""

from __future__ import annotations

import contextvars
import dataclasses
import enum
import hashlib
import time
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Literal

from mwjobs.codec import (
    JobRecord,
    PhpKey,
    PhpValue,
    job_dedup_hash,
    mw_timestamp,
    new_request_id,
    spec_dedup_hash,
    unix_from_mw_timestamp,
)
from mwjobs.errors import RecordError

__all__ = [
    "DedupStyle",
    "JobSpec",
    "JobState",
    "QueuedJob",
    "RootJobParams",
    "current_request_id",
    "new_root_job_params",
    "set_request_id",
]

DedupStyle = Literal["specification", "job"]
Params = Mapping[PhpKey, PhpValue]

# Params the queue itself understands; everything else is the job's own business.
RELEASE_PARAM = "jobReleaseTimestamp"
ROOT_SIGNATURE_PARAM = "rootJobSignature"
ROOT_TIMESTAMP_PARAM = "rootJobTimestamp"
ROOT_IS_SELF_PARAM = "rootJobIsSelf"
REQUEST_ID_PARAM = "requestId"

NS_SPECIAL = -1

# Like MediaWiki's per-request ID: every job pushed in one "request" (here: one context,
# by default the process) carries the same requestId, so logs can be correlated.
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mwjobs_request_id", default=None
)
_process_request_id: str | None = None


def current_request_id() -> str:
    """The request ID stamped on new jobs: the context's, else one per process."""
    global _process_request_id  # noqa: PLW0603 - one lazily made ID per process
    rid = _request_id.get()
    if rid is not None:
        return rid
    if _process_request_id is None:
        _process_request_id = new_request_id()
    return _process_request_id


def set_request_id(request_id: str | None) -> contextvars.Token[str | None]:
    """Make ``request_id`` the current context's request ID (None: back to the process one)."""
    return _request_id.set(request_id)


def new_root_job_params(key: str, now: float | None = None) -> dict[PhpKey, PhpValue]:
    """Params that make a job the root of a batch (MediaWiki ``Job::newRootJobParams``).

    Jobs of the same ``key`` pushed later supersede this batch: when popped, older jobs
    carrying an older timestamp run as no-op duplicates.
    """
    return {
        ROOT_IS_SELF_PARAM: True,
        ROOT_SIGNATURE_PARAM: hashlib.sha1(key.encode()).hexdigest(),
        ROOT_TIMESTAMP_PARAM: mw_timestamp(time.time() if now is None else now),
    }


@dataclasses.dataclass(frozen=True)
class RootJobParams:
    """The root-job signature (40 hex) and timestamp (14-digit TS_MW) a job carries."""

    signature: str
    timestamp: str

    @classmethod
    def from_params(cls, params: Params) -> RootJobParams | None:
        signature = params.get(ROOT_SIGNATURE_PARAM)
        timestamp = params.get(ROOT_TIMESTAMP_PARAM)
        if signature is None or timestamp is None or signature == "" or timestamp == "":
            return None
        return cls(str(signature), str(timestamp))

    @property
    def timestamp_int(self) -> int:
        """The timestamp as a number, for MediaWiki's numeric comparison of TS_MW strings."""
        try:
            return int(self.timestamp)
        except ValueError:
            return 0


def _release_from_params(params: Params) -> int | None:
    """``Job::getReleaseTimestamp``: the UNIX time from ``jobReleaseTimestamp``, or None."""
    raw = params.get(RELEASE_PARAM)
    # Type check first: a set membership test would raise on an array (unhashable) value.
    if isinstance(raw, bool) or not isinstance(raw, int | str | float) or raw in ("", 0):
        return None
    try:
        value = unix_from_mw_timestamp(int(raw) if isinstance(raw, float) else raw)
    except RecordError:
        return None
    return value or None


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """A job to push: MediaWiki's ``JobSpecification`` in Python.

    Build one with :meth:`create`, which adds ``requestId`` and the delay and page params the
    way MediaWiki does. ``params`` is kept read-only so a spec can be pushed many times.
    """

    type: str
    params: Params
    remove_duplicates: bool = False
    remove_duplicates_ignore_params: tuple[str, ...] = ()
    dedup_style: DedupStyle = "specification"

    def __post_init__(self) -> None:
        if not self.type:
            raise ValueError("a job type must be a non-empty string")
        if not isinstance(self.params, MappingProxyType):
            object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @classmethod
    def create(
        cls,
        job_type: str,
        params: Params | None = None,
        *,
        delay: float | None = None,
        release_at: float | None = None,
        remove_duplicates: bool = False,
        ignore_params: Iterable[str] = (),
        namespace: int | None = None,
        title: str | None = None,
        request_id: str | None = None,
        dedup_style: DedupStyle = "specification",
        now: float | None = None,
    ) -> JobSpec:
        """A spec with MediaWiki's implicit params.

        ``delay`` (seconds from ``now``) or ``release_at`` (UNIX time) set
        ``jobReleaseTimestamp``; ``namespace``/``title`` name the page the job is about.
        """
        merged: dict[PhpKey, PhpValue] = dict(params or {})
        if delay is not None and release_at is not None:
            raise ValueError("give either delay or release_at, not both")
        if delay is not None:
            release_at = (time.time() if now is None else now) + delay
        if release_at is not None:
            merged[RELEASE_PARAM] = int(release_at)
        merged.setdefault(REQUEST_ID_PARAM, request_id or current_request_id())
        if title:
            merged.setdefault("namespace", 0 if namespace is None else namespace)
            merged.setdefault("title", title)
        return cls(
            job_type,
            MappingProxyType(merged),  # already a private copy: __post_init__ keeps it
            remove_duplicates=remove_duplicates,
            remove_duplicates_ignore_params=tuple(ignore_params),
            dedup_style=dedup_style,
        )

    @property
    def release_timestamp(self) -> int | None:
        """UNIX time before which the job must not run, or None."""
        return _release_from_params(self.params)

    @property
    def namespace(self) -> int:
        value = self.params.get("namespace", NS_SPECIAL)
        return value if isinstance(value, int) and not isinstance(value, bool) else NS_SPECIAL

    @property
    def title(self) -> str:
        value = self.params.get("title", "")
        return value if isinstance(value, str) else ""

    @property
    def root_job(self) -> RootJobParams | None:
        return RootJobParams.from_params(self.params)

    @property
    def is_root_job(self) -> bool:
        # rootJobIsSelf first: most jobs lack it, and it is checked on every push.
        return bool(self.params.get(ROOT_IS_SELF_PARAM)) and self.root_job is not None

    def dedup_hash(self) -> str:
        """The 31-char base-36 de-duplication hash, or '' if duplicates are allowed."""
        if not self.remove_duplicates:
            return ""
        if self.dedup_style == "job":
            return job_dedup_hash(self.type, self.params)
        return spec_dedup_hash(self.type, self.params, self.remove_duplicates_ignore_params)

    def to_record(self, job_id: str, enqueued_at: int) -> JobRecord:
        """The ``h-data`` record MediaWiki would write for this job."""
        release = self.release_timestamp or 0
        # JobSpecification reports its release time as a numeric string, Job as an int.
        rtimestamp: int | str = release if self.dedup_style == "job" else str(release)
        if release == 0:
            rtimestamp = 0
        return JobRecord(
            type=self.type,
            namespace=self.namespace,
            title=self.title,
            params=dict(self.params),
            rtimestamp=rtimestamp,
            uuid=job_id,
            sha1=self.dedup_hash(),
            timestamp=enqueued_at,
        )


class JobState(enum.StrEnum):
    """Where a job is in its life (see docs/architecture.md)."""

    UNCLAIMED = "unclaimed"
    DELAYED = "delayed"
    CLAIMED = "claimed"
    ABANDONED = "abandoned"


@dataclasses.dataclass(frozen=True)
class QueuedJob:
    """A job as a queue hands it out: popped (claimed) or listed.

    ``id`` is the queue's handle for ack (a UUID on Redis and memory, ``job_id`` on SQL).
    ``is_duplicate`` marks a job superseded by a newer root job: it runs as a no-op and is
    acked. ``params`` includes ``namespace``/``title`` as MediaWiki adds them on read.
    """

    type: str
    domain: str
    params: Params
    id: str
    enqueue_timestamp: int
    attempts: int
    release_timestamp: int | None = None
    sha1: str = ""
    state: JobState = JobState.CLAIMED
    is_duplicate: bool = False
    claim_token: str | None = dataclasses.field(default=None, compare=False)
    partition: str | None = dataclasses.field(default=None, compare=False)

    @classmethod
    def from_record(
        cls,
        record: JobRecord,
        domain: str,
        *,
        attempts: int,
        state: JobState = JobState.CLAIMED,
    ) -> QueuedJob:
        """Build from a decoded record the way JobQueueRedis does (params += ns/title)."""
        params: dict[PhpKey, PhpValue] = dict(record.params)
        params.setdefault("namespace", record.namespace)
        params.setdefault("title", record.title)
        return cls(
            type=record.type,
            domain=domain,
            params=MappingProxyType(params),
            id=record.uuid,
            enqueue_timestamp=record.timestamp,
            attempts=attempts,
            release_timestamp=record.release_timestamp,
            sha1=record.sha1,
            state=state,
        )

    @property
    def namespace(self) -> int:
        value = self.params.get("namespace", NS_SPECIAL)
        return value if isinstance(value, int) and not isinstance(value, bool) else NS_SPECIAL

    @property
    def title(self) -> str:
        value = self.params.get("title", "")
        return value if isinstance(value, str) else ""

    @property
    def root_job(self) -> RootJobParams | None:
        return RootJobParams.from_params(self.params)

    @property
    def request_id(self) -> str | None:
        value = self.params.get(REQUEST_ID_PARAM)
        return value if isinstance(value, str) else None

    @property
    def ready_timestamp(self) -> int:
        """When the job became runnable: its release time, else its enqueue time."""
        return self.release_timestamp or self.enqueue_timestamp

    def as_duplicate(self) -> QueuedJob:
        """This job marked as a superseded root-job duplicate (runs as a no-op)."""
        return dataclasses.replace(self, is_duplicate=True)

    def to_spec(self) -> JobSpec:
        """A new spec with the same type and params (for re-pushing, e.g. abandoned jobs)."""
        return JobSpec(
            self.type, self.params, remove_duplicates=bool(self.sha1), dedup_style="job"
        )

