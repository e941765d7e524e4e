"""Redis + ``mwjobs chron`` + ``mwjobs runner`` as real processes: 1,000 jobs over 20 wikis
and 5 types drain through the runner's command dispatcher (tests/runner/popper.py, which pops
and acks with mwjobs), none lost and none run twice."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from mwjobs.model.data import JobSpec
from mwjobs.queues.redis import RedisBackend
from tests.daemons import MWJOBS
from tests.runner.conftest import config_doc, write_config
from tests.servers import RedisServer, wait_until

POPPER = Path(__file__).with_name("popper.py")
TYPES = ("refreshLinks", "htmlCacheUpdate", "null", "cirrusSearchLinksUpdate", "upload")
WIKIS = [f"wiki{i:02d}" for i in range(19)] + ["my?hwiki"]  # DB "my-wiki": an escaped domain
JOBS = 1000


def push_jobs(url: str) -> None:
    backend = RedisBackend(url)
    try:
        n = 0
        per_queue = JOBS // (len(TYPES) * len(WIKIS))
        for wiki in WIKIS:
            for job_type in TYPES:
                specs = [JobSpec.create(job_type, {"n": n + i}) for i in range(per_queue)]
                assert backend.queue(wiki, job_type).push(specs) == per_queue
                n += per_queue
        assert n == JOBS
    finally:
        backend.close()


def leftover(url: str) -> int:
    backend = RedisBackend(url)
    try:
        return sum(backend.queue(w, t).sizes().total for w in WIKIS for t in TYPES)
    finally:
        backend.close()


def test_jobs_drain_through_chron_and_runner(
    tmp_path: Path, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    argv = [sys.executable, str(POPPER), redis_server.url, "%(db)x", "%(type)x", "%(maxtime)x"]
    groups = {
        "basic": {"runners": 3, "include": ["*"], "exclude": ["upload"],
                  "low-priority": ["refreshLinks"]},
        "upload": {"runners": 1, "include": ["upload"]},
    }  # fmt: skip
    doc = config_doc(
        {"kind": "command", "argv": argv},
        groups=groups,
        redis=[redis_server.address],
        timing={"chron_period": 0.2, "aggregator_cache_ttl": 1.0, "hp_max_delay": 2,
                "lp_max_delay": 2},
    )
    config = write_config(tmp_path / "jobrunner.json", doc)
    push_jobs(redis_server.url)
    logs = {name: (tmp_path / f"{name}.out").open("wb") for name in ("chron", "runner")}
    daemons = {
        name: subprocess.Popen(
            [str(MWJOBS), name, "--config-file", str(config), "--verbose"],
            stdout=logs[name],
            stderr=subprocess.STDOUT,
        )
        for name in ("chron", "runner")
    }
    started = time.monotonic()
    try:
        wait_until(
            lambda: int(redis_client.get("e2e:count") or 0) >= JOBS,
            60,
            "every job to run",
        )
        drained = time.monotonic() - started
        wait_until(lambda: leftover(redis_server.url) == 0, 20, "every job to be acked")
    finally:
        for process in daemons.values():
            process.send_signal(signal.SIGTERM)
        codes = {name: process.wait(20) for name, process in daemons.items()}
        for log in logs.values():
            log.close()
    runner_log = (tmp_path / "runner.out").read_text()
    assert codes == {"chron": 0, "runner": 0}, runner_log[-3000:]
    assert int(redis_client.get("e2e:count") or 0) == JOBS  # none ran twice...
    assert redis_client.scard("e2e:runs") == JOBS  # ...and none was lost
    assert redis_client.llen("e2e:repeats") == 0
    assert "ERROR" not in runner_log
    print(f"{JOBS} jobs drained in {drained:.1f} s")
