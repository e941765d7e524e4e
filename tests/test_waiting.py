"""Idle runners waiting for work: ``JobQueueGroup.waiter``, jobs claimed for a runner, and
``mwjobs run-jobs --wait`` woken by pushes."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import redis

from mwjobs.execute import JobExecutor, Reached, RunOptions
from mwjobs.group import JobQueueGroup
from mwjobs.job import JobSpec
from mwjobs.jobs import NullJob
from mwjobs.queues.base import PollingWaiter
from mwjobs.queues.memory import MemoryBackend
from mwjobs.queues.redis import RedisBackend
from mwjobs.queues.redis_handoff import HandoffWaiter
from mwjobs.registry import JobRegistry
from tests.servers import RedisServer, wait_until
from tests.test_run_jobs_cli import WIKI, argv, documents, jobs_dir, push, started

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
    assert waiter.wait(0.05) == []  # registers, times out
    for job_type, expected in (("a", 1), ("b", 1), ("c", 0)):
        assert redis_client.zcard(group.queue(job_type).keys.waiters) == expected  # type: ignore[attr-defined]
    assert waiter.close() == []
    assert redis_client.zcard(group.queue("a").keys.waiters) == 0  # type: ignore[attr-defined]


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
        with started(args, out) as proc:
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
