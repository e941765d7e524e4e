"""Queue backends: one :class:`JobQueue` contract (``base``) and its storage backends.

Only modules in this package import storage drivers (redis-py, SQLAlchemy); backends are
imported lazily by name so ``import mwjobs`` never needs or connects to a server.
"""

from __future__ import annotations

from mwjobs.queues.base import (
    JobQueue,
    MaintenancePolicy,
    MaintenanceResult,
    QueueBackend,
    QueueSizes,
)

__all__ = [
    "JobQueue",
    "MaintenancePolicy",
    "MaintenanceResult",
    "QueueBackend",
    "QueueSizes",
]
