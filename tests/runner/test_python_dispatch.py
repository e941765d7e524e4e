"""The python dispatcher: its workers with real processes on the private Redis, then the
runner with it in-process, then ``mwjobs chron`` + ``mwjobs runner`` end to end (issue 6):
10,000 jobs over 50 wikis run exactly once; with a worker SIGKILLed mid-batch every job
still runs, the lost claims recycled by the chron."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import selectors
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from mwjobs.config import PythonDispatcherConfig, StatsdConfig, parse_config
from mwjobs.model.data import JobSpec
from mwjobs.queues.backends import location_of
from mwjobs.queues.redis import RedisBackend
from mwjobs.runner.dispatch import DispatchError, PythonDispatcher, RunOutcome, RunRequest
from mwjobs.runner.dispatch.python import DIED, WorkerRun
from mwjobs.runner.pyworker import Boot, FrameReader, encode_frame
from mwjobs.runner.result import RunSummary, parse_result
from mwjobs.runner.service import EXIT_HALT, Runner
from mwjobs.runner.slots import Slot
from tests.daemons import Daemon, spawner
from tests.runner.conftest import Recorder, config_doc, drive, make_config, write_config
from tests.runner.test_daemon import gone
from tests.runner.test_supervise import alive
from tests.servers import RedisServer, StatsdListener, statsd_values, wait_until

ROOT = Path(__file__).resolve().parents[2]
MODULE = "tests.runner.pyjobs"
TYPE = "e2eRecord"
WIKI = "unitwiki"
DEADLINE = 20.0
Make = Callable[..., PythonDispatcher]


def request(domain: str = WIKI, maxtime: int = 30) -> RunRequest:
    return RunRequest(job_type=TYPE, domain=domain, maxtime=maxtime, maxmem="300M", limit=60)


def push(url: str, count: int, domain: str = WIKI, start: int = 0, sleep: float = 0) -> None:
    backend = RedisBackend(url)
    try:
        specs = [JobSpec.create(TYPE, {"n": start + i, "sleep": sleep}) for i in range(count)]
        assert backend.queue(domain, TYPE).push(specs) == count
    finally:
        backend.close()


def claimed(url: str, domain: str = WIKI) -> int:
    backend = RedisBackend(url)
    try:
        return backend.queue(domain, TYPE).sizes().claimed
    finally:
        backend.close()


@pytest.fixture
def make_pool(redis_server: RedisServer) -> Iterator[Make]:
    """Checked dispatchers (workers started) on the private Redis; closed after the test."""
    made: list[PythonDispatcher] = []

    def make(size: int = 1, **kw: Any) -> PythonDispatcher:
        modules = kw.pop("modules", (MODULE,))
        config = PythonDispatcherConfig(modules=modules, paths=(str(ROOT),), **kw)
        pool = PythonDispatcher(config, location_of(redis_server.url), size)
        made.append(pool)
        pool.check()
        return pool

    yield make
    for pool in made:
        pool.close()


@pytest.fixture
def selector() -> Iterator[selectors.BaseSelector]:
    with selectors.DefaultSelector() as sel:
        yield sel


def finish(pool: PythonDispatcher, run: WorkerRun, sel: selectors.BaseSelector) -> RunOutcome:
    """Drive the selector (as the runner's loop does) until the run is over."""
    deadline = time.monotonic() + DEADLINE
    while (outcome := run.poll()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError("the run did not end")
        for key, _ in sel.select(0.05):
            key.data()
        pool.reap()
    return outcome


def result_of(outcome: RunOutcome) -> RunSummary:
    assert outcome.succeeded, outcome
    result = parse_result(outcome.stdout)
    assert result.valid, result.error
    return result


# -- the protocol ------------------------------------------------------------------------


def test_frames_are_read_whole_from_pieces() -> None:
    reader = FrameReader()
    data = encode_frame("ready", rss=7) + encode_frame("result", b'{"jobs":[]}\n', 9)
    frames = [frame for i in range(len(data)) for frame in reader.feed(data[i : i + 1])]
    assert [(f.kind, f.rss, f.payload) for f in frames] == [
        ("ready", 7, b""),
        ("result", 9, b'{"jobs":[]}\n'),
    ]
    with pytest.raises(ValueError, match="not a frame header"):
        FrameReader().feed(b"Traceback (most recent call last):\n")


# -- the pool with real workers ----------------------------------------------------------


def test_a_worker_runs_an_assignment_and_returns_the_runjobs_result(
    make_pool: Make, selector: selectors.BaseSelector, redis_server: RedisServer,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    push(redis_server.url, 25)
    pool = make_pool()
    run = pool.start(request(), selector)
    assert run.pid is not None and run.label.startswith(f"python worker {run.pid}: --wiki=")
    result = result_of(finish(pool, run, selector))
    assert (result.ok, result.failed, result.reached) == (25, 0, "none-ready")
    assert redis_client.scard("e2e:runs") == 25
    assert redis_client.smembers("e2e:pids") == {str(run.pid).encode()}  # ran in the worker
    assert claimed(redis_server.url) == 0  # all acked
    # The same worker takes the next batch: no interpreter start per batch.
    push(redis_server.url, 3, start=100)
    again = pool.start(request(), selector)
    assert again.pid == run.pid
    assert result_of(finish(pool, again, selector)).ok == 3
    assert pool.started == 1


@pytest.fixture
def private_backoff_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers started in this test keep their backoff file in the test's own temp dir, so
    a backoff never throttles another test's workers."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))


@pytest.mark.usefixtures("private_backoff_file")
def test_throttling_rates_from_the_config_reach_the_workers(
    make_pool: Make, selector: selectors.BaseSelector, redis_server: RedisServer,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    push(redis_server.url, 2)
    # 0.5 items/s: the first job earns a 2 s backoff, so the batch stops after it.
    pool = make_pool(throttling=((TYPE, 0.5),))
    result = result_of(finish(pool, pool.start(request(), selector), selector))
    assert result.ok == 1
    assert redis_client.scard("e2e:runs") == 1
    assert TYPE in result.backoffs


def test_workers_send_per_job_metrics_to_the_runners_statsd(
    redis_server: RedisServer, redis_client: redis.Redis, selector: selectors.BaseSelector,
    statsd_listener: StatsdListener,
) -> None:  # fmt: skip
    doc = config_doc({"kind": "python", "modules": [MODULE], "paths": [str(ROOT)]},
                     redis=[redis_server.address])  # fmt: skip
    doc["statsd"] = statsd_listener.address
    pool = PythonDispatcher.from_config(parse_config(json.dumps(doc), "test.json"))
    try:
        assert pool.boot.statsd == StatsdConfig("127.0.0.1", statsd_listener.port)
        pool.check()
        # Enqueued 30 s ago; each job sleeps 20 ms on its first attempt.
        backend = RedisBackend(redis_server.url, clock=lambda: time.time() - 30)
        try:
            specs = [JobSpec.create(TYPE, {"n": i, "sleep": 0.02}) for i in range(3)]
            backend.queue(WIKI, TYPE).push(specs)
        finally:
            backend.close()
        assert result_of(finish(pool, pool.start(request(), selector), selector)).ok == 3
    finally:
        pool.close()
    statsd_listener.receive_until(
        lambda lines: len(statsd_values(lines, f"jobqueue.rss_delta.{TYPE}", "c")) == 3,
        DEADLINE, "three jobs' metrics",
    )  # fmt: skip
    lines = statsd_listener.lines
    delays = statsd_values(lines, f"jobqueue.pickup_delay.{TYPE}", "ms")
    assert len(delays) == 3 and all(ms >= 30_000 for ms in delays)
    assert statsd_values(lines, "jobqueue.pickup_delay.all", "ms") == delays
    runs = statsd_values(lines, f"jobqueue.run.{TYPE}", "ms")
    assert len(runs) == 3 and all(ms >= 20 for ms in runs)


def test_the_boot_message_carries_the_statsd_target() -> None:
    boot = Boot((MODULE,), (), location_of("127.0.0.1:6379"),
                statsd=StatsdConfig("::1", 8125))  # fmt: skip
    assert Boot.from_line(boot.to_line()) == boot
    without = dataclasses.replace(boot, statsd=None)
    assert Boot.from_line(without.to_line()) == without


def test_a_worker_is_replaced_after_max_batches(
    make_pool: Make, selector: selectors.BaseSelector, redis_server: RedisServer,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    pool = make_pool(max_batches=2)
    pids = []
    for i in range(3):
        push(redis_server.url, 2, start=10 * i)
        run = pool.start(request(), selector)
        assert result_of(finish(pool, run, selector)).ok == 2
        pids.append(run.pid)
        if i == 1:  # its last batch: the run ended only once the worker was gone
            assert run.pid is not None and not alive(run.pid)
    assert pids[0] == pids[1] != pids[2]
    assert pool.started == 2
    assert redis_client.scard("e2e:runs") == 6


def test_a_worker_killed_mid_batch_is_replaced_and_its_batch_is_an_error(
    make_pool: Make, selector: selectors.BaseSelector, redis_server: RedisServer,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    push(redis_server.url, 5, sleep=30)
    pool = make_pool(batch=5)
    run = pool.start(request(), selector)
    wait_until(lambda: redis_client.get("e2e:busy") is not None, DEADLINE, "a job to run")
    assert run.pid is not None
    os.kill(run.pid, signal.SIGKILL)
    outcome = finish(pool, run, selector)
    assert not outcome.succeeded
    assert outcome.status == "signal 9 (SIGKILL)" and outcome.problem == DIED
    assert claimed(redis_server.url) == 5  # left for the chron to recycle
    assert pool.started == 2 and len(pool.live) == 1  # replaced at once
    push(redis_server.url, 2, domain="otherwiki")
    after = pool.start(request("otherwiki"), selector)
    assert after.pid != run.pid
    assert result_of(finish(pool, after, selector)).ok == 2


def test_sigterm_ends_the_batch_after_the_current_job(
    make_pool: Make, selector: selectors.BaseSelector, redis_server: RedisServer,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    push(redis_server.url, 3, sleep=0.5)
    pool = make_pool(batch=3)
    run = pool.start(request(), selector)
    wait_until(lambda: redis_client.get("e2e:busy") is not None, DEADLINE, "a job to run")
    run.terminate()
    result = result_of(finish(pool, run, selector))
    assert (result.ok, result.reached) == (1, "time-limit")  # the job finished, no more
    assert run.pid is not None and not alive(run.pid)  # the worker left after it
    backend = RedisBackend(redis_server.url)
    try:
        sizes = backend.queue(WIKI, TYPE).sizes()
    finally:
        backend.close()
    assert (sizes.claimed, sizes.unclaimed) == (0, 2)  # the other two were handed back


def test_runs_wait_for_a_free_worker_when_there_are_fewer_workers_than_slots(
    make_pool: Make, selector: selectors.BaseSelector, redis_server: RedisServer,
) -> None:  # fmt: skip
    push(redis_server.url, 4, domain="a")
    push(redis_server.url, 4, domain="b", start=10)
    pool = make_pool(size=1)
    first = pool.start(request("a"), selector)
    second = pool.start(request("b"), selector)
    assert second.pid is None and second.label == "waiting for a python worker"
    assert result_of(finish(pool, first, selector)).ok == 4
    assert result_of(finish(pool, second, selector)).ok == 4
    assert second.pid == first.pid
    third = pool.start(request("a"), selector)
    fourth = pool.start(request("b"), selector)
    fourth.terminate()  # still waiting: it ends without having run
    outcome = finish(pool, fourth, selector)
    assert (outcome.status, outcome.succeeded) == ("cancelled", False)
    assert result_of(finish(pool, third, selector)).reached == "none-ready"


def test_a_job_module_that_does_not_import_fails_the_check(redis_server: RedisServer) -> None:
    config = PythonDispatcherConfig(modules=("tests.runner.no_such_jobs",), paths=(str(ROOT),))
    pool = PythonDispatcher(config, location_of(redis_server.url), 3)
    with pytest.raises(DispatchError, match=r"No module named 'tests\.runner\.no_such_jobs'"):
        pool.check()
    assert pool.workers == []  # every worker was stopped and reaped


# -- the runner with the python dispatcher -----------------------------------------------


def test_the_runner_counts_batches_and_halts_when_workers_stop_booting(
    start_runner: Callable[..., Runner], tmp_path: Path, redis_server: RedisServer,
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    breaker = tmp_path / "broken"
    monkeypatch.setenv("MWJOBS_TEST_BREAK", str(breaker))  # the workers inherit it
    push(redis_server.url, 10, sleep=0.01)
    config = make_config({"kind": "python", "modules": [MODULE], "paths": [str(ROOT)]},
                         redis=[redis_server.address])  # fmt: skip
    metrics = Recorder()
    done: list[tuple[RunOutcome, RunSummary]] = []

    def on_finish(slot: Slot, outcome: RunOutcome, result: RunSummary, now: float) -> None:
        done.append((outcome, result))

    runner = start_runner(config, {(TYPE, WIKI): 1}, metrics=metrics, on_finish=on_finish)
    drive(runner, lambda: redis_client.scard("e2e:runs") == 10 and len(done) >= 1, "a batch")
    assert runner.totals.jobs_ok == 10 and runner.totals.errors == 0
    assert metrics.total(f"pop.{TYPE}.ok.testhost") == 10
    # Broken code is deployed; the worker dies; its replacement cannot import the module.
    breaker.touch()
    pool = runner.dispatcher
    assert isinstance(pool, PythonDispatcher)
    for worker in pool.live:
        os.kill(worker.pid, signal.SIGKILL)
    drive(runner, lambda: runner.finished, "the runner to halt")
    assert runner.exit_status == EXIT_HALT
    assert pool.broken is not None and "broken on purpose" in pool.broken


def test_a_push_starts_its_queue_at_once_without_a_chron(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    # No chron writes the map, and the runner reads it once a minute: only the push
    # wake-up channel can tell the runner about the jobs.
    config = make_config({"kind": "python", "modules": [MODULE], "paths": [str(ROOT)]},
                         redis=[redis_server.address],
                         timing={"aggregator_cache_ttl": 60})  # fmt: skip
    runner = Runner(config, metrics=Recorder(), host="testhost")
    runner.__enter__()
    try:
        runner.step(max_wait=0)  # reads the (empty) map, starts listening
        for runs in (1, 2):  # the second push ends the lay-off the first run caused
            push(redis_server.url, 3, start=10 * runs)
            started = time.monotonic()
            ran = functools.partial(lambda n: redis_client.scard("e2e:runs") == n, 3 * runs)
            drive(runner, ran, "the pushed jobs to run")
            assert time.monotonic() - started < 5
            ended = functools.partial(lambda n: runner.totals.finished >= n, runs)
            drive(runner, ended, "the run to end")
    finally:
        runner.__exit__(None, None, None)
        runner.close()


# -- end to end: Redis + mwjobs chron + mwjobs runner ------------------------------------

E2E_WIKIS = [f"wiki{i:02d}" for i in range(50)]
E2E_JOBS = 10_000


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []
    chrons = spawner(tmp_path, "chron")
    runners = spawner(tmp_path, "runner")
    spawn = {"chron": next(chrons), "runner": next(runners)}

    def start(command: str, config: Path, *args: str) -> Daemon:
        daemon = spawn[command](config, *args)
        started.append(daemon)
        return daemon

    yield start
    for gen in (chrons, runners):
        next(gen, None)  # kills what is left


def e2e_config(tmp_path: Path, server: RedisServer, **limits: Any) -> Path:
    dispatcher = {"kind": "python", "modules": [MODULE], "paths": [str(ROOT)], "batch": 20}
    doc = config_doc(
        dispatcher,
        runners=4,
        redis=[server.address],
        limits=limits or None,
        timing={"chron_period": 0.2, "aggregator_cache_ttl": 0.2},
    )
    return write_config(tmp_path / "jobrunner.json", doc)


def push_e2e(url: str, *, sleeper: bool = False) -> None:
    """200 jobs per wiki; with ``sleeper``, the first job popped from wiki00 sleeps 30 s
    (on its first attempt), so its worker is surely in the middle of a batch."""
    per_wiki = E2E_JOBS // len(E2E_WIKIS)
    for i, wiki in enumerate(E2E_WIKIS):
        if sleeper and i == 0:
            push(url, 1, domain=wiki, sleep=30)  # pushed first: popped first
            push(url, per_wiki - 1, domain=wiki, start=1)
        else:
            push(url, per_wiki, domain=wiki, start=i * per_wiki)


def queues_empty(url: str) -> bool:
    backend = RedisBackend(url)
    try:
        return all(backend.queue(w, TYPE).sizes().total == 0 for w in E2E_WIKIS)
    finally:
        backend.close()


def test_end_to_end_10000_jobs_over_50_wikis_run_exactly_once(
    daemons: Callable[..., Daemon], tmp_path: Path, redis_server: RedisServer,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    config = e2e_config(tmp_path, redis_server)
    push_e2e(redis_server.url)
    started = time.monotonic()
    chron = daemons("chron", config)
    runner = daemons("runner", config, "--verbose")
    wait_until(lambda: int(redis_client.get("e2e:count") or 0) >= E2E_JOBS, 60, "every job")
    drained = time.monotonic() - started
    wait_until(lambda: queues_empty(redis_server.url), DEADLINE, "every job to be acked")
    for daemon in (runner, chron):
        daemon.signal(signal.SIGTERM)
    assert (runner.wait(), chron.wait()) == (0, 0), runner.err[-3000:]
    assert int(redis_client.get("e2e:count") or 0) == E2E_JOBS  # none ran twice...
    assert redis_client.scard("e2e:runs") == E2E_JOBS  # ...and none was lost
    assert redis_client.llen("e2e:repeats") == 0
    assert redis_client.scard("e2e:pids") <= 4 * 2  # a few warm workers did all of it
    assert "ERROR" not in runner.err and "CRITICAL" not in runner.err, runner.err[-3000:]
    print(f"{E2E_JOBS} jobs over {len(E2E_WIKIS)} wikis ran in {drained:.1f} s")


def test_end_to_end_a_worker_killed_mid_batch_loses_no_job(
    daemons: Callable[..., Daemon], tmp_path: Path, redis_server: RedisServer,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    # A 2 s claimTTL: the chron recycles the killed worker's claims within seconds.
    config = e2e_config(tmp_path, redis_server, claimTTL={"*": 2})
    push_e2e(redis_server.url, sleeper=True)
    chron = daemons("chron", config)
    runner = daemons("runner", config)
    wait_until(lambda: redis_client.get("e2e:busy") is not None, 60, "the sleeper to run")
    victim = int(redis_client.get("e2e:busy") or 0)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: redis_client.scard("e2e:runs") == E2E_JOBS, 60, "every job to run")
    wait_until(lambda: queues_empty(redis_server.url), DEADLINE, "every claim to be settled")
    assert redis_client.scard("e2e:retried") >= 1  # recycled claims ran on a later attempt
    assert "died during a batch" in runner.err
    assert "Updated the state of" in chron.out  # the chron's recycle pass
    # The runner killed by SIGKILL leaves no worker behind (the guard, or EOF on stdin).
    workers = {int(pid) for pid in redis_client.smembers("e2e:pids")} - {victim}
    runner.process.kill()
    runner.process.wait()
    wait_until(lambda: all(gone(pid) for pid in workers), DEADLINE, "workers to exit")
    chron.signal(signal.SIGTERM)
    assert chron.wait() == 0
