"""What a dispatched run reports: runJobs.php's ``--result=json`` document (``JobRunner::run``).

``{"jobs": [{"type", "status": "ok"|"failed", "error", "time"}, ...], "reached": ...,
"backoffs": [] | {type: expiry}, "elapsed": ms}``; early exits carry only ``jobs`` and
``reached``. :func:`parse_result` never raises: output that is not such a document becomes a
:class:`RunSummary` with ``error`` set (the PHP runner crashed on a missing ``jobs``, see
docs/compatibility.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["RunSummary", "parse_result"]

# PHP trim()'s default characters: the PHP runner trimmed stdout before json_decode.
_PHP_TRIM = " \t\n\r\0\x0b"


@dataclass(frozen=True)
class RunSummary:
    """Counts and reasons from one run. ``error`` says why the output is not a usable
    result (then the other fields are empty); None means it is one."""

    ok: int = 0
    failed: int = 0
    reached: str | None = None
    backoffs: Mapping[str, float] = field(default_factory=dict)
    elapsed_ms: int | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "backoffs", MappingProxyType(dict(self.backoffs)))

    @property
    def valid(self) -> bool:
        return self.error is None

    @property
    def jobs(self) -> int:
        return self.ok + self.failed


def _reject_constant(name: str) -> float:
    # PHP's json_decode refuses NaN and Infinity; so do we.
    raise ValueError(f"{name} is not JSON")


def parse_result(output: bytes | str) -> RunSummary:
    """The result in a run's stdout (trimmed as PHP did); errors are returned, not raised."""
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
    text = text.strip(_PHP_TRIM)
    if not text:
        return RunSummary(error="the output is empty")
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        return RunSummary(error=f"json_decode() error: {exc}")
    if not isinstance(doc, dict):
        return RunSummary(error=f"the output is JSON but not an object ({type(doc).__name__})")
    jobs = doc.get("jobs")
    if not isinstance(jobs, list):
        what = "has no" if jobs is None else "has a non-list"
        return RunSummary(error=f'the result {what} "jobs" entry')
    ok = sum(1 for job in jobs if isinstance(job, dict) and job.get("status") == "ok")
    reached = doc.get("reached")
    elapsed = doc.get("elapsed")
    return RunSummary(
        ok=ok,
        failed=len(jobs) - ok,
        reached=reached if isinstance(reached, str) else None,
        backoffs=_backoffs(doc.get("backoffs")),
        elapsed_ms=elapsed if isinstance(elapsed, int) and not isinstance(elapsed, bool) else None,
    )


def _backoffs(raw: Any) -> dict[str, float]:
    """type -> UNIX expiry. PHP encodes the empty map as ``[]``; odd entries are skipped."""
    if not isinstance(raw, dict):
        return {}
    found: dict[str, float] = {}
    for job_type, expiry in raw.items():
        number = isinstance(expiry, int | float) and not isinstance(expiry, bool)
        if number and math.isfinite(expiry):
            found[job_type] = float(expiry)
    return found
