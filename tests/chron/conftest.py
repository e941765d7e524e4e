"""Fixtures of the chron tests: a config on the private Redis, a chron with a fake clock and
a counter recorder, and helpers to read the Redis state the chron leaves."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from mwjobs.aggregator import ReadyMap, decode_ready_map
from mwjobs.chron import Chron, build_chron
from mwjobs.codec import AGGREGATOR_READY_KEY
from mwjobs.config import RunnerConfig, parse_config
from mwjobs.queues.redis.replies import byte_map
from tests.queues.clock import START, FakeClock
from tests.servers import RedisServer

T0 = int(START)
DAY = 86400
HOST = "testhost"
DISPATCHER = "php runJobs.php --wiki=%(db)x --type=%(type)x"


class Recorder:
    """A :class:`mwjobs.chron.Counters` that remembers every non-zero increment."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self.flushes = 0
        self.closed = False

    def incr(self, event: str, delta: int = 1) -> None:
        if delta:
            self.events.append((event, delta))

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        self.closed = True

    def total(self, event: str) -> int:
        return sum(delta for name, delta in self.events if name == event)

    def names(self) -> set[str]:
        return {name for name, _ in self.events}


def config_doc(
    queues: list[str],
    aggregators: list[str] | None = None,
    *,
    limits: dict[str, Any] | None = None,
    timing: dict[str, Any] | None = None,
    statsd: str | None = None,
) -> dict[str, Any]:
    """A jobrunner.json document for the chron (groups are irrelevant to it)."""
    doc: dict[str, Any] = {
        "redis": {"aggregators": aggregators or queues[:1], "queues": queues},
        "dispatcher": DISPATCHER,
    }
    if limits:
        doc["limits"] = limits
    if timing:
        doc["mwjobs"] = {"timing": timing}
    if statsd:
        doc["statsd"] = statsd
    return doc


def make_config(queues: list[str], aggregators: list[str] | None = None, **kw: Any) -> RunnerConfig:
    return parse_config(json.dumps(config_doc(queues, aggregators, **kw)), "test.json")


def write_config(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text("// written by the chron tests\n" + json.dumps(doc, indent=1), "utf-8")
    return path


def ready_map(client: redis.Redis) -> tuple[ReadyMap, int | None]:
    """The stored ready-queue map and its _epoch, decoded."""
    raw = byte_map(client.hgetall(AGGREGATOR_READY_KEY))
    return decode_ready_map({k.decode(): v.decode() for k, v in raw.items()})




MakeChron = Callable[..., Chron]


@pytest.fixture
def make_chron(
    redis_server: RedisServer, redis_client: redis.Redis, clock: FakeClock
) -> Iterator[MakeChron]:
    """Build chrons the daemon's way (:func:`build_chron`) with the fake clock, a counter
    recorder, a seeded shuffle and the private Redis as the default queue and aggregator."""
    made: list[Chron] = []

    def make(
        config: RunnerConfig | None = None, *, metrics: Recorder | None = None, **kw: Any
    ) -> Chron:
        chron = build_chron(
            config or make_config([redis_server.address]),
            metrics or Recorder(),
            clock=clock,
            host=HOST,
        )
        chron.rng = random.Random(len(made))
        for name, value in kw.items():  # chunk=..., partitions=... for fault injection
            setattr(chron, name, value)
        made.append(chron)
        return chron

    yield make
    for chron in made:
        chron.close()


def recorder(chron: Chron) -> Recorder:
    assert isinstance(chron.metrics, Recorder)
    return chron.metrics
