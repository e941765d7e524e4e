"""statsd counters with the PHP jobrunner service's names and packet format (``RedisJobService``).

Each event becomes one counter packet ``jobrunner.<event>:<delta>|c\\n``; :meth:`Statsd.flush`
joins queued packets into UDP datagrams of at most 512 bytes. The PHP service put an extra
``\\n`` between packets (blank lines); mwjobs does not. When no ``statsd`` is configured,
:class:`NullCounters` takes the same calls and does nothing.

Sending is best effort, as with any statsd client: a send or name-resolution failure is
logged at debug level and the packets are dropped, never raised into a daemon's loop.

:class:`JobStatsd` sends MediaWiki JobRunner's per-job metrics (``JobRunner::executeJob``, the
older statsd names ``jobqueue.*``) through the same packets and datagrams;
:class:`~mwjobs.execution.executor.JobExecutor` hands it a :class:`JobSample` after each job.
"""

from __future__ import annotations

import logging
import os
import re
import resource
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mwjobs.config import StatsdConfig

__all__ = [
    "MAX_DATAGRAM",
    "PREFIX",
    "JobMetrics",
    "JobSample",
    "JobStatsd",
    "NullCounters",
    "Statsd",
    "counters_for",
    "host_name",
    "job_metrics_for",
    "join_packets",
    "memory_usage",
    "metric_name",
    "packet",
    "peak_rss_kib",
    "safe_name",
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


def safe_name(text: str) -> str:
    """``text`` with the characters a statsd line cannot carry replaced by ``_``."""
    return _UNSAFE.sub("_", text)


def metric_name(event: str) -> str:
    """``jobrunner.<event>`` with the characters statsd cannot carry replaced by ``_``."""
    return PREFIX + safe_name(event)


def packet(name: str, value: int, kind: str) -> bytes:
    """One statsd line, ``<name>:<value>|<kind>\\n`` (``kind``: ``c`` counter, ``ms`` timing)."""
    return f"{name}:{value}|{kind}\n".encode()


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
        self.queue(packet(metric_name(event), delta, "c"))

    def queue(self, line: bytes) -> None:
        """Queue one packet (see :func:`packet`) for the next :meth:`flush`."""
        self._packets.append(line)

    @property
    def pending_bytes(self) -> int:
        """Bytes queued for the next :meth:`flush`."""
        return sum(len(line) for line in self._packets)

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


def counters_for(target: StatsdConfig | None) -> Statsd | NullCounters:
    """The counters sink for a config's ``statsd`` value (None: not configured)."""
    if target is None:
        return NullCounters()
    return Statsd(target.host, target.port)


# -- per-job metrics (MediaWiki's JobRunner) ------------------------------------------------

# Seconds a JobStatsd holds packets at most before sending them (a run also sends at its end):
# long runs of slow jobs still report while they run, fast ones share datagrams.
JOB_FLUSH_INTERVAL = 1.0


def peak_rss_kib() -> int:
    """This process's peak resident set size in KiB, MediaWiki's ``getMaxRssKb``
    (``ru_maxrss`` is in KiB on Linux, in bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


@dataclass(frozen=True)
class JobSample:
    """What the executor measured about one job it ran."""

    job_type: str
    start: float  # UNIX time the job started
    ready: float | None  # readyTimestamp: its release time, else its enqueue time (UNIX)
    root: float | None  # its root job's timestamp (UNIX), if it has one
    ms: int  # how long run() took, as the job's ``time``
    rss_delta: int  # KiB the peak RSS grew by while it ran (>= 0)


class JobMetrics(Protocol):
    """Where :class:`~mwjobs.execution.executor.JobExecutor` reports each job it ran."""

    def job_done(self, sample: JobSample) -> None:
        """One job ran (called after each job, duplicates and failures included)."""

    def flush(self) -> None:
        """A run ended: send what is still held."""


def _ms(seconds: float) -> int:
    # Clamped at 0: the pushing host's clock may run ahead of this one.
    return max(0, round(1000 * seconds))


class JobStatsd:
    """MediaWiki JobRunner's per-job metrics with the older statsd names (``executeJob``):

    * ``jobqueue.pickup_delay.all`` and ``jobqueue.pickup_delay.<type>`` (timing): ms from
      the job's ready time (release time, else enqueue time) to its start;
    * ``jobqueue.pickup_root_age.<type>`` (timing): ms from its root job's timestamp to its
      start, for jobs of a root job;
    * ``jobqueue.run.<type>`` (timing): its run time in ms;
    * ``jobqueue.rss_delta.<type>`` (counter): KiB the peak RSS grew by during the job; a
      0 is sent too, as MediaWiki does.

    Packets go out when a datagram's worth is queued, when ``interval`` seconds passed since
    the last send, and on :meth:`flush`. ``<type>`` is made safe with :func:`safe_name`.
    """

    def __init__(
        self,
        statsd: Statsd,
        *,
        interval: float = JOB_FLUSH_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.statsd = statsd
        self.interval = interval
        self.monotonic = monotonic
        self._sent = monotonic()

    def __repr__(self) -> str:
        return f"<JobStatsd {self.statsd.host}:{self.statsd.port}>"

    def job_done(self, sample: JobSample) -> None:
        """Queue the job's packets; send them if a datagram is full or a send is due."""
        kind = safe_name(sample.job_type)
        queue = self.statsd.queue
        if sample.ready is not None:
            delay = _ms(sample.start - sample.ready)
            queue(packet("jobqueue.pickup_delay.all", delay, "ms"))
            queue(packet(f"jobqueue.pickup_delay.{kind}", delay, "ms"))
        if sample.root is not None:
            queue(packet(f"jobqueue.pickup_root_age.{kind}", _ms(sample.start - sample.root), "ms"))
        queue(packet(f"jobqueue.run.{kind}", sample.ms, "ms"))
        queue(packet(f"jobqueue.rss_delta.{kind}", max(0, sample.rss_delta), "c"))
        if (
            self.statsd.pending_bytes >= MAX_DATAGRAM
            or self.monotonic() - self._sent >= self.interval
        ):
            self.flush()

    def flush(self) -> None:
        """Send every queued packet now."""
        self._sent = self.monotonic()
        self.statsd.flush()

    def close(self) -> None:
        """Send what is queued and close the socket."""
        self.flush()
        self.statsd.close()


def job_metrics_for(target: StatsdConfig | None) -> JobStatsd | None:
    """The per-job metrics sink for a config's ``statsd`` value (None: not configured)."""
    if target is None:
        return None
    return JobStatsd(Statsd(target.host, target.port))
