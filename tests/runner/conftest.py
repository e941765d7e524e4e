"""Helpers of the runner tests: configs, a fixed ready-queue map, a counter recorder, and a
way to drive an in-process :class:`Runner` until a condition holds (with a deadline)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from mwjobs.config import RunnerConfig, parse_config
from mwjobs.runner.select import Queue
from mwjobs.runner.service import Runner
from tests.runner.mwstub import Server, Wiki

CHILD = Path(__file__).with_name("child.py")
HOST = "testhost"
DEADLINE = 20.0


def child_argv(*args: str) -> list[str]:
    """A dispatcher argv that runs tests/runner/child.py with ``args``."""
    return [sys.executable, str(CHILD), *args]


def config_doc(
    dispatcher: Any,
    *,
    runners: int = 1,
    groups: dict[str, Any] | None = None,
    timing: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
    redis: list[str] | None = None,
) -> dict[str, Any]:
    """A jobrunner.json document; one group "basic" running every type unless ``groups``."""
    servers = redis or ["127.0.0.1:1"]  # never contacted when the test injects the map
    doc: dict[str, Any] = {
        "groups": groups or {"basic": {"runners": runners, "include": ["*"]}},
        "redis": {"aggregators": servers, "queues": servers},
        "dispatcher": dispatcher,
        "mwjobs": {"timing": {"aggregator_cache_ttl": 0, **(timing or {})}},
    }
    if limits:
        doc["limits"] = limits
    return doc


def make_config(dispatcher: Any, **kw: Any) -> RunnerConfig:
    return parse_config(json.dumps(config_doc(dispatcher, **kw)), "test.json")


def write_config(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc, indent=2))
    return path


class StaticReady:
    """A ready-queue map the test controls (the runner reads it like the Redis one)."""

    def __init__(self, queues: Mapping[Queue, int] | None = None) -> None:
        self.queues: dict[Queue, int] = dict(queues or {})
        self.reads = 0
        self.closed = False

    def read(self) -> dict[Queue, int]:
        self.reads += 1
        return dict(self.queues)

    def partitions(self) -> list[str]:
        return []  # nothing to listen to: the test says what is ready

    def push_listener(self, partition: str) -> None:
        return None

    def close(self) -> None:
        self.closed = True


class Recorder:
    """Counters that remember every non-zero increment."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def incr(self, event: str, delta: int = 1) -> None:
        if delta:
            self.events.append((event, delta))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def total(self, event: str) -> int:
        return sum(delta for name, delta in self.events if name == event)


def drive(runner: Runner, until: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Turn the runner's loop until ``until()`` holds; fail after ``timeout`` seconds. Each
    step waits for the runner's own events (a child's exit, output), never a fixed time."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        runner.step(max_wait=0.05)


@pytest.fixture
def start_runner() -> Iterator[Callable[..., Runner]]:
    """Make an entered in-process Runner (fixed map, recorded counters); cleaned up after."""
    started: list[Runner] = []

    def start(config: RunnerConfig, queues: Mapping[Queue, int], **kw: Any) -> Runner:
        kw.setdefault("metrics", Recorder())
        kw.setdefault("host", HOST)
        runner = Runner(config, ready=StaticReady(queues), **kw)
        runner.__enter__()
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.__exit__(None, None, None)
        runner.close()


@pytest.fixture
def wiki() -> Iterator[tuple[Wiki, int]]:
    """A local stand-in for a wiki's web server: (what it saw, its port)."""
    state = Wiki()
    server = Server(state)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state, server.server_address[1]
    state.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)
