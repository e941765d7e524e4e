"""Idle runners waiting for work: ``JobQueueGroup.waiter``, jobs claimed for a runner, and
``mwjobs run-jobs --wait`` woken by pushes."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest
import redis

from mwjobs.execution.executor import JobExecutor, Reached, RunOptions
from mwjobs.execution.loop import _Interrupted, _StopOnTerm
from mwjobs.group import JobQueueGroup
from mwjobs.model.data import JobSpec, JobState
from mwjobs.model.registry import JobRegistry
from mwjobs.model.runnable import Job, NullJob
from mwjobs.queues.base import PollingWaiter
from mwjobs.queues.memory import MemoryBackend
from mwjobs.queues.redis import RedisBackend
from mwjobs.queues.redis.handoff import HandoffWaiter
from tests.servers import RedisServer, wait_until
from tests.test_run_jobs_cli import WIKI, argv, documents, jobs_dir, push
from tests.test_run_jobs_cli import started as started_process

__all__ = ["jobs_dir"]  # the fixture, shared with test_run_jobs_cli


def registry(*types: str) -> JobRegistry:
    reg = JobRegistry(builtins=False, entry_points=False)
    for job_type in types:
        reg.add(job_type, NullJob)
    return reg


def test_claimed_jobs_run_first_and_the_rest_go_back(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    group = JobQueueGroup(RedisBackend(redis_server.url), WIKI, registry=registry("null"))
    group.push([JobSpec.create("null", {"n": n}) for n in range(3)])
    claimed = group.pop_many("null", 3)
    group.push([JobSpec.create("null", {"n": 9})])
    executor = JobExecutor(group)
    result = executor.run(RunOptions(job_type="null", max_jobs=1), claimed)
    assert result.reached == Reached.JOB_LIMIT and len(result.jobs) == 1
    queue = group.queue("null")
    sizes = queue.sizes()
    assert (sizes.unclaimed, sizes.claimed) == (3, 0)  # n=9 and the two handed back
    assert sorted(str(j.params["n"]) for j in queue.pop_many(10)) == ["1", "2", "9"]


def test_claimed_jobs_of_an_unknown_type_go_back(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    backend = RedisBackend(redis_server.url)
    group = JobQueueGroup(backend, WIKI, registry=registry("null"))
    other = backend.queue(WIKI, "unknown")
    other.push([JobSpec.create("unknown", {})])
    claimed = other.pop_many(1)
    result = JobExecutor(group).run(RunOptions(job_type="unknown"), claimed)
    assert result.reached == Reached.NONE_POSSIBLE
    assert (other.sizes().unclaimed, other.sizes().claimed) == (1, 0)


def test_a_group_waits_on_every_default_type(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    group = JobQueueGroup(
        RedisBackend(redis_server.url), WIKI, registry=registry("a", "b", "c"),
        excluded_from_default=["c"],
    )  # fmt: skip
    waiter = group.waiter()
    assert isinstance(waiter, HandoffWaiter)
    done: list[list[object]] = []
    blocked = threading.Thread(target=lambda: done.append(list(waiter.wait(10))), daemon=True)
    blocked.start()
    a, b, c = (group.queue(t).keys.waiters for t in "abc")  # type: ignore[attr-defined]
    wait_until(lambda: redis_client.zcard(a) == redis_client.zcard(b) == 1, 5, "registrations")
    assert redis_client.zcard(c) == 0  # excluded from the default types
    group.push([JobSpec.create("b", {})])
    blocked.join(10)
    assert len(done) == 1 and len(done[0]) == 1
    assert waiter.close() == []
    # Served on b: its member of a's set is dead (no :live key) and passed over by pushes.
    assert not redis_client.exists(waiter.key + ":live")
    group.push([JobSpec.create("a", {})])
    assert group.queue("a").sizes().unclaimed == 1


def test_polling_waiter_returns_when_a_job_is_ready() -> None:
    group = JobQueueGroup(MemoryBackend(), WIKI, registry=registry("null"))
    waiter = group.waiter("null")
    assert isinstance(waiter, PollingWaiter)
    started = time.monotonic()
    assert waiter.wait(0.1) == []
    assert time.monotonic() - started >= 0.1  # nothing ready: the whole timeout
    pusher = threading.Timer(0.05, lambda: group.push([JobSpec.create("null", {})]))
    pusher.start()
    assert waiter.wait(30) == []
    pusher.join()
    assert group.queue("null").sizes().unclaimed == 1  # returned because it is there


def test_run_jobs_wait_is_woken_by_a_push_and_leaves_no_registration(
    redis_server: RedisServer, redis_client: redis.Redis, jobs_dir: Path
) -> None:
    group = JobQueueGroup(RedisBackend.from_client(redis_client), WIKI)
    queue = group.queue("recentChangesUpdate")
    waiters = queue.keys.waiters  # type: ignore[attr-defined]
    out_path = jobs_dir / "out.json"
    with out_path.open("w") as out:
        args = argv(redis_server, jobs_dir, "--result=json", "--wait", "--maxjobs=1",
                    "--type=recentChangesUpdate")  # fmt: skip
        with started_process(args, out) as proc:
            # Idle after an empty run: blocked on its handoff list, registered on the queue.
            wait_until(lambda: bool(redis_client.zcard(waiters)), 30, "the idle registration")
            push(group, "recentChangesUpdate", 1)
            assert proc.wait(timeout=30) == 0
    docs = documents(out_path.read_text())
    assert docs[0]["reached"] == "none-ready" and docs[0]["jobs"] == []
    assert docs[-1]["reached"] == "job-limit"
    assert [job["status"] for d in docs for job in d["jobs"]] == ["ok"]
    assert redis_client.zcard(waiters) == 0
    assert queue.sizes().total == 0  # ran and acked; nothing left claimed


def test_run_jobs_wait_interrupted_while_idle_leaves_cleanly(
    redis_server: RedisServer, redis_client: redis.Redis, jobs_dir: Path
) -> None:
    queue = JobQueueGroup(RedisBackend.from_client(redis_client), WIKI).queue("chatty")
    waiters = queue.keys.waiters  # type: ignore[attr-defined]
    proc = subprocess.Popen(
        argv(redis_server, jobs_dir, "--result=json", "--wait", "--type=chatty"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: bool(redis_client.zcard(waiters)), 30, "the idle registration")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0  # interrupted
    assert redis_client.zcard(waiters) == 0, err.decode()


class Step(Job):
    """Records that it ran; ``stop`` makes it raise KeyboardInterrupt (a Ctrl-C mid-run)."""

    ran: ClassVar[list[int]] = []

    def run(self) -> bool:
        Step.ran.append(int(str(self.params["n"])))
        if self.params.get("stop"):
            raise KeyboardInterrupt
        return True


def test_an_interrupt_acks_what_ran_and_hands_back_what_did_not(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    reg = JobRegistry(builtins=False, entry_points=False)
    reg.add("step", Step)
    group = JobQueueGroup(RedisBackend(redis_server.url), WIKI, registry=reg)
    group.push([JobSpec.create("step", {"n": 1}), JobSpec.create("step", {"n": 2, "stop": 1}),
                JobSpec.create("step", {"n": 3})])  # fmt: skip
    claimed = group.pop_many("step", 3)  # as handed over by a waiter
    Step.ran.clear()
    with pytest.raises(KeyboardInterrupt):
        JobExecutor(group).run(RunOptions(job_type="step", batch=10), claimed)
    assert Step.ran == [1, 2]
    queue = group.queue("step")
    # 1 ran and was acked (it must not run again); 2 was interrupted mid-run and stays
    # claimed for the chron; 3 never started and is queued again.
    assert [j.params["n"] for j in queue.list_jobs(JobState.CLAIMED)] == [2]
    assert [j.params["n"] for j in queue.list_jobs(JobState.UNCLAIMED)] == [3]


def test_run_jobs_wait_rests_a_second_when_ready_jobs_are_not_its_own(
    redis_server: RedisServer, redis_client: redis.Redis, jobs_dir: Path
) -> None:
    # An unknown --type: every run is none-possible, yet its queue has a ready job.
    JobQueueGroup(RedisBackend.from_client(redis_client), WIKI).push(
        JobSpec.create("notRegistered", {})
    )
    out_path = jobs_dir / "out.json"
    with out_path.open("w") as out:
        args = argv(redis_server, jobs_dir, "--result=json", "--wait", "--type=notRegistered")
        started = time.monotonic()
        with started_process(args, out) as proc:
            wait_until(lambda: len(documents(out_path.read_text())) >= 4, 30, "four runs")
            elapsed = time.monotonic() - started
            proc.terminate()
            assert proc.wait(timeout=30) == 0
    # The first early wake-up runs at once (the jobs might be ours); after that every empty
    # run is followed by a second's rest, as MediaWiki's sleep: not a busy loop.
    assert elapsed >= 1.9
    docs = documents(out_path.read_text())
    assert {d["reached"] for d in docs} == {"none-possible"}


def test_run_jobs_wait_ends_cleanly_when_its_server_goes(
    tmp_path_factory: pytest.TempPathFactory, jobs_dir: Path
) -> None:
    server = RedisServer(tmp_path_factory.mktemp("redis-gone"))
    server.start()
    try:
        client = redis.Redis.from_url(server.url)
        out_path = jobs_dir / "out.json"
        with out_path.open("w") as out:
            args = argv(server, jobs_dir, "--result=json", "--wait", "--type=chatty")
            with started_process(args, out) as proc:
                wait_until(lambda: bool(client.keys("*:live")), 30, "the idle registration")
                server.kill()
                assert proc.wait(timeout=30) == 0
        docs = documents(out_path.read_text())
        assert docs[-1] == {"jobs": [], "reached": "exception"}
        client.close()
    finally:
        server.stop()


def test_run_jobs_stops_after_the_current_job_on_sigterm(
    redis_server: RedisServer, redis_client: redis.Redis, jobs_dir: Path
) -> None:
    group = JobQueueGroup(RedisBackend.from_client(redis_client), WIKI)
    group.push([JobSpec.create("null", {"usleep": 500_000}) for _ in range(3)])
    out_path = jobs_dir / "out.json"
    with out_path.open("w") as out:
        args = argv(redis_server, jobs_dir, "--result=json", "--type=null", "--batch=3")
        with started_process(args, out) as proc:
            queue = group.queue("null")
            wait_until(lambda: queue.sizes().claimed == 3, 30, "the batch's claim")
            proc.terminate()
            assert proc.wait(timeout=30) == 0
    [doc] = documents(out_path.read_text())
    assert doc["reached"] == "time-limit" and [j["status"] for j in doc["jobs"]] == ["ok"]
    sizes = group.queue("null").sizes()
    assert (sizes.unclaimed, sizes.claimed) == (2, 0)  # the two not started went back


def test_sigterm_interrupts_only_a_block_or_a_rest() -> None:
    waiter = PollingWaiter([])
    stop = _StopOnTerm()
    stop.waiter = waiter
    stop(signal.SIGTERM, None)  # busy (e.g. reading a handed job): noted, not raised
    assert stop.requested
    fresh = _StopOnTerm()
    fresh.waiter = waiter
    waiter.blocking = True
    with pytest.raises(_Interrupted):
        fresh(signal.SIGTERM, None)
    fresh(signal.SIGTERM, None)  # the same stop again, at once: ignored, not a kill


def test_a_group_stop_of_procs_lets_every_child_finish_its_job(
    redis_server: RedisServer, redis_client: redis.Redis, jobs_dir: Path
) -> None:
    # systemd and the command dispatcher signal the whole group, and the --procs parent
    # forwards the signal too: each child gets SIGTERM twice, which must not kill it.
    group = JobQueueGroup(RedisBackend.from_client(redis_client), WIKI)
    queue = group.queue("null")
    group.push([JobSpec.create("null", {"usleep": 700_000}) for _ in range(4)])
    out_path = jobs_dir / "out.json"
    with out_path.open("w") as out:
        proc = subprocess.Popen(
            argv(redis_server, jobs_dir, "--result=json", "--type=null", "--procs=2"),
            stdout=out, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            wait_until(lambda: queue.sizes().claimed == 2, 30, "both children running a job")
            os.killpg(proc.pid, signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    docs = documents(out_path.read_text())
    assert [[j["status"] for j in d["jobs"]] for d in docs] == [["ok"], ["ok"]]
    sizes = queue.sizes()
    assert (sizes.unclaimed, sizes.claimed) == (2, 0)


def test_an_idle_wait_without_a_type_does_not_reread_the_queue_list(
    redis_server: RedisServer, redis_client: redis.Redis, jobs_dir: Path
) -> None:
    out_path = jobs_dir / "out.json"
    with out_path.open("w") as out:
        args = argv(redis_server, jobs_dir, "--result=json", "--wait")
        with started_process(args, out) as proc:
            wait_until(lambda: len(documents(out_path.read_text())) >= 1, 30, "the first run")
            redis_client.config_resetstat()
            wait_until(lambda: len(documents(out_path.read_text())) >= 3, 30, "two idle runs")
            stats = redis_client.info("commandstats")
            proc.terminate()
            assert proc.wait(timeout=30) == 0
    assert "cmdstat_smembers" not in stats  # the 15 s cache holds while nothing is ready
