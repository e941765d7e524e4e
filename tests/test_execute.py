"""``JobExecutor.run``: MediaWiki's JobRunner::run on the memory and Redis backends.

Time is injected: ``unix`` (backoff expiries, queue timestamps) and ``mono`` (durations,
which jobs advance instead of sleeping); memory use is injected too, except in the one test
that allocates for real. The RNG is seeded, so randomized rounding and the 1/50 error
backoff are reproducible.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from mwjobs.errors import QueueError
from mwjobs.execution.backoff import BackoffFile
from mwjobs.execution.executor import (
    ERROR_BACKOFF_ODDS,
    JobExecutor,
    Reached,
    RunOptions,
    RunResult,
    describe_exception,
    parse_memory_limit,
    resident_memory,
)
from mwjobs.group import JobQueueGroup
from mwjobs.metrics import MAX_DATAGRAM, JobSample, JobStatsd, Statsd
from mwjobs.model.data import JobSpec, JobState, current_request_id, new_root_job_params
from mwjobs.model.registry import JobRegistry
from mwjobs.model.runnable import Job
from mwjobs.queues.base import MaintenancePolicy, QueueBackend, QueueSizes
from mwjobs.queues.memory import MemoryBackend
from mwjobs.queues.redis import RedisBackend
from tests.queues.clock import START, FakeClock
from tests.servers import StatsdListener, statsd_values

DOMAIN = "enwiki"
T0 = START


class CustomError(Exception):
    pass


@dataclass
class World:
    """One backend with a group, a registry of test job classes and injected clocks."""

    backend: QueueBackend
    unix: FakeClock
    mono: FakeClock = field(default_factory=lambda: FakeClock(0.0))
    registry: JobRegistry = field(default_factory=lambda: JobRegistry(entry_points=False))
    ran: list[str] = field(default_factory=list)
    torn_down: list[bool] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    events: list[tuple[str, str, int]] = field(default_factory=list)
    memory_used: int = 0
    hoard: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.group = JobQueueGroup(self.backend, DOMAIN, registry=self.registry)
        _register_plain_jobs(self)
        _register_failing_jobs(self)

    def executor(self, seed: int = 1, **kwargs: object) -> JobExecutor:
        return JobExecutor(
            self.group,
            clock=self.unix,
            monotonic=self.mono,
            memory=lambda: self.memory_used,
            rng=random.Random(seed),
            **kwargs,  # type: ignore[arg-type]
        )

    def run(
        self, seed: int = 1, backoffs: BackoffFile | None = None, **options: object
    ) -> RunResult:
        executor = self.executor(seed, backoffs=backoffs, throttling=options.pop("rates", None))
        return executor.run(RunOptions(**options))  # type: ignore[arg-type]

    def push(self, job_type: str, n: int = 1, **params: object) -> None:
        specs = [JobSpec.create(job_type, {"n": i, **params}) for i in range(n)]  # type: ignore[dict-item]
        self.group.push(specs)

    def sizes(self, job_type: str) -> QueueSizes:
        return self.group.queue(job_type).sizes()


def _register_plain_jobs(w: World) -> None:
    reg = w.registry

    @reg.register("ok")
    class Ok(Job):
        def run(self) -> bool:
            w.ran.append(f"{self.job_type}:{self.params['n']!s}")
            w.mono.advance(float(self.params.get("seconds", 0.0)))  # type: ignore[arg-type]
            return True

    @reg.register("other")
    class OtherOk(Ok):
        pass

    @reg.register("thr")
    class Throttled(Ok):
        def work_item_count(self) -> int:
            return int(self.params.get("items", 1))  # type: ignore[arg-type]

    @reg.register("rid")
    class RequestId(Job):
        def run(self) -> bool:
            w.request_ids.append(current_request_id())
            return True

    @reg.register("grow")
    class Grow(Job):
        def run(self) -> bool:
            w.hoard.append(b"x" * (64 * 1024 * 1024))  # touched pages: real RSS growth
            return True


def _register_failing_jobs(w: World) -> None:
    reg = w.registry

    @reg.register("fail")
    class Fail(Job):
        def run(self) -> bool:
            self.last_error = "fail: deliberate failure"
            return False

    @reg.register("noRetry")
    class NoRetry(Fail):
        allow_retries = False

    @reg.register("throw")
    class Throw(Job):
        def run(self) -> bool:
            raise RuntimeError("throw: deliberate exception")

    @reg.register("custom")
    class Custom(Job):
        def run(self) -> bool:
            raise CustomError("custom failure")

    @reg.register("lostQueue")
    class LostQueue(Job):
        def run(self) -> bool:
            raise QueueError("Redis 127.0.0.1:1: pop failed")

    @reg.register("badInit")
    class BadInit(Job):
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise ValueError("bad params")

    @reg.register("none")
    class ReturnsNone(Job):
        def run(self) -> bool:
            return None  # type: ignore[return-value]

    @reg.register("teardown")
    class Teardown(Job):
        def run(self) -> bool:
            self.add_teardown_callback(w.torn_down.append)
            if self.params.get("explode"):
                self.add_teardown_callback(_explode)
            return not self.params.get("fail")


def _explode(status: bool) -> None:
    raise RuntimeError("teardown went wrong")


@pytest.fixture(params=["memory", "redis"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    unix = FakeClock()
    events: list[tuple[str, str, int]] = []

    def sink(event: str, job_type: str, count: int) -> None:
        events.append((event, job_type, count))

    backend: QueueBackend
    if request.param == "memory":
        backend = MemoryBackend(clock=unix, on_event=sink)
    else:
        client: redis.Redis = request.getfixturevalue("redis_client")
        backend = RedisBackend.from_client(client, clock=unix, on_event=sink)
    w = World(backend, unix)
    w.events = events
    yield w


def jobs_of(result: RunResult) -> list[tuple[str, str, str | None]]:
    return [(j.type, "ok" if j.status else "failed", j.error) for j in result.jobs]


# -- the response ----------------------------------------------------------------------------


def test_successful_jobs_are_acked_and_reported(world: World) -> None:
    world.push("ok", 2)
    result = world.run(job_type="ok")
    assert world.ran == ["ok:0", "ok:1"]
    assert result.reached == Reached.NONE_READY
    assert world.sizes("ok") == QueueSizes(0, 0, 0, 0)
    job = '{\n            "type": "ok",\n            "status": "ok",\n            "error": null,\n            "time": 0\n        }'  # noqa: E501
    assert result.to_json() == (
        '{\n    "jobs": [\n        ' + job + ",\n        " + job + "\n    ],\n"
        '    "reached": "none-ready",\n    "backoffs": [],\n    "elapsed": 0\n}'
    )


def test_times_are_whole_milliseconds_and_add_up(world: World) -> None:
    # Binary fractions, so the clock arithmetic is exact: 15.625 ms and 500 ms.
    world.group.push([JobSpec.create("ok", {"n": 0, "seconds": 1 / 64})])
    world.group.push([JobSpec.create("ok", {"n": 1, "seconds": 0.5})])
    result = world.run()
    assert [j.time for j in result.jobs] == [15, 500]
    assert result.elapsed == 515


def test_unknown_type_is_none_possible_with_the_short_response(
    world: World, fixtures_dir: Path
) -> None:
    world.push("unregistered")
    result = world.run(job_type="unregistered")
    assert result.reached == Reached.NONE_POSSIBLE
    assert result.to_json() == (fixtures_dir / "runjobs" / "none-possible.json").read_text()
    assert world.sizes("unregistered").unclaimed == 1


def test_nothing_queued_is_none_ready(world: World) -> None:
    result = world.run(job_type="ok")
    assert result.to_response() == {
        "jobs": [],
        "reached": "none-ready",
        "backoffs": {},
        "elapsed": 0,
    }
    assert '"backoffs": [],' in result.to_json()


def test_any_type_runs_registered_types_only(world: World) -> None:
    world.push("ok", 2)
    world.push("other", 1)
    world.push("unregistered", 1)
    result = world.run()
    assert sorted(world.ran) == ["ok:0", "ok:1", "other:0"]
    assert result.reached == Reached.NONE_READY
    assert world.sizes("unregistered").unclaimed == 1


# -- failures and retries ----------------------------------------------------------------------


def test_failed_retryable_job_stays_claimed(world: World) -> None:
    world.push("fail")
    result = world.run(job_type="fail")
    assert jobs_of(result) == [("fail", "failed", "fail: deliberate failure")]
    assert world.sizes("fail") == QueueSizes(0, 1, 0, 0)
    claimed = world.group.queue("fail").list_jobs(JobState.CLAIMED)
    assert [j.attempts for j in claimed] == [1]


def test_failed_job_without_retries_is_acked(world: World) -> None:
    world.push("noRetry")
    result = world.run(job_type="noRetry")
    assert jobs_of(result) == [("noRetry", "failed", "fail: deliberate failure")]
    assert world.sizes("noRetry") == QueueSizes(0, 0, 0, 0)


def test_none_from_run_counts_as_success(world: World) -> None:
    world.push("none")
    assert jobs_of(world.run()) == [("none", "ok", None)]
    assert world.sizes("none").claimed == 0


def test_exceptions_are_reported_logged_and_do_not_stop_the_loop(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.push("throw")
    world.push("custom")
    world.push("ok")
    caplog.set_level(logging.ERROR, logger="mwjobs.execution.executor")
    result = world.run(seed=2)
    assert sorted(jobs_of(result)) == [
        ("custom", "failed", "tests.test_execute.CustomError: custom failure"),
        ("ok", "ok", None),
        ("throw", "failed", "RuntimeError: throw: deliberate exception"),
    ]
    assert result.reached == Reached.NONE_READY
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 2
    assert "Traceback" in caplog.text
    assert "throw: deliberate exception" in caplog.text
    assert world.sizes("throw").claimed == 1  # retryable: left for the chron


def test_a_job_class_that_cannot_be_built_fails_like_a_job(world: World) -> None:
    world.push("badInit")
    world.push("ok")
    result = world.run(seed=2)
    assert sorted(jobs_of(result)) == [
        ("badInit", "failed", "ValueError: bad params"),
        ("ok", "ok", None),
    ]
    assert world.sizes("badInit").claimed == 1


def test_a_lost_queue_connection_inside_a_job_stops_the_run(world: World) -> None:
    world.push("lostQueue", 2)
    result = world.run(job_type="lostQueue")
    assert result.reached == Reached.EXCEPTION
    assert len(result.jobs) == 1
    assert result.jobs[0].error == "mwjobs.errors.QueueError: Redis 127.0.0.1:1: pop failed"
    assert result.backoffs == {}  # the full response even so


def test_teardown_gets_the_status_and_its_errors_are_only_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.group.push(
        [
            JobSpec.create("teardown", {"explode": True}),
            JobSpec.create("teardown", {"fail": True}),
        ]
    )
    result = world.run(job_type="teardown")
    assert [j.status for j in result.jobs] == [True, False]
    assert world.torn_down == [True, False]
    assert "teardown went wrong" in caplog.text


def test_the_job_runs_under_its_request_id(world: World) -> None:
    before = current_request_id()
    world.group.push(JobSpec.create("rid", {}, request_id="feedfacefeedfacefeedface"))
    world.run()
    assert world.request_ids == ["feedfacefeedfacefeedface"]
    assert current_request_id() == before


def test_superseded_root_jobs_run_as_no_op_duplicates(world: World) -> None:
    old_root = new_root_job_params("refresh Template:X", now=T0)
    new_root = new_root_job_params("refresh Template:X", now=T0 + 10)
    world.group.push([JobSpec.create("ok", {"n": i, **old_root}) for i in range(2)])
    world.group.push([JobSpec.create("ok", {"n": 9, **new_root})])
    result = world.run(job_type="ok")
    assert world.ran == ["ok:9"]  # the old batch did nothing
    assert jobs_of(result) == [("ok", "ok", None)] * 3
    assert world.sizes("ok") == QueueSizes(0, 0, 0, 0)  # duplicates are acked


# -- limits -------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 10])
def test_job_limit(world: World, batch: int) -> None:
    world.push("ok", 5)
    result = world.run(job_type="ok", max_jobs=2, batch=batch)
    assert result.reached == Reached.JOB_LIMIT
    assert world.ran == ["ok:0", "ok:1"]
    assert world.sizes("ok") == QueueSizes(3, 0, 0, 0)  # nothing claimed beyond the limit


def test_time_limit_checks_after_each_job(world: World) -> None:
    world.group.push([JobSpec.create("ok", {"n": i, "seconds": 0.25}) for i in range(6)])
    result = world.run(job_type="ok", max_time=0.9)
    assert result.reached == Reached.TIME_LIMIT
    assert len(result.jobs) == 4  # 1.0 s > 0.9 s
    assert result.elapsed == 1000
    assert world.sizes("ok") == QueueSizes(2, 0, 0, 0)


def test_time_limit_hands_back_prefetched_jobs(world: World) -> None:
    world.group.push([JobSpec.create("ok", {"n": i, "seconds": 0.5}) for i in range(5)])
    result = world.run(job_type="ok", max_time=0.9, batch=10)
    assert result.reached == Reached.TIME_LIMIT
    assert world.ran == ["ok:0", "ok:1"]
    assert world.sizes("ok") == QueueSizes(3, 0, 0, 0)  # pushed again, claims acked
    again = world.group.queue("ok").list_jobs(JobState.UNCLAIMED)
    assert sorted(int(str(j.params["n"])) for j in again) == [2, 3, 4]
    world.run(job_type="ok")
    assert world.ran[2:] == ["ok:2", "ok:3", "ok:4"]


def test_memory_limit_at_95_percent(world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.push("ok", 3)
    world.memory_used = 190
    assert world.run(job_type="ok", max_jobs=1, memory_limit=200).reached == Reached.JOB_LIMIT
    world.memory_used = 191  # >= 0.95 * 200 (190.0) only from here
    result = world.run(job_type="ok", memory_limit=200, batch=5)
    assert result.reached == Reached.MEMORY_LIMIT
    assert len(result.jobs) == 1
    assert "Detected excessive memory usage (191/200)." in caplog.text
    assert world.sizes("ok") == QueueSizes(1, 0, 0, 0)


def test_memory_limit_with_real_memory(world: World) -> None:
    world.push("grow", 3)
    executor = JobExecutor(world.group)  # the real resident_memory
    limit = resident_memory() + 32 * 1024 * 1024
    result = executor.run(RunOptions(job_type="grow", memory_limit=limit))
    assert result.reached == Reached.MEMORY_LIMIT
    assert len(result.jobs) == 1
    world.hoard.clear()


# -- batches ------------------------------------------------------------------------------------


def test_batched_claims_and_acks(world: World) -> None:
    world.push("ok", 10)
    result = world.run(job_type="ok", batch=4)
    assert len(result.jobs) == 10
    assert world.sizes("ok") == QueueSizes(0, 0, 0, 0)
    pops = [count for event, _, count in world.events if event == "pops"]
    acks = [count for event, _, count in world.events if event == "acks"]
    assert pops == [4, 4, 2]
    assert acks == [4, 4, 2]


# -- backoff throttling --------------------------------------------------------------------------


@pytest.fixture
def backoff_file(tmp_path: Path, world: World) -> BackoffFile:
    return BackoffFile(tmp_path / "mw-runJobs-backoffs.json", clock=world.unix)


def test_a_throttled_type_backs_off(world: World, backoff_file: BackoffFile) -> None:
    world.push("thr", 3)
    rates = {"thr": 1.0}
    result = world.run(job_type="thr", rates=rates, backoffs=backoff_file, batch=10)
    assert len(result.jobs) == 1
    assert result.reached == Reached.NONE_READY
    assert result.backoffs == {"thr": T0 + 1}
    assert '"backoffs": {\n        "thr": 1700000001\n    },' in result.to_json()
    assert world.sizes("thr") == QueueSizes(2, 0, 0, 0)  # no batch claim for a throttled type
    # Another runner of the host (its own file object) sees the backoff.
    other = BackoffFile(backoff_file.path, clock=world.unix)
    assert world.run(job_type="thr", rates=rates, backoffs=other).jobs == []
    assert world.run(rates=rates, backoffs=other).jobs == []  # nor with any type
    world.unix.advance(2)
    assert len(world.run(job_type="thr", rates=rates, backoffs=other).jobs) == 1


def test_nothrottle_still_computes_and_shares_backoffs(
    world: World, backoff_file: BackoffFile
) -> None:
    world.push("thr", 3, items=2)
    result = world.run(rates={"thr": 1.0}, backoffs=backoff_file, throttle=False)
    assert len(result.jobs) == 3
    assert result.backoffs == {"thr": T0 + 6}  # 3 jobs x 2 items / 1 per second
    assert backoff_file.load({}, wait=True) == {"thr": T0 + 6}


def test_randomized_rounding_with_a_seeded_rng(world: World, backoff_file: BackoffFile) -> None:
    world.push("thr", 20)
    result = world.run(seed=7, rates={"thr": 4.0}, backoffs=backoff_file, throttle=False)
    rng = random.Random(7)
    expected = sum(1 if rng.random() < 0.25 else 0 for _ in range(20))
    assert 0 < expected < 20
    assert result.backoffs == {"thr": T0 + expected}


def test_duplicates_are_not_throttled(world: World, backoff_file: BackoffFile) -> None:
    world.group.push([JobSpec.create("thr", {"n": 1, **new_root_job_params("k", now=T0)})])
    newer = JobSpec.create("thr", {"n": 2, **new_root_job_params("k", now=T0 + 5)})
    world.group.queue("thr").deduplicate_root_job(newer)
    result = world.run(rates={"thr": 1.0}, backoffs=backoff_file)
    assert world.ran == []  # it ran as a duplicate
    assert result.backoffs == {}


def _seed_where_first_roll_is(hit: bool) -> int:
    return next(
        seed
        for seed in range(10_000)
        if (random.Random(seed).randrange(ERROR_BACKOFF_ODDS) == 0) == hit
    )


def test_one_failure_in_fifty_backs_the_type_off(world: World, backoff_file: BackoffFile) -> None:
    world.push("fail", 3)
    miss = world.run(seed=_seed_where_first_roll_is(False), max_jobs=1, backoffs=backoff_file)
    assert miss.backoffs == {}
    hit = world.run(seed=_seed_where_first_roll_is(True), batch=2, backoffs=backoff_file)
    assert hit.backoffs == {"fail": T0 + 1}
    assert len(hit.jobs) == 1
    # The second prefetched job's type is now backing off: it was handed back, not run.
    assert world.sizes("fail") == QueueSizes(1, 2, 0, 0)


def test_backoffs_live_in_the_process_without_a_file(world: World) -> None:
    world.push("thr", 2)
    result = world.run(rates={"thr": 1.0})
    assert len(result.jobs) == 1
    assert result.backoffs == {"thr": T0 + 1}


# -- the queue itself failing ---------------------------------------------------------------------


def test_an_unreachable_queue_ends_the_run_with_exception() -> None:
    backend = RedisBackend("redis://127.0.0.1:1/0")
    executor = JobExecutor(JobQueueGroup(backend, DOMAIN))
    result = executor.run(RunOptions(job_type="null"))
    assert result.reached == Reached.EXCEPTION
    assert result.jobs == []
    assert result.backoffs == {}
    assert result.elapsed == 0


# -- small parts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("150M", 150 * 1024**2),
        ("2g", 2 * 1024**3),
        ("512k", 512 * 1024),
        ("1048576", 1048576),
        ("max", None),
        ("-1", None),
        ("default", 7),
    ],
)
def test_parse_memory_limit(text: str, expected: int | None) -> None:
    assert parse_memory_limit(text, default=7) == expected


def test_parse_memory_limit_refuses_junk() -> None:
    with pytest.raises(ValueError, match="150M"):
        parse_memory_limit("lots")


def test_describe_exception() -> None:
    assert describe_exception(KeyError("k")) == "KeyError: 'k'"
    assert describe_exception(CustomError("x")) == "tests.test_execute.CustomError: x"


# -- per-job metrics (JobRunner::executeJob) -------------------------------------------------


@dataclass
class SampleLog:
    """A :class:`JobMetrics` sink that keeps what it is given."""

    samples: list[JobSample] = field(default_factory=list)
    flushes: int = 0
    broken: bool = False

    def job_done(self, sample: JobSample) -> None:
        if self.broken:
            raise RuntimeError("the metrics sink is down")
        self.samples.append(sample)

    def flush(self) -> None:
        self.flushes += 1


def test_each_job_gives_a_sample_with_its_ready_root_and_run_times(world: World) -> None:
    queue = world.group.queue("ok")
    world.group.push(JobSpec.create("ok", {"n": 0, "seconds": 0.25}))
    world.group.push(JobSpec.create("ok", {"n": 1}, release_at=T0 + 5))
    world.group.push(JobSpec.create("ok", {"n": 2, **new_root_job_params("k", now=T0 - 100)}))
    world.unix.advance(10)
    assert queue.maintain(MaintenancePolicy()).undelayed == 1
    log = SampleLog()
    result = world.executor(metrics=log).run(RunOptions(job_type="ok"))
    assert len(result.jobs) == 3
    assert {(s.ready, s.root, s.ms) for s in log.samples} == {
        (T0, None, 250),  # ready when enqueued
        (T0 + 5, None, 0),  # a delayed job is ready at its release time
        (T0, T0 - 100, 0),
    }
    assert {(s.job_type, s.start) for s in log.samples} == {("ok", T0 + 10)}
    assert all(s.rss_delta >= 0 for s in log.samples)
    assert log.flushes == 1  # once, at the end of the run


def test_a_failing_metrics_sink_costs_neither_the_job_nor_the_run(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.push("ok", 2)
    result = world.executor(metrics=SampleLog(broken=True)).run(RunOptions())
    assert jobs_of(result) == [("ok", "ok", None)] * 2
    assert world.sizes("ok") == QueueSizes(0, 0, 0, 0)
    assert "the metrics sink is down" in caplog.text


def test_job_statsd_sends_mediawikis_older_metric_names(
    world: World, statsd_listener: StatsdListener
) -> None:
    world.group.push(JobSpec.create("ok", {"n": 0, "seconds": 0.5}))
    world.group.push(JobSpec.create("fail", {**new_root_job_params("k", now=T0 - 100)}))
    world.unix.advance(7)
    sink = JobStatsd(Statsd("127.0.0.1", statsd_listener.port))
    try:
        world.executor(metrics=sink).run(RunOptions())
        statsd_listener.drain()  # the end of the run sent everything
    finally:
        sink.close()
    lines = statsd_listener.lines
    assert statsd_values(lines, "jobqueue.pickup_delay.all", "ms") == [7000, 7000]
    assert statsd_values(lines, "jobqueue.pickup_delay.ok", "ms") == [7000]
    assert statsd_values(lines, "jobqueue.pickup_delay.fail", "ms") == [7000]
    assert statsd_values(lines, "jobqueue.pickup_root_age.fail", "ms") == [107000]
    assert statsd_values(lines, "jobqueue.pickup_root_age.ok", "ms") == []
    assert statsd_values(lines, "jobqueue.run.ok", "ms") == [500]
    assert statsd_values(lines, "jobqueue.run.fail", "ms") == [0]
    for job_type in ("ok", "fail"):
        [delta] = statsd_values(lines, f"jobqueue.rss_delta.{job_type}", "c")
        assert delta >= 0
    assert len(lines) == 9
    assert all(len(d) <= MAX_DATAGRAM for d in statsd_listener.datagrams)


def test_job_statsd_holds_packets_until_a_datagram_is_full_or_a_second_passed(
    statsd_listener: StatsdListener,
) -> None:
    mono = FakeClock(0.0)
    sink = JobStatsd(Statsd("127.0.0.1", statsd_listener.port), monotonic=mono)
    sample = JobSample("a:b|c d@e", start=T0, ready=T0 + 3, root=None, ms=12, rss_delta=0)
    sink.job_done(sample)
    statsd_listener.drain()
    assert statsd_listener.lines == []  # held: less than a datagram, no second passed
    mono.advance(1)
    sink.job_done(sample)
    statsd_listener.drain()
    one_job = [
        "jobqueue.pickup_delay.all:0|ms",  # ready after the start (clock skew): 0, not < 0
        "jobqueue.pickup_delay.a_b_c_d_e:0|ms",  # the type made safe for a statsd line
        "jobqueue.run.a_b_c_d_e:12|ms",
        "jobqueue.rss_delta.a_b_c_d_e:0|c",
    ]
    assert statsd_listener.lines == one_job * 2
    for _ in range(MAX_DATAGRAM // 100):  # about 130 bytes per job
        sink.job_done(sample)
    statsd_listener.drain()
    assert len(statsd_listener.lines) > 8  # a full datagram went out at once
    sink.close()
    statsd_listener.drain()
    assert len(statsd_listener.lines) == 4 * (2 + MAX_DATAGRAM // 100)
