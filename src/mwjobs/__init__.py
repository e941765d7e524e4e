"""mwjobs: MediaWiki's job queue system (queues, jobrunner, jobchron) in Python."""

from __future__ import annotations

from mwjobs.errors import (
    ConfigError,
    JobTypeError,
    MwJobsError,
    QueueError,
    QueueUnavailable,
    RecordError,
)
from mwjobs.group import JobQueueGroup, configure, deferred, lazy_push, push
from mwjobs.model.data import JobSpec, JobState, QueuedJob, new_root_job_params
from mwjobs.model.registry import register
from mwjobs.model.runnable import Job, NullJob

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Job",
    "JobQueueGroup",
    "JobSpec",
    "JobState",
    "JobTypeError",
    "MwJobsError",
    "NullJob",
    "QueueError",
    "QueueUnavailable",
    "QueuedJob",
    "RecordError",
    "__version__",
    "configure",
    "deferred",
    "lazy_push",
    "new_root_job_params",
    "push",
    "register",
]
