"""``mwjobs runner`` as a real process: signals, reload, boot failures, no orphans."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from mwjobs.aggregator import encode_ready_map
from mwjobs.codec import AGGREGATOR_READY_KEY
from tests.daemons import DEADLINE, Daemon, spawner
from tests.runner.conftest import child_argv, config_doc, write_config
from tests.servers import RedisServer, wait_until


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    yield from spawner(tmp_path, "runner")


def publish(client: redis.Redis, *queues: tuple[str, str]) -> None:
    """A ready-queue map as a chron would write it."""
    fields = encode_ready_map(dict.fromkeys(queues, int(time.time())), int(time.time()))
    client.hset(AGGREGATOR_READY_KEY, mapping={k: v for k, v in fields.items()})


def running(directory: Path) -> set[int]:
    markers = directory / "running"
    return {int(p.name) for p in markers.iterdir()} if markers.is_dir() else set()


def gone(pid: int) -> bool:
    """Dead: no such process, or a zombie waiting for whoever inherited it to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def hold_config(path: Path, work: Path, server: RedisServer, runners: int, **kw: Any) -> Path:
    doc = config_doc(
        {"kind": "command", "argv": child_argv("hold", str(work))},
        runners=runners,
        redis=[server.address],
        **kw,
    )
    return write_config(path, doc)


def start_held(
    spawn: Callable[..., Daemon],
    tmp_path: Path,
    redis_server: RedisServer,
    redis_client: redis.Redis,
    runners: int,
) -> tuple[Daemon, Path, Path]:
    """A runner daemon whose ``runners`` slots all hold a run (see hold_config), once they
    do: (daemon, the runs' work folder, the config file)."""
    work = tmp_path / "work"
    work.mkdir()
    path = hold_config(tmp_path / "jobrunner.json", work, redis_server, runners=runners)
    publish(redis_client, ("null", "enwiki"))
    daemon = spawn(path)
    wait_until(lambda: len(running(work)) == runners, DEADLINE, f"{runners} held run(s)")
    return daemon, work, path


def start_stubborn(
    spawn: Callable[..., Daemon],
    tmp_path: Path,
    redis_server: RedisServer,
    redis_client: redis.Redis,
    **kw: Any,
) -> tuple[Daemon, list[int]]:
    """A runner daemon with two runs that ignore SIGTERM (for 60 s), once both run:
    (daemon, their pids). ``kw`` goes into the config (e.g. ``timing``)."""
    marks = tmp_path / "marks"
    doc = config_doc(
        {"kind": "command", "argv": child_argv("stubborn", "60", str(marks))},
        runners=2,
        redis=[redis_server.address],
        **kw,
    )
    publish(redis_client, ("null", "enwiki"))
    daemon = spawn(write_config(tmp_path / "jobrunner.json", doc))
    wait_until(lambda: len(list(marks.glob("*"))) == 2, DEADLINE, "two stubborn runs")
    return daemon, [int(p.name) for p in marks.glob("*")]


def test_sigterm_stops_the_children_and_exits_0(
    spawn: Callable[..., Daemon],
    tmp_path: Path,
    redis_server: RedisServer,
    redis_client: redis.Redis,
) -> None:
    daemon, work, _ = start_held(spawn, tmp_path, redis_server, redis_client, runners=2)
    pids = running(work)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert all(gone(pid) for pid in pids)
    out = daemon.out
    assert "NOTICE: Starting job spawner loop(s)..." in out
    assert "NOTICE: Initialized loop 0 with 2 runner(s)." in out
    assert "NOTICE: Caught signal (15)" in out
    assert "Sending SIGTERM to loop 0 slot" in out
    assert not (work / "done").exists()  # they were stopped, not finished


def test_children_that_ignore_sigterm_are_killed_after_the_grace(
    spawn: Callable[..., Daemon],
    tmp_path: Path,
    redis_server: RedisServer,
    redis_client: redis.Redis,
) -> None:
    daemon, pids = start_stubborn(
        spawn, tmp_path, redis_server, redis_client, timing={"stop_grace": 0.5}
    )
    started = time.monotonic()
    daemon.signal(signal.SIGINT)
    assert daemon.wait() == 0
    assert time.monotonic() - started >= 0.45
    assert all(gone(pid) for pid in pids)
    assert "did not stop after SIGTERM: sent SIGKILL." in daemon.err


def test_sighup_resizes_the_group_without_killing_runs(
    spawn: Callable[..., Daemon],
    tmp_path: Path,
    redis_server: RedisServer,
    redis_client: redis.Redis,
) -> None:
    daemon, work, path = start_held(spawn, tmp_path, redis_server, redis_client, runners=1)
    hold_config(path, work, redis_server, runners=3)
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: len(running(work)) == 3, DEADLINE, "three held runs")
    three = running(work)
    hold_config(path, work, redis_server, runners=1)
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: daemon.out.count("Reloaded the configuration") == 2, DEADLINE, "reload")
    assert running(work) == three  # shrinking killed nothing
    (work / "release").touch()

    def finished() -> set[int]:
        done = work / "done"
        return {int(line) for line in done.read_text().split()} if done.exists() else set()

    wait_until(lambda: three <= finished(), DEADLINE, "the three runs to finish normally")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert "Initialized loop 0 with 3 runner(s)." in daemon.out


def test_a_broken_config_on_reload_keeps_the_running_one(
    spawn: Callable[..., Daemon],
    tmp_path: Path,
    redis_server: RedisServer,
    redis_client: redis.Redis,
) -> None:
    daemon, _, path = start_held(spawn, tmp_path, redis_server, redis_client, runners=1)
    path.write_text('{"groups": ')
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: "Not reloading" in daemon.err, DEADLINE, "the reload error")
    assert daemon.process.poll() is None
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


@pytest.mark.parametrize(
    ("dispatcher", "message"),
    [
        ("/nonexistent/php runJobs.php", "'/nonexistent/php' is not found or not executable"),
        ("php x.php | tee log", 'uses the shell syntax "|"'),
        ({"kind": "python", "modules": ["no_such_jobs"]}, "No module named 'no_such_jobs'"),
    ],
)
def test_a_boot_failure_exits_1_with_the_reason(
    spawn: Callable[..., Daemon], tmp_path: Path, dispatcher: Any, message: str
) -> None:
    config = write_config(tmp_path / "jobrunner.json", config_doc(dispatcher))
    daemon = spawn(config)
    assert daemon.wait() == 1
    assert message in daemon.err


def test_children_die_with_a_runner_killed_by_sigkill(
    spawn: Callable[..., Daemon],
    tmp_path: Path,
    redis_server: RedisServer,
    redis_client: redis.Redis,
) -> None:
    daemon, pids = start_stubborn(spawn, tmp_path, redis_server, redis_client)
    daemon.process.kill()  # no finally, no handler: only the guard can clean up
    daemon.process.wait()
    wait_until(lambda: all(gone(pid) for pid in pids), DEADLINE, "the orphans to be killed")
