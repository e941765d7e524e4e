"""A clock tests move by hand, so delays and claim expiry need no sleeping."""

from __future__ import annotations

# 2023-11-14 22:13:20 UTC, the NullJob worked example's enqueue time (an exact integer second).
START = 1_700_000_000.0


class FakeClock:
    """Callable like ``time.time``; returns ``now`` until a test changes it."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
