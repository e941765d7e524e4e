"""mwjobs: MediaWiki's job queue system (queues, jobrunner, jobchron) in Python."""

from __future__ import annotations

from mwjobs.errors import ConfigError, JobTypeError, MwJobsError, QueueError, RecordError

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "JobTypeError",
    "MwJobsError",
    "QueueError",
    "RecordError",
    "__version__",
]
