"""The exceptions mwjobs raises. Every one derives from :class:`MwJobsError`::

    MwJobsError
    ├── RecordError        malformed serialized data or job record (codec)
    ├── ConfigError        a broken configuration file or value
    ├── QueueError         a queue backend failed (server, script, data)
    │   └── QueueUnavailable   the server cannot be reached now (refused, timed out)
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


class QueueUnavailable(QueueError):
    """The queue server cannot be reached now (connection refused or lost, timed out, name
    not resolved): back off and retry later. Other :class:`QueueError` s mean the server
    answered with an error."""
