"""Runnable Python jobs: the :class:`Job` base class and MediaWiki's built-in helper jobs.

A job class is what MediaWiki's ``$wgJobClasses`` maps a type to: it is built from a popped
job's params and its :meth:`Job.run` does the work. Register classes by type name with
:func:`mwjobs.model.registry.register` (or the ``mwjobs.jobs`` entry-point group)::

    @register("sendMail")
    class SendMail(Job):
        def run(self) -> bool:
            deliver(self.params["to"])
            return True

Nothing here touches a queue: a running job that pushes follow-up jobs does it through
:attr:`Job.group`, the queue group of its wiki that the executor hands it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Protocol

from mwjobs.codec import PhpKey, PhpValue
from mwjobs.model.data import JobSpec, QueuedJob

__all__ = ["DuplicateJob", "Job", "JobGroup", "NullJob", "TeardownCallback"]

log = logging.getLogger(__name__)

Params = Mapping[PhpKey, PhpValue]
TeardownCallback = Callable[[bool], None]

# Job::toString limits: longer values are shown as their length, big arrays as their size.
_MAX_SHOWN_CHARS = 1024
_MAX_SHOWN_ITEMS = 10

# MediaWiki's canonical namespace names, for log lines only (a wiki may rename them).
_NAMESPACES = {
    -2: "Media", -1: "Special", 1: "Talk", 2: "User", 3: "User_talk", 4: "Project",
    5: "Project_talk", 6: "File", 7: "File_talk", 8: "MediaWiki", 9: "MediaWiki_talk",
    10: "Template", 11: "Template_talk", 12: "Help", 13: "Help_talk", 14: "Category",
    15: "Category_talk",
}  # fmt: skip


class JobGroup(Protocol):
    """What a running job may use of its wiki's queue group (``JobQueueGroup`` fits)."""

    @property
    def domain(self) -> str:
        """The DB domain of the wiki the job runs for."""
        ...

    def push(self, jobs: JobSpec | Job | Sequence[JobSpec | Job]) -> int:
        """Push follow-up jobs to this wiki's queues; return how many were added."""
        ...


class Job:
    """Base class of runnable Python jobs (MediaWiki's ``Job`` / ``RunnableJob``).

    Subclasses implement :meth:`run` and may set the class attributes below. The executor
    builds one instance per popped job with :meth:`from_queued`; application code builds
    one with ``MyJob(params)`` and pushes it (``mwjobs.push(MyJob({...}))``). A subclass
    that overrides ``__init__`` takes and passes on the ``queued`` and ``group`` keywords.
    """

    #: The registered type name (set by :func:`mwjobs.model.registry.register`).
    type: ClassVar[str] = ""
    #: Drop a push while an unclaimed or delayed job with the same params is queued.
    remove_duplicates: ClassVar[bool] = False
    #: Whether a failed run may be retried (False: the job is acked even when it fails).
    allow_retries: bool = True

    def __init__(
        self,
        params: Params | None = None,
        *,
        queued: QueuedJob | None = None,
        group: JobGroup | None = None,
    ) -> None:
        self.params: dict[PhpKey, PhpValue] = dict(params or {})
        #: The queue's view of this job (ID, attempts, enqueue time) when it was popped.
        self.queued = queued
        #: The queue group of the job's wiki while the executor runs it, else None.
        self.group = group
        #: Why the last run failed (``getLastError``); shown in the run's result.
        self.last_error: str | None = None
        self._teardown_callbacks: list[TeardownCallback] = []

    @classmethod
    def from_queued(cls, job: QueuedJob, group: JobGroup | None = None) -> Job:
        """The instance the executor runs for a popped job (``JobFactory::newJob``)."""
        return cls(job.params, queued=job, group=group)

    @property
    def job_type(self) -> str:
        """The type this job is queued under (the popped type wins over the class's)."""
        return self.queued.type if self.queued is not None else type(self).type

    def run(self) -> bool:
        """Do the work. Return False (or raise) on failure; anything else is success."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement run()")

    def work_item_count(self) -> int:
        """Units of work this job stands for, for backoff throttling (items per second)."""
        return 1

    @property
    def ignore_duplicates(self) -> bool:
        """Whether pushes of this job are de-duplicated (``ignoreDuplicates``)."""
        return type(self).remove_duplicates

    def add_teardown_callback(self, callback: TeardownCallback) -> None:
        """Call ``callback(status)`` after the run, whatever its outcome."""
        self._teardown_callbacks.append(callback)

    def teardown(self, status: bool) -> None:
        """Run the teardown callbacks with the run's status (the executor calls this)."""
        for callback in self._teardown_callbacks:
            callback(status)

    def to_spec(self) -> JobSpec:
        """A spec to push this job: dedup hashed as a ``Job`` object (sorted params)."""
        return JobSpec.create(
            self.job_type,
            self.params,
            remove_duplicates=self.ignore_duplicates,
            dedup_style="job",
        )

    def __str__(self) -> str:
        """``Job::toString``: type, page, params and queue metadata, for log lines."""
        text = self.job_type
        page = _page_name(self.params)
        if page:
            text += f" {page}"
        shown = " ".join(str(key) + "=" + _shown(value) for key, value in self.params.items())
        if shown:
            text += f" {shown}"
        if self.queued is not None:
            q = self.queued
            text += f" (id={q.id},timestamp={q.enqueue_timestamp},attempts={q.attempts})"
        return " ".join(text.split())  # collapse whitespace, as MediaWiki does


