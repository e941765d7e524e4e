"""Pure decisions of the runner: which queue a group runs next, and its priority mode.

No I/O and no clock reads: the supervisor passes the ready-queue map, the time and a
random generator, so every rule is tested exhaustively. PHP: ``RedisJobRunnerService::main``
(priority) and ``JobRunnerPipeline::selectQueue``.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace

from mwjobs.config import GroupConfig, TimingConfig

__all__ = [
    "ALL_TYPES",
    "PriorityState",
    "Queue",
    "after_refill",
    "candidate_queues",
    "choose_queue",
    "eligible_types",
    "time_share",
]

ALL_TYPES = "*"
# (job type, DB domain)
Queue = tuple[str, str]


def eligible_types(group: GroupConfig, high: bool, ready_types: Iterable[str]) -> set[str]:
    """Job types ``group`` may run now.

    High priority excludes the group's low-priority types; low priority adds them to the
    normal ones. ``"*"`` in include stands for every type that has ready queues.
    """
    include = set(group.include)
    exclude = set(group.exclude)
    if high:
        exclude.update(group.low_priority)
    else:
        include.update(group.low_priority)
    if ALL_TYPES in include:
        include.update(ready_types)
    return include - exclude - {ALL_TYPES}


def candidate_queues(group: GroupConfig, high: bool, ready: Collection[Queue]) -> list[Queue]:
    """Every ready (type, domain) queue the group may run, in a stable order."""
    types = eligible_types(group, high, {job_type for job_type, _ in ready})
    return sorted(queue for queue in ready if queue[0] in types)


def choose_queue(
    group: GroupConfig, high: bool, ready: Collection[Queue], rng: random.Random
) -> Queue | None:
    """One eligible queue, uniformly at random (every queue weighs the same), or None."""
    candidates = candidate_queues(group, high, ready)
    return rng.choice(candidates) if candidates else None


@dataclass(frozen=True)
class PriorityState:
    """A group's priority mode and when it last changed; ``switches`` counts flips."""

    high: bool
    since: float
    switches: int = 0

    def flipped(self, now: float) -> PriorityState:
        return replace(self, high=not self.high, since=now, switches=self.switches + 1)


def time_share(state: PriorityState, now: float, timing: TimingConfig) -> PriorityState:
    """The time-sharing rule run before a group fills its slots: at most ``lp_max_delay``
    in high priority, at most ``hp_max_delay`` in low priority."""
    limit = timing.lp_max_delay if state.high else timing.hp_max_delay
    return state.flipped(now) if now - state.since > limit else state


def after_refill(state: PriorityState, free: int, started: int, now: float) -> PriorityState:
    """Free slots but nothing to start in this mode: try the other mode at once."""
    return state.flipped(now) if free > 0 and started == 0 else state
