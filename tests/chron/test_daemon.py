"""``mwjobs chron`` as a real process: passes seen in Redis, signals, reload, exit codes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from mwjobs.chron import next_tick
from mwjobs.codec import queue_key
from mwjobs.model.data import JobSpec
from mwjobs.queues.redis import RedisBackend
from tests.chron.conftest import config_doc, ready_map, write_config
from tests.daemons import DEADLINE, MWJOBS, Daemon, spawner
from tests.servers import RedisServer, free_port, wait_until

FAST = {"chron_period": 0.2}  # passes 5 times a second: the tests wait less


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    yield from spawner(tmp_path, "chron")


def claimed_job(url: str, age: float, job_type: str = "null") -> None:
    """One job claimed ``age`` seconds ago (by the real clock)."""
    backend = RedisBackend(url, clock=lambda: time.time() - age)
    try:
        queue = backend.queue("enwiki", job_type)
        queue.push([JobSpec.create(job_type, {}, request_id="r")])
        assert queue.pop() is not None
    finally:
        backend.close()


def unclaimed(client: redis.Redis, job_type: str = "null") -> int:
    return int(client.llen(queue_key("enwiki", job_type, "l-unclaimed")))


def epoch(client: redis.Redis) -> int | None:
    return ready_map(client)[1]


def test_next_tick_keeps_the_cadence_and_skips_missed_ticks() -> None:
    assert next_tick(100.0, 1.0, 100.2) == 101.0
    assert next_tick(100.0, 1.0, 101.0) == 102.0  # a tick that is due now has passed
    assert next_tick(100.0, 1.0, 103.5) == 104.0  # 101..103 were missed: skipped
    assert next_tick(100.0, 2.5, 100.0) == 102.5


def test_daemon_passes_then_stops_cleanly_on_sigterm(
    spawn: Any, tmp_path: Path, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    claimed_job(redis_server.url, age=4000)
    config = write_config(tmp_path / "jobrunner.json", config_doc([redis_server.address]))
    daemon: Daemon = spawn(config)
    wait_until(lambda: unclaimed(redis_client) == 1, DEADLINE, "the stale job to be recycled")
    wait_until(lambda: epoch(redis_client) is not None, DEADLINE, "the ready-queue map")
    assert ready_map(redis_client)[0].keys() == {("null", "enwiki")}
    first = epoch(redis_client)
    assert first is not None
    wait_until(lambda: (epoch(redis_client) or 0) > first, DEADLINE, "another pass")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    out = daemon.out
    assert "NOTICE: Starting job chron loop(s)..." in out
    assert "NOTICE: Updated the state of 1 job(s) (recycle/undelay/abandon)." in out
    assert "NOTICE: Caught signal (15)" in out
    assert "DEBUG" not in out  # only with --verbose
    assert redis_client.keys("RedisJobChronService*") == []
    # PHP's DATE_ATOM stamp: 2026-11-23T14:27:30+00:00 NOTICE: ...
    assert out.splitlines()[0][19:].startswith(("+", "-", "Z"))


def test_sigint_also_exits_0(
    spawn: Any, tmp_path: Path, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    doc = config_doc([redis_server.address], timing=FAST)
    config = write_config(tmp_path / "jobrunner.json", doc)
    daemon: Daemon = spawn(config, "--verbose")
    wait_until(lambda: epoch(redis_client) is not None, DEADLINE, "a first pass")
    daemon.signal(signal.SIGINT)
    assert daemon.wait() == 0
    assert "Caught signal (2)" in daemon.out
    assert "DEBUG: Pass: 0 queue(s) on 1 partition(s)" in daemon.out


def test_sighup_reloads_and_a_broken_file_keeps_the_old_config(
    spawn: Any, tmp_path: Path, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    claimed_job(redis_server.url, age=120)  # not stale under the default claimTTL of 3600
    path = tmp_path / "jobrunner.json"
    write_config(path, config_doc([redis_server.address], timing=FAST))
    daemon: Daemon = spawn(path)
    wait_until(lambda: epoch(redis_client) is not None, DEADLINE, "a first pass")
    assert unclaimed(redis_client) == 0

    doc = config_doc([redis_server.address], limits={"claimTTL": {"*": 60}}, timing=FAST)
    write_config(path, doc)
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: unclaimed(redis_client) == 1, DEADLINE, "recycling under the new TTL")
    assert "Caught signal (1)" in daemon.out
    assert f"Reloaded the configuration from {path}." in daemon.out

    path.write_text('{"redis": {"aggregators": [], "queues": ["x:1"]}, "dispatcher": "x"}', "utf-8")
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: "Not reloading" in daemon.err, DEADLINE, "the reload error")
    assert "redis.aggregators" in daemon.err
    seen = epoch(redis_client) or 0
    wait_until(lambda: (epoch(redis_client) or 0) > seen, DEADLINE, "passes to go on")
    assert daemon.process.poll() is None
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"redis": ', "invalid JSON"),
        (
            '{"redis": {"aggregators": ["127.0.0.1:6379"], "queues": []}, "dispatcher": "x"}',
            "redis.queues",
        ),
        ('{"dispatcher": "x"}', "redis"),
    ],
)
def test_broken_config_at_start_exits_1_with_the_error(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "broken.json"
    path.write_text(text, "utf-8")
    done = subprocess.run(
        [str(MWJOBS), "chron", "--config-file", str(path)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert done.returncode == 1
    assert str(path) in done.stderr and expected in done.stderr
    assert done.stdout == ""


def test_missing_config_file_exits_1(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    done = subprocess.run(
        [str(MWJOBS), "chron", "--config-file", str(missing)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert done.returncode == 1 and "cannot read the configuration file" in done.stderr


def test_once_via_python_m(
    tmp_path: Path, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    claimed_job(redis_server.url, age=4000)
    good = write_config(tmp_path / "good.json", config_doc([redis_server.address]))
    done = subprocess.run(
        [sys.executable, "-m", "mwjobs", "chron", "--config-file", str(good), "--once"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Updated the state of 1 job(s)" in done.stdout
    assert unclaimed(redis_client) == 1

    dead = f"127.0.0.1:{free_port()}"
    partial = write_config(
        tmp_path / "partial.json",
        config_doc([redis_server.address, dead], [redis_server.address]),
    )
    done = subprocess.run(
        [str(MWJOBS), "chron", "--config-file", str(partial), "--once"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert done.returncode == 1
    assert f"Queue partition {dead} failed" in done.stderr
    assert "Failed to do periodic tasks for some queues." in done.stderr
