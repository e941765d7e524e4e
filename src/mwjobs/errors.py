"""The exceptions mwjobs raises. Every one derives from :class:`MwJobsError`::

    MwJobsError
    ├── RecordError        malformed serialized data or job record (codec)
    ├── ConfigError        a broken configuration file or value
    ├── QueueError         a queue backend failed (connection, server, script)
    └── JobTypeError       a job type that is not registered

Driver errors (redis-py, SQLAlchemy) are mapped to these at the backend boundary,
so callers can write ``except MwJobsError``.
"""

from __future__ import annotations


class MwJobsError(Exception):
    """Root of every error mwjobs raises on purpose."""


class RecordError(MwJobsError):
    """Serialized data or a job record is malformed, unsupported or too large."""


class ConfigError(MwJobsError):
    """A configuration file or value is invalid; the message names the file, key and fix."""


class QueueError(MwJobsError):
    """A queue backend operation failed; the message names the server."""


class JobTypeError(MwJobsError):
    """A job type has no registered job class."""
