"""statsd counters with the PHP jobrunner service's names and packet format (spec §6.4).

Each event becomes one counter packet ``jobrunner.<event>:<delta>|c\\n``; :meth:`Statsd.flush`
joins queued packets into UDP datagrams of at most 512 bytes. The PHP service put an extra
``\\n`` between packets (blank lines, spec §14 item 12); mwjobs does not. When no ``statsd`` is
configured, :class:`NullCounters` takes the same calls and does nothing.

Sending is best effort, as with any statsd client: a send or name-resolution failure is
logged at debug level and the packets are dropped, never raised into a daemon's loop.
"""

from __future__ import annotations

import logging
import os
import re
import resource
import socket
from typing import Any

from mwjobs.config import StatsdTarget

__all__ = [
    "MAX_DATAGRAM",
    "PREFIX",
    "NullCounters",
    "Statsd",
    "counters_for",
    "host_name",
    "join_packets",
    "memory_usage",
    "metric_name",
]

log = logging.getLogger(__name__)

PREFIX = "jobrunner."
MAX_DATAGRAM = 512  # bytes per UDP datagram, as the PHP service (MAX_UDP_SIZE_STR)

# Bytes that end or split a statsd line (name:value|type). A job type or server name holding
# one would corrupt the packet and the ones joined with it, so they become "_".
_UNSAFE = re.compile(r"[:|@\s]")


def host_name() -> str:
    """The ``<host>`` of the metric names: ``gethostname()``, as PHP's."""
    return socket.gethostname()


def metric_name(event: str) -> str:
    """``jobrunner.<event>`` with the characters statsd cannot carry replaced by ``_``."""
    return PREFIX + _UNSAFE.sub("_", event)


def join_packets(packets: list[bytes], limit: int = MAX_DATAGRAM) -> list[bytes]:
    """Concatenate packets (each ending in ``\\n``) greedily into datagrams of at most
    ``limit`` bytes, in order. A packet longer than ``limit`` goes alone."""
    datagrams: list[bytes] = []
    current = b""
    for packet in packets:
        if current and len(current) + len(packet) > limit:
            datagrams.append(current)
            current = b""
        current += packet
    if current:
        datagrams.append(current)
    return datagrams


def memory_usage() -> int:
    """This process's resident memory in bytes (PHP reported its heap; the closest Python
    figure is RSS). Falls back to the peak RSS where /proc is missing."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class NullCounters:
    """The sink used when ``statsd`` is not configured: every call does nothing."""

    def incr(self, event: str, delta: int = 1) -> None:
        """Ignore the event."""

    def flush(self) -> None:
        """Nothing was queued."""

    def close(self) -> None:
        """Nothing to release."""


class Statsd:
    """Queue counter packets and send them over UDP on :meth:`flush` (once per main-loop
    iteration, as the PHP service). Nothing touches the network before the first flush."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._packets: list[bytes] = []
        self._socket: socket.socket | None = None
        self._address: tuple[Any, ...] | None = None

    def __repr__(self) -> str:
        return f"<Statsd {self.host}:{self.port}>"

    def incr(self, event: str, delta: int = 1) -> None:
        """Queue ``jobrunner.<event>:<delta>|c``; a zero delta sends nothing (PHP's rule).
        Negative deltas are valid (the memory counter)."""
        if delta == 0:
            return
        self._packets.append(f"{metric_name(event)}:{delta}|c\n".encode())

    def flush(self) -> None:
        """Send every queued packet, joined into datagrams; the queue is emptied even when
        sending fails (stale counters are worth less than a bounded memory)."""
        packets, self._packets = self._packets, []
        if not packets:
            return
        try:
            sock, address = self._connection()
            for datagram in join_packets(packets):
                sock.sendto(datagram, address)
        except OSError as exc:
            log.debug("statsd %s:%s: dropped %d packet(s): %s",
                      self.host, self.port, len(packets), exc)  # fmt: skip
            self.close()  # resolve the name again next time (DNS may have changed)

    def _connection(self) -> tuple[socket.socket, tuple[Any, ...]]:
        if self._socket is None or self._address is None:
            family, kind, proto, _, address = socket.getaddrinfo(
                self.host, self.port, type=socket.SOCK_DGRAM
            )[0]
            self._socket = socket.socket(family, kind, proto)
            self._address = address  # kept whole: an IPv6 scope ID must survive
        return self._socket, self._address

    def close(self) -> None:
        """Close the socket; a later flush opens a new one."""
        if self._socket is not None:
            self._socket.close()
        self._socket = None
        self._address = None


def counters_for(target: StatsdTarget | None) -> Statsd | NullCounters:
    """The counters sink for a config's ``statsd`` value (None: not configured)."""
    if target is None:
        return NullCounters()
    return Statsd(target.host, target.port)
