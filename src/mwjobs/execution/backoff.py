"""Backoff throttling shared by every runner of a host (``$wgJobBackoffThrottling``).

A throttled type gets a "time to wait" per job it runs (work items / rate, randomly rounded);
the waits add up in a JSON file of type -> expiry (UNIX time) that every runner on the host
reads, and while a type's expiry is in the future runners skip it. MediaWiki's file name and
format are kept (``<tmp>/mw-runJobs-backoffs.json``), so PHP runJobs and mwjobs can share it.

MediaWiki opens the file with ``w+`` before locking it, which truncates it: writers lose each
other's entries and readers may see an empty file (``JobRunner::syncBackoffDeltas``). Here a
writer takes the exclusive lock first, then reads, merges and rewrites in place, so concurrent
entries add up.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import math
import os
import random
import tempfile
import time
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path

from mwjobs.codec.formatjson import format_json

__all__ = ["BACKOFF_FILE_NAME", "BackoffFile", "default_backoff_path", "time_to_wait"]

log = logging.getLogger(__name__)

BACKOFF_FILE_NAME = "mw-runJobs-backoffs.json"
# A file read this soon after its last change may change again within the same mtime tick
# (filesystem timestamps can be coarse), so an equal (mtime, size) proves nothing; a file
# read later than this after its change can be trusted from a stat alone.
_MTIME_TRUST = 0.1

Backoffs = dict[str, float]


def default_backoff_path() -> Path:
    """MediaWiki's location: ``wfTempDir()/mw-runJobs-backoffs.json``."""
    return Path(tempfile.gettempdir()) / BACKOFF_FILE_NAME


def time_to_wait(work_items: int, rate: float, rng: random.Random) -> int:
    """Seconds to back off after one job: ``work_items / rate`` by randomized rounding
    (the fraction is the probability of rounding up), 0 when the type is not throttled."""
    if rate <= 0 or work_items <= 0:
        return 0
    exact = work_items / rate
    whole = math.floor(exact)
    return int(whole) + (1 if rng.random() < exact - whole else 0)


def _parse(raw: bytes) -> Backoffs:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        log.warning("ignoring a backoff file that is not JSON: %r", raw[:200])
        return {}
    if not isinstance(value, dict):
        return {}  # PHP writes [] for an empty map
    return {
        str(k): float(v)
        for k, v in value.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _unexpired(backoffs: Mapping[str, float], now: float) -> Backoffs:
    return {job_type: expiry for job_type, expiry in backoffs.items() if expiry >= now}


class BackoffFile:
    """The host's backoff file. ``clock`` gives UNIX time for expiries (tests inject one)."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path) if path is not None else default_backoff_path()
        self.clock = clock
        self._seen: tuple[int, int, int] | None = None  # (inode, size, mtime_ns) last read
        self._seen_map: Backoffs = {}
        self._seen_safe = False  # whether _seen was read long enough after the change

    def __repr__(self) -> str:
        return f"<BackoffFile {self.path}>"

    def load(self, current: Mapping[str, float], *, wait: bool) -> Backoffs:
        """The unexpired entries in the file; ``current`` when the shared lock is not free
        at once and ``wait`` is False (the caller tries again next time)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._seen = None
            return {}
        if self._unchanged(stat):
            return _unexpired(self._seen_map, self.clock())
        try:
            with self.path.open("rb") as handle:
                if not _lock(handle.fileno(), fcntl.LOCK_SH, wait):
                    return dict(current)
                raw = handle.read()
                stat = os.fstat(handle.fileno())
        except FileNotFoundError:
            return {}
        self._remember(stat, _parse(raw))
        return _unexpired(self._seen_map, self.clock())

    def sync(
        self, current: Mapping[str, float], deltas: MutableMapping[str, float], *, wait: bool
    ) -> Backoffs:
        """Add ``deltas`` (seconds per type) to the file and return the merged, unexpired
        map; ``deltas`` is emptied once written. Without them this is :meth:`load`. When the
        lock is busy and ``wait`` is False: ``current`` back, ``deltas`` kept for later."""
        if not deltas:
            return self.load(current, wait=wait)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)  # no O_TRUNC: see module doc
        with os.fdopen(fd, "r+b") as handle:
            if not _lock(fd, fcntl.LOCK_EX, wait):
                return dict(current)
            now = self.clock()
            merged = _parse(handle.read())
            for job_type, seconds in deltas.items():
                old = merged.get(job_type, now - 1)
                merged[job_type] = (old if old >= now else now) + seconds
            merged = _unexpired(merged, now)
            handle.seek(0)
            handle.truncate()
            handle.write(format_json(merged, pretty=False).encode())
            handle.flush()
            self._remember(os.fstat(fd), merged)
        deltas.clear()
        return dict(merged)

    def _unchanged(self, stat: os.stat_result) -> bool:
        key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        return self._seen_safe and key == self._seen

    def _remember(self, stat: os.stat_result, backoffs: Backoffs) -> None:
        self._seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        self._seen_map = backoffs
        self._seen_safe = time.time() - stat.st_mtime > _MTIME_TRUST


def _lock(fd: int, mode: int, wait: bool) -> bool:
    """flock ``fd``; False if ``wait`` is off and another process holds a conflicting lock.
    Closing the file releases the lock."""
    try:
        fcntl.flock(fd, mode if wait else mode | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    return True
