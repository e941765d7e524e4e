"""mwjobs: MediaWiki's job queue system (queues, jobrunner, jobchron) in Python."""

from __future__ import annotations

from mwjobs.errors import ConfigError, JobTypeError, MwJobsError, QueueError, RecordError
from mwjobs.job import JobSpec, JobState, QueuedJob, new_root_job_params

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "JobSpec",
    "JobState",
    "JobTypeError",
    "MwJobsError",
    "QueueError",
    "QueuedJob",
    "RecordError",
    "__version__",
    "new_root_job_params",
]
