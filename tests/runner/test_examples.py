"""The operator examples are tested setups: each ``examples/jobrunner.*.json`` runs as
shipped, with only its servers pointed at this test's private ones.

- command: the real ``mwjobs runner`` daemon with the example's ``php runJobs.php`` template,
  a stand-in ``php`` on PATH that records its arguments and prints a MediaWiki 1.43 runJobs
  result, and a UDP socket as statsd (the original metric names on the wire);
- http (``rpc/RunJobs.php``) and special (signed ``Special:RunJobs``): the runner against the
  local MediaWiki stand-in of tests/runner/mwstub.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from mwjobs.config import parse_config, strip_comments
from mwjobs.metrics import host_name
from mwjobs.model.data import JobSpec
from mwjobs.queues.redis import RedisBackend
from mwjobs.runner.service import Runner
from tests.daemons import MWJOBS
from tests.runner.conftest import HOST, Recorder, drive
from tests.runner.mwstub import SECRET, Wiki
from tests.runner.test_daemon import publish
from tests.servers import RedisServer, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
StartRunner = Callable[..., Runner]


def example(name: str) -> dict[str, Any]:
    path = EXAMPLES / name
    doc: dict[str, Any] = json.loads(strip_comments(path.read_text(), str(path)))
    return doc


def test_the_command_example_runs_runjobs_and_reports_to_statsd(
    tmp_path: Path,
    fixtures_dir: Path,
    redis_server: RedisServer,
    redis_client: redis.Redis,
) -> None:
    doc = example("jobrunner.command.json")
    doc["redis"] = {"aggregators": [redis_server.address], "queues": [redis_server.address]}
    statsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    statsd.bind(("127.0.0.1", 0))
    statsd.settimeout(10)
    doc["statsd"] = f"127.0.0.1:{statsd.getsockname()[1]}"
    config = tmp_path / "jobrunner.json"
    config.write_text(json.dumps(doc))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    php = bin_dir / "php"  # what the example's "php ..." finds first on PATH
    php.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{calls}.$$"\n'
                   f'cat "{fixtures_dir / "runjobs" / "ok.json"}"\n')  # fmt: skip
    php.chmod(0o755)
    publish(redis_client, ("refreshLinks", "enwiki"))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    process = subprocess.Popen([str(MWJOBS), "runner", "--config-file", str(config)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        wait_until(lambda: any(tmp_path.glob("calls.*")), 20, "a runJobs.php call")
        names: set[str] = set()
        host = host_name()
        while f"jobrunner.pop.refreshLinks.ok.{host}" not in names:
            data = statsd.recv(4096).decode()
            names |= {line.partition(":")[0] for line in data.splitlines() if line}
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
        statsd.close()
    assert process.returncode == 0, err.decode()
    argv = next(tmp_path.glob("calls.*")).read_text().splitlines()
    # refreshLinks is low-priority in the example: it runs in low priority, --maxtime=60
    assert argv == ["/srv/mediawiki/maintenance/runJobs.php", "--wiki=enwiki",
                    "--type=refreshLinks", "--maxtime=60", "--memory-limit=300M",
                    "--result=json"]  # fmt: skip
    assert {f"jobrunner.start-runner.{host}", f"jobrunner.spawn.{host}"} <= names


def test_the_rpc_example_runs_against_a_wiki(
    start_runner: StartRunner, wiki: tuple[Wiki, int]
) -> None:
    state, port = wiki
    doc = example("jobrunner.http.json")
    doc["dispatcher"]["url"] = doc["dispatcher"]["url"].replace(
        "http://mw.example.org", f"http://127.0.0.1:{port}"
    )
    metrics = Recorder()
    runner = start_runner(parse_config(json.dumps(doc)), {("null", "enwiki"): 1},
                          metrics=metrics)  # fmt: skip
    drive(runner, lambda: runner.totals.finished >= 2, "two rpc runs")
    assert runner.totals.errors == 0
    assert state.requests[0]["path"] == "/rpc/RunJobs.php"
    assert state.requests[0]["values"]["wiki"] == "enwiki"
    assert metrics.total(f"pop.null.ok.{HOST}") >= 2


def test_the_special_example_runs_against_a_wiki(
    start_runner: StartRunner, wiki: tuple[Wiki, int]
) -> None:
    state, port = wiki
    doc = example("jobrunner.special.json")
    doc["dispatcher"]["url"] = f"http://127.0.0.1:{port}/w/index.php"
    metrics = Recorder()
    runner = start_runner(parse_config(json.dumps(doc)), {("null", "enwiki"): 1},
                          metrics=metrics, environ={"MW_SECRET_KEY": SECRET})  # fmt: skip
    drive(runner, lambda: runner.totals.finished >= 2, "two signed runs")
    assert runner.totals.errors == 0
    assert state.requests[0]["values"]["maxjobs"] == "1000"
    assert metrics.total(f"pop.null.ok.{HOST}") == 2 * runner.totals.finished


def test_the_python_example_runs_jobs_in_its_workers(
    start_runner: StartRunner, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    doc = example("jobrunner.python.json")
    doc["redis"] = {"aggregators": [redis_server.address], "queues": [redis_server.address]}
    doc["dispatcher"].update(modules=[], paths=[])  # the built-in "null" job needs none
    backend = RedisBackend(redis_server.url)
    try:
        backend.queue("enwiki", "null").push([JobSpec.create("null", {"n": i}) for i in range(50)])
        runner = start_runner(parse_config(json.dumps(doc)), {("null", "enwiki"): 1})
        drive(runner, lambda: runner.totals.jobs_ok >= 50, "the jobs to run")
        assert backend.queue("enwiki", "null").sizes().total == 0
    finally:
        backend.close()
    assert runner.totals.errors == 0