def _page_name(params: Params) -> str:
    title = params.get("title")
    namespace = params.get("namespace")
    if not isinstance(title, str) or not title or not isinstance(namespace, int):
        return ""
    name = title.replace(" ", "_")
    if namespace == 0:
        return name
    return f"{_NAMESPACES.get(namespace, f'Ns{namespace}')}:{name}"


def _shown(value: PhpValue) -> str:
    if isinstance(value, list | dict):
        if len(value) > _MAX_SHOWN_ITEMS:
            return f"array({len(value)})"
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except TypeError:  # a bytes key (binary PHP string) JSON cannot hold
            return f"array({len(value)})"
    elif isinstance(value, bool):
        text = "1" if value else ""  # PHP strval
    elif value is None:
        text = ""
    else:
        text = str(value)
    return f"string({len(text)})" if len(text) > _MAX_SHOWN_CHARS else text


class NullJob(Job):
    """MediaWiki's ``NullJob`` (type ``null``), for load tests and plumbing checks.

    Params: ``lives`` (default 1): a job with lives > 1 pushes a copy with one life less to
    its wiki's queue; ``usleep`` (default 0): microseconds to sleep; ``removeDuplicates``
    (truthy: pushes are de-duplicated).
    """

    type = "null"

    def __init__(
        self,
        params: Params | None = None,
        *,
        queued: QueuedJob | None = None,
        group: JobGroup | None = None,
    ) -> None:
        super().__init__(params, queued=queued, group=group)
        self.params.setdefault("lives", 1)
        self.params.setdefault("usleep", 0)

    @property
    def ignore_duplicates(self) -> bool:
        return bool(self.params.get("removeDuplicates"))

    def run(self) -> bool:
        usleep = _as_int(self.params.get("usleep"))
        if usleep > 0:
            time.sleep(usleep / 1_000_000)
        lives = _as_int(self.params.get("lives"))
        if lives > 1:
            if self.group is None:
                raise RuntimeError("NullJob with lives > 1 needs a queue group to push to")
            copy = NullJob({**self.params, "lives": lives - 1})
            self.group.push(copy)
        return True


def _as_int(value: PhpValue) -> int:
    """PHP's loose int conversion of a param (``"3"`` -> 3, junk -> 0)."""
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value.strip()))
        except ValueError:
            return 0
    return 0


class DuplicateJob(Job):
    """MediaWiki's ``DuplicateJob``: stands in for a job superseded by a newer root job.

    It keeps the original type, params (plus ``isDuplicate``) and queue metadata, so the
    result names the original type and the ack finds the claim; running it does nothing.
    Backoff throttling ignores it.
    """

    type = "duplicate"

    @classmethod
    def from_queued(cls, job: QueuedJob, group: JobGroup | None = None) -> DuplicateJob:
        return cls({"isDuplicate": True, **job.params}, queued=job, group=group)

    def run(self) -> bool:
        return True
