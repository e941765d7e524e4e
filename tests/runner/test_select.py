"""The runner's pure queue choice and priority rules (PHP: ``JobRunnerPipeline::selectQueue``,
``RedisJobRunnerService::main``), exhaustively."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from mwjobs.config import GroupConfig, TimingConfig
from mwjobs.runner.select import (
    PriorityState,
    after_refill,
    candidate_queues,
    choose_queue,
    eligible_types,
    time_share,
)

TYPES = ["refreshLinks", "htmlCacheUpdate", "null", "webVideoTranscode", "cirrusSearch"]
BASIC = GroupConfig(
    "basic",
    19,
    include=("*",),
    exclude=("webVideoTranscode",),
    low_priority=("htmlCacheUpdate", "refreshLinks"),
)
TRANSCODE = GroupConfig("transcode", 2, include=("webVideoTranscode",))


def test_high_priority_excludes_low_priority_types() -> None:
    assert eligible_types(BASIC, True, TYPES) == {"null", "cirrusSearch"}


def test_low_priority_adds_low_priority_types() -> None:
    assert eligible_types(BASIC, False, TYPES) == {
        "null",
        "cirrusSearch",
        "refreshLinks",
        "htmlCacheUpdate",
    }


def test_low_priority_types_run_in_low_mode_without_star() -> None:
    group = GroupConfig("g", 1, include=("a",), low_priority=("b",))
    assert eligible_types(group, True, ["a", "b", "c"]) == {"a"}
    assert eligible_types(group, False, ["a", "b", "c"]) == {"a", "b"}


def test_exclude_beats_include_and_star_never_is_a_type() -> None:
    group = GroupConfig("g", 1, include=("*", "x"), exclude=("x",))
    assert eligible_types(group, True, ["x", "y"]) == {"y"}
    assert eligible_types(GroupConfig("g", 1, include=("*",)), True, []) == set()


def test_named_types_are_eligible_even_when_not_ready() -> None:
    assert eligible_types(TRANSCODE, True, []) == {"webVideoTranscode"}
    assert candidate_queues(TRANSCODE, True, {("null", "enwiki")}) == []


WIKIS = ["enwiki", "dewiki", "my?hwiki"]
READY = st.sets(st.tuples(st.sampled_from(TYPES), st.sampled_from(WIKIS)))
GROUPS = st.builds(
    GroupConfig,
    st.just("g"),
    st.integers(1, 5),
    include=st.lists(st.sampled_from([*TYPES, "*"]), max_size=4).map(tuple),
    exclude=st.lists(st.sampled_from(TYPES), max_size=3).map(tuple),
    low_priority=st.lists(st.sampled_from(TYPES), max_size=3).map(tuple),
)


@given(GROUPS, st.booleans(), READY)
def test_candidates_obey_the_rules(
    group: GroupConfig, high: bool, ready: set[tuple[str, str]]
) -> None:
    candidates = candidate_queues(group, high, ready)
    for job_type, _ in candidates:
        assert job_type not in group.exclude
        if high:
            assert job_type not in group.low_priority
        assert (
            "*" in group.include
            or job_type in group.include
            or (not high and job_type in group.low_priority)
        )
    # Everything eligible and ready is a candidate: nothing is silently skipped.
    eligible = eligible_types(group, high, {t for t, _ in ready})
    assert set(candidates) == {queue for queue in ready if queue[0] in eligible}


@given(GROUPS, st.booleans(), READY, st.integers(0, 2**32))
def test_choice_is_a_candidate_or_none(
    group: GroupConfig, high: bool, ready: set[tuple[str, str]], seed: int
) -> None:
    chosen = choose_queue(group, high, ready, random.Random(seed))
    candidates = candidate_queues(group, high, ready)
    assert (chosen is None) == (not candidates)
    assert chosen is None or chosen in candidates


def test_choice_is_uniform_over_queues() -> None:
    ready = {("null", f"wiki{i}") for i in range(4)} | {("refreshLinks", "enwiki")}
    rng = random.Random(7)
    counts: dict[tuple[str, str], int] = {}
    for _ in range(10_000):
        queue = choose_queue(BASIC, False, ready, rng)
        assert queue is not None
        counts[queue] = counts.get(queue, 0) + 1
    assert set(counts) == ready
    assert all(1_700 < count < 2_300 for count in counts.values())


def test_time_share_limits_each_mode() -> None:
    timing = TimingConfig()
    high = PriorityState(high=True, since=1000.0)
    assert time_share(high, 1600.0, timing) == high  # exactly lp_max_delay: not yet
    flipped = time_share(high, 1600.5, timing)
    assert (flipped.high, flipped.since, flipped.switches) == (False, 1600.5, 1)
    low = PriorityState(high=False, since=1000.0)
    assert time_share(low, 1120.0, timing) == low
    assert time_share(low, 1121.0, timing).high is True


def test_after_refill_flips_only_when_slots_were_free_and_nothing_started() -> None:
    state = PriorityState(high=True, since=0.0)
    assert after_refill(state, free=0, started=0, now=5.0) == state  # loop is full
    assert after_refill(state, free=3, started=1, now=5.0) == state
    assert after_refill(state, free=3, started=0, now=5.0) == PriorityState(False, 5.0, 1)


@given(st.lists(st.tuples(st.floats(0, 1000), st.integers(0, 3), st.integers(0, 3)), max_size=50))
def test_high_share_is_bounded_under_load(steps: list[tuple[float, int, int]]) -> None:
    """Whatever happens, a mode never lasts longer than its limit at a time_share check."""
    timing = TimingConfig()
    state = PriorityState(high=True, since=0.0)
    now = 0.0
    for delta, free, started in steps:
        now += delta
        state = time_share(state, now, timing)
        limit = timing.lp_max_delay if state.high else timing.hp_max_delay
        assert now - state.since <= limit
        state = after_refill(state, free, min(free, started), now)


def test_maxtime_follows_documented_intent_with_legacy_switch() -> None:
    assert TimingConfig().maxtime_for(high_priority=True) == 30
    assert TimingConfig().maxtime_for(high_priority=False) == 60
    legacy = TimingConfig(legacy_maxtime_inversion=True)
    assert legacy.maxtime_for(high_priority=True) == 60
