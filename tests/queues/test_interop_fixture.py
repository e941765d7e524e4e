"""Real MediaWiki 1.43 Redis data (``fixtures/mediawiki-1.43/redis-state.json``) loaded into
the private Redis: mwjobs must read every queue as MediaWiki left it, and what it writes must
look like what MediaWiki wrote."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from mwjobs.codec import (
    QUEUES_WITH_JOBS_KEY,
    PhpKey,
    PhpValue,
    decode_record,
    parse_queue_id,
    php_unserialize,
    queue_id_json,
    queue_key,
)
from mwjobs.model.data import JobSpec, JobState, QueuedJob
from mwjobs.queues.base import MaintenancePolicy, MaintenanceResult, QueueSizes
from mwjobs.queues.redis import RedisBackend
from mwjobs.queues.redis.replies import byte_list
from tests.queues.clock import FakeClock
from tests.servers import RedisServer

Dump = dict[str, dict[str, Any]]

DOMAIN = "testwiki"
# After the newest write in the dump (a job enqueued at 1795352227).
SNAPSHOT = 1795352300
FIELDS = ["type", "namespace", "title", "params", "rtimestamp", "uuid", "sha1", "timestamp"]


def _value(raw: str | dict[str, str]) -> bytes:
    """A dumped string: UTF-8 text, or ``{"base64": ...}`` for bytes that are not."""
    if isinstance(raw, dict):
        return base64.b64decode(raw["base64"])
    return raw.encode("utf-8")


def load_dump(client: redis.Redis, dump: Dump) -> None:
    """Recreate every key of the dump with its type, contents, order and TTL."""
    pipe = client.pipeline(transaction=True)
    for key, entry in dump.items():
        kind, value = entry["type"], entry["value"]
        if kind == "string":
            pipe.set(key, _value(value))
        elif kind == "list":
            pipe.rpush(key, *(_value(v) for v in value))  # LRANGE order = left to right
        elif kind == "set":
            pipe.sadd(key, *(_value(v) for v in value))
        elif kind == "zset":
            pipe.zadd(key, {_value(member): score for member, score in value})
        elif kind == "hash":
            pipe.hset(key, mapping={_value(f): _value(v) for f, v in value.items()})
        else:
            raise AssertionError(f"dump key {key} has unknown type {kind}")
        if entry["ttl"] > 0:
            pipe.expire(key, entry["ttl"])
    pipe.execute()


@pytest.fixture(scope="module")
def dump(fixtures_dir: Path) -> Dump:
    loaded: Dump = json.loads((fixtures_dir / "redis-state.json").read_text(encoding="utf-8"))
    return loaded


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(SNAPSHOT)


@pytest.fixture
def backend(
    redis_server: RedisServer, redis_client: redis.Redis, dump: Dump, clock: FakeClock
) -> Iterator[RedisBackend]:
    load_dump(redis_client, dump)
    backend = RedisBackend(redis_server.url, clock=clock)
    yield backend
    backend.close()


def dumped(dump: Dump, job_type: str, prop: str) -> Any:
    """The dumped value of one per-queue key, or None when MediaWiki left no such key."""
    entry = dump.get(queue_key(DOMAIN, job_type, prop))
    return None if entry is None else entry["value"]


def queue_types(dump: Dump) -> list[str]:
    members = dump[QUEUES_WITH_JOBS_KEY]["value"]
    return sorted(parse_queue_id(member)[0] for member in members)


def record(dump: Dump, job_type: str, job_id: str) -> dict[str, Any]:
    raw = php_unserialize(_value(dumped(dump, job_type, "h-data")[job_id]))
    assert isinstance(raw, dict)
    return raw


# -- the loader itself ------------------------------------------------------------------------


def test_dump_is_loaded_faithfully(
    backend: RedisBackend, redis_client: redis.Redis, dump: Dump
) -> None:
    raw_keys = byte_list(redis_client.keys("*"))
    assert {key.decode() for key in raw_keys} == set(dump)
    for key, entry in dump.items():
        assert redis_client.type(key) == entry["type"].encode(), key
        ttl = redis_client.ttl(key)
        assert (ttl == -1) if entry["ttl"] == -1 else (entry["ttl"] - 5 <= ttl <= entry["ttl"])


# -- reading MediaWiki's queues ---------------------------------------------------------------


def test_queues_with_jobs_round_trip(backend: RedisBackend, dump: Dump) -> None:
    found = backend.queues_with_jobs()
    assert found == sorted((t, DOMAIN) for t in queue_types(dump))
    assert [t for t, _ in found] == [
        "htmlCacheUpdate",
        "null",
        "recentChangesUpdate",
        "refTestFail",
        "refTestThrow",
        "refreshLinks",
    ]
    # Our PHP json_encode gives MediaWiki's exact members (SREM/SADD must hit them).
    assert {queue_id_json(t, d) for t, d in found} == set(dump[QUEUES_WITH_JOBS_KEY]["value"])


def test_sizes_match_the_dump(backend: RedisBackend, dump: Dump) -> None:
    for job_type in queue_types(dump):

        def count(prop: str, job_type: str = job_type) -> int:
            return len(dumped(dump, job_type, prop) or [])

        expected = QueueSizes(
            unclaimed=count("l-unclaimed"),
            claimed=count("z-claimed"),
            abandoned=count("z-abandoned"),
            delayed=count("z-delayed"),
        )
        assert backend.queue(DOMAIN, job_type).sizes() == expected, job_type
    # And in plain numbers, so an empty dump could not pass.
    assert backend.queue(DOMAIN, "null").sizes() == QueueSizes(3, 0, 0, 2)
    assert backend.queue(DOMAIN, "htmlCacheUpdate").sizes() == QueueSizes(3, 0, 0, 0)
    assert backend.queue(DOMAIN, "refTestFail").sizes() == QueueSizes(0, 1, 1, 0)


def test_every_unclaimed_job_pops_in_fifo_order(backend: RedisBackend, dump: Dump) -> None:
    for job_type in queue_types(dump):
        queue = backend.queue(DOMAIN, job_type)
        expected_ids = list(reversed(dumped(dump, job_type, "l-unclaimed") or []))
        popped: list[QueuedJob] = []
        while (job := queue.pop()) is not None:
            popped.append(job)
        assert [job.id for job in popped] == expected_ids, job_type
        for job in popped:
            fields = record(dump, job_type, job.id)
            params = dict(fields["params"])
            params.setdefault("namespace", fields["namespace"])
            params.setdefault("title", fields["title"])
            assert (job.type, job.domain, job.title, job.namespace) == (
                fields["type"],
                DOMAIN,
                fields["title"],
                fields["namespace"],
            )
            assert dict(job.params) == params
            assert (job.enqueue_timestamp, job.attempts) == (fields["timestamp"], 1)
            assert job.is_duplicate is False  # the dump's root keys hold the same timestamps
            assert queue.ack(job) is True


def test_popped_jobs_carry_the_exact_php_values(backend: RedisBackend) -> None:
    html = backend.queue(DOMAIN, "htmlCacheUpdate").pop()
    assert html is not None
    assert (html.id, html.title, html.namespace) == (
        "81678e9600d04d0f864a001694377336",
        "Café_日本",
        0,
    )
    assert html.params["table"] == "pagelinks" and html.params["recursive"] is True
    null = backend.queue(DOMAIN, "null")
    popped = null.pop_many(2)
    assert [job.params["n"] for job in popped] == ["left-queued", "ünïcödé/slash"]
    rich = popped[1]
    assert {k: rich.params[k] for k in ("f", "big", "list", "nested")} == {
        "f": 0.1,
        "big": 12345678901234,
        "list": [1, 2, 3],
        "nested": {"a": {"b": None, "c": True}},
    }


def test_claimed_and_abandoned_jobs_with_their_attempts(backend: RedisBackend, dump: Dump) -> None:
    for job_type in ("refTestFail", "refTestThrow"):
        queue = backend.queue(DOMAIN, job_type)
        attempts = {k: int(v) for k, v in dumped(dump, job_type, "h-attempts").items()}
        for state, prop in ((JobState.CLAIMED, "z-claimed"), (JobState.ABANDONED, "z-abandoned")):
            listed = queue.list_jobs(state)
            members = dumped(dump, job_type, prop)
            assert [job.id for job in listed] == [member for member, _ in members]
            assert [job.attempts for job in listed] == [attempts[job.id] for job in listed]
            assert {job.state for job in listed} == {state}
    listed = backend.queue(DOMAIN, "refTestFail").list_jobs(JobState.ABANDONED)
    assert [(job.id, job.attempts) for job in listed] == [("4055dec77b2b486799d2d037d337229e", 2)]


def test_delayed_jobs_by_release_time(backend: RedisBackend, dump: Dump) -> None:
    listed = backend.queue(DOMAIN, "null").list_jobs(JobState.DELAYED)
    assert [(job.id, job.release_timestamp) for job in listed] == [
        (member, int(score)) for member, score in dumped(dump, "null", "z-delayed")
    ]
    # One came from a JobSpecification: its rtimestamp is a numeric string in the blob.
    assert record(dump, "null", listed[0].id)["rtimestamp"] == "1795355827"
    assert listed[0].release_timestamp == 1795355827


def test_unclaimed_listing_is_in_pop_order(backend: RedisBackend, dump: Dump) -> None:
    queue = backend.queue(DOMAIN, "recentChangesUpdate")
    listed = [job.id for job in queue.list_jobs(JobState.UNCLAIMED)]
    assert listed == list(reversed(dumped(dump, "recentChangesUpdate", "l-unclaimed")))
    assert [job.id for job in queue.pop_many(5)] == listed


# -- root jobs --------------------------------------------------------------------------------


def root_keys(dump: Dump) -> list[tuple[str, str, str]]:
    """(type, signature, timestamp) of every root-job key MediaWiki wrote."""
    found = []
    for key, entry in dump.items():
        if ":rootjob:" in key:
            _, _, domain, job_type, _, signature = key.split(":")
            assert domain == DOMAIN
            found.append((job_type, signature, entry["value"]))
    return found


def test_root_job_supersession_reads_mediawikis_keys(
    backend: RedisBackend, redis_client: redis.Redis, dump: Dump
) -> None:
    keys = root_keys(dump)
    assert len(keys) == 55
    for job_type, signature, timestamp in keys:
        queue = backend.queue(DOMAIN, job_type)

        def job(ts: int, job_type: str = job_type, signature: str = signature) -> QueuedJob:
            params: dict[PhpKey, PhpValue] = {
                "rootJobSignature": signature,
                "rootJobTimestamp": str(ts),
            }
            return QueuedJob(job_type, DOMAIN, params, "x" * 32, 0, 1)

        assert queue.is_root_job_old_duplicate(job(int(timestamp) - 1)) is True
        assert queue.is_root_job_old_duplicate(job(int(timestamp))) is False
        params: dict[PhpKey, PhpValue] = {
            "rootJobIsSelf": True,
            "rootJobSignature": signature,
            "rootJobTimestamp": timestamp,
        }
        assert queue.deduplicate_root_job(JobSpec(job_type, params)) is True  # already there
    # A newer root of a queued job's signature supersedes it when popped.
    html = backend.queue(DOMAIN, "htmlCacheUpdate")
    newer: dict[PhpKey, PhpValue] = {
        "rootJobIsSelf": True,
        "rootJobSignature": "ddebce84bf6a08e15e7975330eb5e04c557c80f0",
        "rootJobTimestamp": "20261122125707",
    }
    assert html.deduplicate_root_job(JobSpec("htmlCacheUpdate", newer)) is False
    first = html.pop()
    assert first is not None and first.id == "81678e9600d04d0f864a001694377336"
    assert first.is_duplicate is True


# -- maintenance over MediaWiki's data --------------------------------------------------------


def maintained(
    backend: RedisBackend, items: list[tuple[str, str, MaintenancePolicy]], now: int
) -> list[MaintenanceResult]:
    results = backend.maintain_many(items, now=now)
    assert all(isinstance(result, MaintenanceResult) for result in results), results
    return [result for result in results if isinstance(result, MaintenanceResult)]


def test_chron_over_the_dump(backend: RedisBackend, dump: Dump) -> None:
    policy = MaintenancePolicy(claim_ttl=3600, max_attempts=2)  # the dump ran with 2
    items = [(t, DOMAIN, policy) for t in queue_types(dump)]
    results = backend.maintain_many(items, now=SNAPSHOT)
    ready = {t: len(dumped(dump, t, "l-unclaimed") or []) for t in queue_types(dump)}
    assert results == [MaintenanceResult(ready=ready[t]) for t, _, _ in items]
    later = dict(zip(queue_types(dump), maintained(backend, items, SNAPSHOT + 3600), strict=True))
    assert later["null"] == MaintenanceResult(undelayed=1, ready=4)
    assert later["refTestFail"] == MaintenanceResult(released=1, ready=1)  # attempts 1 < 2
    assert later["refTestThrow"] == MaintenanceResult(released=1, ready=1)
    week = dict(
        zip(queue_types(dump), maintained(backend, items, SNAPSHOT + 8 * 86400), strict=True)
    )
    assert week["refTestFail"].pruned == 1 and week["refTestThrow"].pruned == 1


# -- what mwjobs writes looks like what MediaWiki wrote ----------------------------------------


def suffixes(client: redis.Redis, domain: str, job_type: str) -> set[str]:
    prefix = queue_key(domain, job_type, "h-data").removesuffix("h-data")
    raw = byte_list(client.keys(prefix + "*"))
    return {key.decode().removeprefix(prefix) for key in raw}


def only_record(client: redis.Redis, domain: str, job_type: str) -> list[bytes]:
    blobs = byte_list(client.hvals(queue_key(domain, job_type, "h-data")))
    return blobs


def test_pushed_job_has_mediawikis_layout(
    backend: RedisBackend, redis_client: redis.Redis, dump: Dump
) -> None:
    # A de-duplicated page job, as htmlCacheUpdate's, on a fresh wiki of the same server.
    html = backend.queue("otherwiki", "htmlCacheUpdate")
    mw = record(dump, "htmlCacheUpdate", "81678e9600d04d0f864a001694377336")
    params = dict(mw["params"])
    assert html.push([JobSpec("htmlCacheUpdate", params, remove_duplicates=True)]) == 1
    assert suffixes(redis_client, "otherwiki", "htmlCacheUpdate") == suffixes(
        redis_client, DOMAIN, "htmlCacheUpdate"
    )
    (blob,) = only_record(redis_client, "otherwiki", "htmlCacheUpdate")
    ours = php_unserialize(blob)
    assert isinstance(ours, dict)
    assert list(ours) == list(mw) == FIELDS
    assert [type(ours[f]) for f in FIELDS] == [type(mw[f]) for f in FIELDS]
    assert (ours["namespace"], ours["title"], ours["params"]) == (0, "Café_日本", mw["params"])
    assert decode_record(blob).sha1 != ""
    assert redis_client.sismember(QUEUES_WITH_JOBS_KEY, '["htmlCacheUpdate","otherwiki"]')


def test_pushed_delayed_spec_matches_mediawikis_delayed_record(
    backend: RedisBackend, redis_client: redis.Redis, dump: Dump
) -> None:
    # f355… was pushed by MW as a JobSpecification with removeDuplicates and a delay.
    mw = record(dump, "null", "f355af30c08947c5830f982736d42545")
    spec = JobSpec.create("null", {"x": 1}, release_at=1795355827, remove_duplicates=True)
    queue = backend.queue("otherwiki", "null")
    assert queue.push([spec]) == 1
    (blob,) = only_record(redis_client, "otherwiki", "null")
    ours = php_unserialize(blob)
    assert isinstance(ours, dict)
    assert list(ours) == FIELDS
    assert [type(ours[f]) for f in FIELDS] == [type(mw[f]) for f in FIELDS]
    assert ours["rtimestamp"] == mw["rtimestamp"] == "1795355827"
    assert ours["sha1"] == mw["sha1"]  # same type and params: the same dedup hash
    assert list(ours["params"]) == list(mw["params"])
    assert suffixes(redis_client, "otherwiki", "null") == {
        "z-delayed",
        "h-data",
        "h-idBySha1",
        "h-sha1ById",
    }
