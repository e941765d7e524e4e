"""The chron on real MediaWiki 1.43 data (``fixtures/mediawiki-1.43/redis-state.json``, left
by MediaWiki and the PHP jobrunner/jobchron; refTestFail/refTestThrow ran with attempts = 2).

The clock is moved to each moment at which the dump's jobs change state: stale claims are
recycled, then abandoned once out of attempts, delayed jobs are released, and abandoned jobs
are pruned seven days after their last claim.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from mwjobs.codec import QUEUES_WITH_JOBS_KEY, queue_id_json, queue_key
from mwjobs.config import RunnerConfig
from mwjobs.queues.redis import RedisBackend
from mwjobs.queues.redis.replies import byte_list, scored_list
from tests.chron.conftest import DAY, MakeChron, config_doc, make_config, ready_map, write_config
from tests.queues.clock import FakeClock
from tests.queues.test_interop_fixture import load_dump
from tests.servers import RedisServer

W = "testwiki"
SNAPSHOT = 1795352300  # just after the newest write in the dump
# From the dump: (job ID, score) of the jobs whose state a pass changes.
FAIL_CLAIMED = ("51d1b0e466b64ac3b9fda0077155ea83", 1795351934)  # attempts 1 of 2
THROW_CLAIMED = ("8125c9a7b1b648618bc365b2dd3e87ca", 1795352007)  # attempts 1 of 2
ABANDONED_AT = 1795351714  # refTestFail 4055… and refTestThrow c65e…, attempts 2 of 2
DELAYED = (("f355af30c08947c5830f982736d42545", 1795355827),
           ("085e06683a3e49099946ae3acee9fb15", 1795438334))  # fmt: skip
LIMITS = {"attempts": {"*": 3, "refTestFail": 2, "refTestThrow": 2}}


@pytest.fixture
def dumped(redis_client: redis.Redis, fixtures_dir: Path) -> dict[str, Any]:
    dump: dict[str, Any] = json.loads((fixtures_dir / "redis-state.json").read_text("utf-8"))
    load_dump(redis_client, dump)
    return dump


@pytest.fixture
def config(redis_server: RedisServer) -> RunnerConfig:
    return make_config([redis_server.address], limits=LIMITS)


def ids(client: redis.Redis, job_type: str, prop: str) -> list[str]:
    key = queue_key(W, job_type, prop)
    if prop.startswith("l-"):
        listed = byte_list(client.lrange(key, 0, -1))
    else:
        listed = byte_list(client.zrange(key, 0, -1))
    return [m.decode() for m in listed]


def test_first_pass_maps_the_ready_queues_and_moves_nothing(
    dumped: dict[str, Any], make_chron: MakeChron, config: RunnerConfig,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    result = make_chron(config).run_pass(SNAPSHOT)
    assert (result.ok, result.queues, result.affected) == (True, 6, 0)
    ready = {("htmlCacheUpdate", W), ("null", W), ("recentChangesUpdate", W), ("refreshLinks", W)}
    assert set(result.ready) == ready
    assert ready_map(redis_client) == ({q: SNAPSHOT for q in ready}, SNAPSHOT)
    # The PHP chron wrote the same field names (its map lists the queues ready at the time).
    php_fields = set(dumped["jobqueue:aggregator:h-ready-queues:v2"]["value"]) - {"_epoch"}
    assert php_fields <= {f"{t}/{w}" for t, w in ready}


@pytest.mark.usefixtures("dumped")
def test_passes_drive_stale_delayed_and_abandoned_jobs(
    make_chron: MakeChron, config: RunnerConfig, redis_client: redis.Redis, clock: FakeClock,
    redis_server: RedisServer,
) -> None:  # fmt: skip
    chron = make_chron(config)
    fail_id, fail_claimed = FAIL_CLAIMED
    throw_id, throw_claimed = THROW_CLAIMED

    # refTestFail's claim turns stale exactly claimTTL after it; attempts remain: recycled.
    assert chron.run_pass(fail_claimed + 3599).released == 0
    result = chron.run_pass(fail_claimed + 3600)
    assert (result.released, result.abandoned, result.undelayed) == (1, 0, 0)
    assert ids(redis_client, "refTestFail", "l-unclaimed") == [fail_id]
    assert ("refTestFail", W) in result.ready

    # refTestThrow likewise, a little later.
    assert chron.run_pass(throw_claimed + 3600).released == 1
    assert ids(redis_client, "refTestThrow", "l-unclaimed") == [throw_id]

    # The first delayed null job is released at its time, behind the ready ones.
    (first_id, first_at), (_, second_at) = DELAYED
    assert chron.run_pass(first_at - 1).undelayed == 0
    assert chron.run_pass(first_at).undelayed == 1
    assert ids(redis_client, "null", "l-unclaimed")[0] == first_id
    assert chron.run_pass(second_at).undelayed == 1
    assert ids(redis_client, "null", "z-delayed") == []

    # refTestFail runs again (attempt 2 of 2) and fails: abandoned at its last claim time.
    clock.now = second_at
    backend = RedisBackend(redis_server.url, clock=clock)
    job = backend.queue(W, "refTestFail").pop()
    backend.close()
    assert job is not None and job.id == fail_id and job.attempts == 2
    result = chron.run_pass(second_at + 3600)
    assert (result.released, result.abandoned) == (0, 1)
    abandoned = scored_list(redis_client.zrange(
        queue_key(W, "refTestFail", "z-abandoned"), 0, -1, withscores=True
    ))
    assert dict(abandoned)[fail_id.encode()] == second_at

    # Seven days after their last claim the dump's abandoned jobs are pruned, records too;
    # refTestFail stays listed (its newer abandoned job is not due yet).
    assert chron.run_pass(ABANDONED_AT + 7 * DAY - 1).pruned == 0
    result = chron.run_pass(ABANDONED_AT + 7 * DAY)
    assert result.pruned == 2
    assert not redis_client.hexists(queue_key(W, "refTestFail", "h-data"),
                                    "4055dec77b2b486799d2d037d337229e")  # fmt: skip
    assert not redis_client.hexists(queue_key(W, "refTestThrow", "h-data"),
                                    "c65e62defcc74a8da39baaa1dc03ea89")  # fmt: skip
    assert redis_client.sismember(QUEUES_WITH_JOBS_KEY, queue_id_json("refTestFail", W))
    assert chron.run_pass(second_at + 7 * DAY).pruned == 1
    assert redis_client.hlen(queue_key(W, "refTestFail", "h-data")) == 0
    assert not redis_client.sismember(QUEUES_WITH_JOBS_KEY, queue_id_json("refTestFail", W))


def test_mwjobs_chron_once_on_the_fixture_by_the_real_clock(
    dumped: dict[str, Any], tmp_path: Path, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    path = write_config(tmp_path / "jobrunner.json", config_doc([redis_server.address],
                                                                limits=LIMITS))  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "mwjobs", "chron", "--config-file", str(path), "--once"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    now = time.time()
    assert done.returncode == 0, done.stderr
    # The dump is from 2026-11-22: by now every claim is stale and every delay is over.
    assert now > DELAYED[1][1] and now > THROW_CLAIMED[1] + 3600
    assert ids(redis_client, "refTestFail", "l-unclaimed") == [FAIL_CLAIMED[0]]
    assert ids(redis_client, "refTestThrow", "l-unclaimed") == [THROW_CLAIMED[0]]
    assert ids(redis_client, "null", "z-delayed") == []
    pruned = now >= ABANDONED_AT + 7 * DAY  # after 2026-11-29 the abandoned jobs are gone too
    expected_abandoned = [] if pruned else ["4055dec77b2b486799d2d037d337229e"]
    assert ids(redis_client, "refTestFail", "z-abandoned") == expected_abandoned
    affected = 4 + (2 if pruned else 0)
    assert f"Updated the state of {affected} job(s)" in done.stdout
    ready, epoch = ready_map(redis_client)
    assert epoch is not None and abs(epoch - now) < 30
    assert {t for t, _ in ready} == {"htmlCacheUpdate", "null", "recentChangesUpdate",
                                     "refTestFail", "refTestThrow", "refreshLinks"}  # fmt: skip
