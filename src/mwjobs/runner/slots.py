"""Runner groups ("loops") and their slots: what runs where, and when it must be stopped.

A :class:`Slot` holds at most one :class:`~mwjobs.runner.dispatch.Run`. It stays busy until the
run is completely over (process reaped, output at EOF), including after SIGTERM and SIGKILL:
the PHP runner freed a timed-out slot at once and started another run in it while the old
process lived on (docs/compatibility.md, "A timed-out run keeps its slot until it is reaped").
:func:`overdue_action` is the pure rule that decides when to send which signal. A
:class:`SlotGroup` keeps one group's priority state and resizes to a target count without
touching busy slots (HUP reload).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mwjobs.config import GroupConfig
from mwjobs.runner.dispatch import Run
from mwjobs.runner.select import PriorityState

__all__ = ["Action", "Slot", "SlotGroup", "StopReason", "next_deadline", "overdue_action"]


class Action(enum.Enum):
    TERMINATE = "terminate"  # the wall limit passed: SIGTERM
    KILL = "kill"  # SIGTERM was not enough within the grace period: SIGKILL


class StopReason(enum.Enum):
    TIMEOUT = "timeout"  # the run passed its wall limit
    SHUTDOWN = "shutdown"  # the runner is stopping


@dataclass(eq=False)
class Slot:
    """One place for a run. Times are monotonic seconds."""

    index: int
    run: Run | None = None
    started: float = 0.0
    high: bool = True  # the group's priority when the run started
    term_at: float | None = None  # when SIGTERM was sent
    kill_at: float | None = None  # when SIGKILL is due (None: not scheduled)
    killed: bool = False
    reason: StopReason | None = None
    retired: bool = False  # removed by a resize: disappears when its run is over

    @property
    def busy(self) -> bool:
        return self.run is not None

    def assign(self, run: Run, now: float, high: bool) -> None:
        self.run, self.started, self.high = run, now, high
        self.term_at = self.kill_at = self.reason = None
        self.killed = False

    def clear(self) -> None:
        self.run = None
        self.term_at = self.kill_at = self.reason = None
        self.killed = False

    def terminated(self, now: float, kill_at: float, reason: StopReason) -> None:
        """Record a SIGTERM; an earlier SIGKILL deadline is kept."""
        if self.term_at is None:
            self.term_at, self.reason = now, reason
        self.kill_at = kill_at if self.kill_at is None else min(self.kill_at, kill_at)


def overdue_action(slot: Slot, now: float) -> Action | None:
    """What a busy slot needs now: SIGTERM once its wall limit has passed, then SIGKILL when
    its kill deadline comes (each exactly once); None otherwise."""
    if slot.run is None or slot.killed:
        return None
    if slot.term_at is None:
        return Action.TERMINATE if now - slot.started >= slot.run.request.limit else None
    if slot.kill_at is not None and now >= slot.kill_at:
        return Action.KILL
    return None


def next_deadline(slot: Slot) -> float | None:
    """When :func:`overdue_action` will next have something to do for this slot."""
    if slot.run is None or slot.killed:
        return None
    if slot.term_at is None:
        return slot.started + slot.run.request.limit
    return slot.kill_at


class SlotGroup:
    """One group's slots and priority state. ``config`` may be replaced by a reload."""

    def __init__(self, config: GroupConfig, priority: PriorityState) -> None:
        self.config = config
        self.priority = priority
        self.slots: list[Slot] = []
        self.resize(config.runners)

    @property
    def name(self) -> str:
        return self.config.name

    def busy_slots(self) -> list[Slot]:
        return [slot for slot in self.slots if slot.busy]

    def free_slots(self) -> list[Slot]:
        return [slot for slot in self.slots if not slot.busy and not slot.retired]

    def resize(self, target: int) -> None:
        """Grow with new slots or shrink: free extras go at once, busy extras are retired
        and go when their run is over (a reload never kills a run)."""
        active = [slot for slot in self.slots if not slot.retired]
        for slot in self.slots:  # a busy slot retired by an earlier shrink comes back first
            if slot.retired and len(active) < target:
                slot.retired = False
                active.append(slot)
        if len(active) < target:
            used = {slot.index for slot in self.slots}
            free_indexes = (i for i in range(len(self.slots) + target) if i not in used)
            for _ in range(target - len(active)):
                self.slots.append(Slot(next(free_indexes)))
            self.slots.sort(key=lambda slot: slot.index)
            return
        for slot in active[target:]:
            slot.retired = True
        self.slots = [slot for slot in self.slots if slot.busy or not slot.retired]

    def release(self, slot: Slot) -> None:
        """The slot's run is over: free the slot, or drop it if it was retired."""
        slot.clear()
        if slot.retired:
            self.slots.remove(slot)
