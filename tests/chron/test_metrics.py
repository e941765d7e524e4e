"""statsd: the PHP service's packet format and batching, checked on a real UDP socket."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import redis

from mwjobs.chron import build_chron
from mwjobs.config import StatsdConfig
from mwjobs.metrics import (
    MAX_DATAGRAM,
    NullCounters,
    Statsd,
    counters_for,
    host_name,
    join_packets,
    memory_usage,
    metric_name,
)
from mwjobs.model.data import JobSpec
from mwjobs.queues.redis import RedisBackend
from tests.chron.conftest import HOST, T0, make_config
from tests.queues.clock import FakeClock
from tests.servers import RedisServer, free_port


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    """A statsd stand-in: a UDP socket on 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def receive_all(sock: socket.socket) -> list[bytes]:
    """Every datagram sent to ``sock`` so far: on loopback a datagram is queued at the
    receiver before ``sendto`` returns, so after the first one the rest are already there."""
    datagrams = [sock.recv(65536)]
    sock.setblocking(False)
    try:
        while True:
            datagrams.append(sock.recv(65536))
    except BlockingIOError:
        return datagrams
    finally:
        sock.settimeout(5)


def test_packet_format_and_zero_delta() -> None:
    statsd = Statsd("127.0.0.1", 9)
    statsd.incr("spawn.host1", 3)
    statsd.incr("memory.host1", -4096)
    statsd.incr("idle.host1", 0)
    assert statsd._packets == [b"jobrunner.spawn.host1:3|c\n", b"jobrunner.memory.host1:-4096|c\n"]


def test_names_are_made_safe_for_the_statsd_line() -> None:
    assert metric_name("job-recycle.refreshLinks") == "jobrunner.job-recycle.refreshLinks"
    assert metric_name("periodictasks.partition-failed.10.0.0.1:6379") == (
        "jobrunner.periodictasks.partition-failed.10.0.0.1_6379"
    )
    assert metric_name("job-recycle.a b|c@d\ne/é") == "jobrunner.job-recycle.a_b_c_d_e/é"


def test_join_packets_greedily_up_to_512_bytes_without_blank_lines() -> None:
    packets = [f"jobrunner.event{i:03d}.{'x' * 30}:1|c\n".encode() for i in range(40)]
    datagrams = join_packets(packets)
    assert all(len(d) <= MAX_DATAGRAM for d in datagrams)
    assert b"".join(datagrams) == b"".join(packets)  # order kept, nothing added
    assert all(b"\n\n" not in d for d in datagrams)
    # Greedy: each datagram but the last could not have taken the next packet.
    size = len(packets[0])
    assert [len(d) for d in datagrams[:-1]] == [size * (MAX_DATAGRAM // size)] * (
        len(datagrams) - 1
    )
    big = b"x" * 600 + b"\n"
    assert join_packets([b"a:1|c\n", big, b"b:1|c\n"]) == [b"a:1|c\n", big, b"b:1|c\n"]
    assert join_packets([]) == []


def test_statsd_sends_datagrams_to_a_real_socket(udp: socket.socket) -> None:
    port = udp.getsockname()[1]
    statsd = Statsd("127.0.0.1", port)
    for i in range(30):
        statsd.incr(f"job-recycle.type{i:02d}.{'y' * 20}", i + 1)
    statsd.flush()
    datagrams = receive_all(udp)
    assert len(datagrams) > 1 and all(len(d) <= MAX_DATAGRAM for d in datagrams)
    lines = b"".join(datagrams).decode().splitlines()
    assert lines == [f"jobrunner.job-recycle.type{i:02d}.{'y' * 20}:{i + 1}|c" for i in range(30)]
    statsd.flush()  # nothing queued: nothing sent
    statsd.close()


def test_unresolvable_host_drops_packets_quietly() -> None:
    statsd = Statsd("no-such-host.invalid", 8125)
    statsd.incr("x")
    statsd.flush()
    assert statsd._packets == []
    statsd.close()


def test_null_counters_and_factory() -> None:
    null = counters_for(None)
    assert isinstance(null, NullCounters)
    null.incr("x", 5)
    null.flush()
    null.close()
    statsd = counters_for(StatsdConfig("127.0.0.1", 8125))
    assert isinstance(statsd, Statsd) and (statsd.host, statsd.port) == ("127.0.0.1", 8125)


def test_helpers() -> None:
    assert host_name() == socket.gethostname()
    assert memory_usage() > 1024 * 1024


def test_chron_pass_counters_reach_statsd(
    udp: socket.socket, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    clock = FakeClock(T0)
    backend = RedisBackend(redis_server.url, clock=clock)
    queue = backend.queue("enwiki", "refreshLinks")
    queue.push([JobSpec.create("refreshLinks", {"n": n}, request_id="r") for n in range(3)])
    queue.pop_many(2)
    queue.push([JobSpec.create("refreshLinks", {"n": 9}, release_at=T0 + 60, request_id="r")])
    backend.close()
    dead = f"127.0.0.1:{free_port()}"
    config = make_config(
        [redis_server.address, dead],
        [redis_server.address],
        statsd=f"127.0.0.1:{udp.getsockname()[1]}",
    )
    chron = build_chron(config, counters_for(config.statsd), clock=clock, host=HOST)
    try:
        chron.run_pass(T0 + 3600)
        chron.metrics.flush()
    finally:
        chron.close()
    datagrams = receive_all(udp)
    assert all(len(d) <= MAX_DATAGRAM and b"\n\n" not in d for d in datagrams)
    lines = b"".join(datagrams).decode().splitlines()
    assert sorted(lines) == sorted([
        f"jobrunner.periodictasks.claimed.{HOST}:1|c",
        "jobrunner.job-recycle.refreshLinks:2|c",
        "jobrunner.job-undelay.refreshLinks:1|c",
        f"jobrunner.periodictasks.partition-failed.{dead.replace(':', '_')}:1|c",
        f"jobrunner.redis-error.{HOST}:1|c",
        f"jobrunner.periodictasks.failed.{HOST}:1|c",
    ])  # fmt: skip
