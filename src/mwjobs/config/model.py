"""The validated configuration: typed, frozen objects that the services read.

Nothing here reads a file or checks a value (:mod:`mwjobs.config.validate` does both);
a :class:`RunnerConfig` is only ever built from a file that passed every check. Defaults
that a key declares come from its declaration (:mod:`mwjobs.config.schema`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Generic, Literal, TypeAlias, TypeVar

from mwjobs.config import render
from mwjobs.config.schema import default_of
from mwjobs.errors import ConfigError
from mwjobs.queues.backends import BackendLocation
from mwjobs.queues.redis.endpoint import RedisEndpoint

__all__ = [
    "PLACEHOLDERS",
    "CommandDispatcherConfig",
    "DispatcherConfig",
    "GroupConfig",
    "HttpDispatcherConfig",
    "HttpMode",
    "LimitMap",
    "LimitsConfig",
    "PythonDispatcherConfig",
    "QueuesConfig",
    "RedisConfig",
    "RunnerConfig",
    "StatsdConfig",
    "TimingConfig",
]

V = TypeVar("V")

PLACEHOLDERS = ("db", "type", "maxtime", "maxmem")
"""Names a dispatcher template may use as ``%(name)x`` (raw value) or ``%(name)u`` (URL-encoded)."""

DEFAULT_STATSD_PORT = 8125


@dataclass(frozen=True)
class LimitMap(Generic[V]):
    """A job type -> value map with a ``"*"`` default, as the PHP service keeps them."""

    by_type: Mapping[str, V]

    def __post_init__(self) -> None:
        if "*" not in self.by_type:
            raise ConfigError('a limit map needs a "*" default entry')
        # Read-only copy: a frozen config must not change under the services' feet.
        object.__setattr__(self, "by_type", MappingProxyType(dict(self.by_type)))

    @property
    def default(self) -> V:
        return self.by_type["*"]

    def for_type(self, job_type: str) -> V:
        """The value for ``job_type``, else the ``"*"`` default, as PHP's
        ``$map[$type] ?? $map['*']``."""
        return self.by_type.get(job_type, self.by_type["*"])


def _per_type_default(path: str, kind: type[V]) -> Callable[[], LimitMap[V]]:
    """A factory of the map ``{"*": <the declared default of path>}``."""
    value = default_of(path, kind)
    return lambda: LimitMap({"*": value})


@dataclass(frozen=True)
class LimitsConfig:
    """``limits``. claimTTL and attempts are read by the chron; real and memory
    by the runner. Values are merged over the defaults per key, as PHP's ``+`` does."""

    claim_ttl: LimitMap[int] = field(default_factory=_per_type_default("limits.claimTTL", int))
    attempts: LimitMap[int] = field(default_factory=_per_type_default("limits.attempts", int))
    real: LimitMap[int] = field(default_factory=_per_type_default("limits.real", int))
    memory: LimitMap[str] = field(default_factory=_per_type_default("limits.memory", str))

    def claim_ttl_for(self, job_type: str) -> int:
        """Seconds a claimed job may stay claimed before the chron recycles it."""
        return self.claim_ttl.for_type(job_type)

    def attempts_for(self, job_type: str) -> int:
        """How many runs a job gets before the chron abandons it."""
        return self.attempts.for_type(job_type)

    def real_for(self, job_type: str) -> int:
        """Wall-clock seconds a dispatched run may take before the runner kills it."""
        return self.real.for_type(job_type)

    def memory_for(self, job_type: str) -> str:
        """PHP memory string (``"300M"``) substituted as ``%(maxmem)``."""
        return self.memory.for_type(job_type)


@dataclass(frozen=True)
class GroupConfig:
    """One runner group ("loop"). ``runners == 0`` disables it (PHP skips such groups)."""

    name: str
    runners: int
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    low_priority: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return self.runners > 0


@dataclass(frozen=True)
class QueuesConfig:
    """Where the queues live, whatever the backend (from ``mwjobs.queues``, or mapped from
    ``redis``). A location's password travels apart from its URL, which can be shown."""

    # Where jobs are: the chron walks each; run-jobs and the python workers use the first.
    partitions: tuple[BackendLocation, ...]
    # Where the ready-queue map and the chron pool lock are (first reachable); may be
    # empty for a backend that needs none.
    aggregators: tuple[BackendLocation, ...] = ()


@dataclass(frozen=True)
class RedisConfig:
    """``redis``: aggregator servers (ready-queue map, chron locks) and queue partitions,
    as the file gave them (:class:`QueuesConfig` is what they mean)."""

    aggregators: tuple[RedisEndpoint, ...]
    queues: tuple[RedisEndpoint, ...]
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class StatsdConfig:
    """``statsd``: where counters go (UDP)."""

    host: str
    port: int = DEFAULT_STATSD_PORT

    @property
    def display(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class CommandDispatcherConfig:
    """Run a process per batch. ``argv`` is a template: each element may hold placeholders;
    no shell is involved. ``template`` keeps the original string when the file used one.

    ``shell=True`` (the explicit ``{"kind": "command", "shell": "..."}`` opt-in) runs
    ``template`` with ``/bin/sh -c`` instead, each ``%(name)x`` quoted as PHP's
    ``escapeshellarg``; ``argv`` is then empty."""

    kind: ClassVar[Literal["command"]] = "command"
    argv: tuple[str, ...]
    template: str | None = None
    shell: bool = False


HttpMode: TypeAlias = Literal["rpc", "special"]


@dataclass(frozen=True)
class HttpDispatcherConfig:
    """POST to a MediaWiki endpoint; ``url`` holds ``%(name)u`` placeholders.
    ``timeout=None`` means the job type's ``limits.real``.

    ``mode="rpc"``: ``url`` is the whole request (WMF's ``rpc/RunJobs.php?wiki=...``).
    ``mode="special"``: ``url`` is the wiki's ``index.php``; the runner adds MediaWiki's own
    signed ``Special:RunJobs`` query (HMAC-SHA1 with ``$wgSecretKey``: ``secret``, or the
    environment variable named by ``secret_env``), asking for at most ``maxjobs`` jobs."""

    kind: ClassVar[Literal["http"]] = "http"
    url: str
    timeout: float | None = None
    mode: HttpMode = "rpc"  # a Literal: tests/test_config.py checks it against the schema
    secret: str | None = field(default=None, repr=False)
    secret_env: str | None = None
    maxjobs: int = default_of("dispatcher.maxjobs", int, "http")


@dataclass(frozen=True)
class PythonDispatcherConfig:
    """Run jobs in persistent Python worker processes. ``modules`` are imported in each
    worker (so job classes register), ``paths`` are prepended to ``sys.path``;
    ``workers=None`` means one worker per runner slot. A worker claims ``batch`` jobs per
    round trip and is replaced after ``max_batches`` batches, or after a batch that leaves
    its resident memory above ``max_memory`` (a PHP memory string; None: only when a batch
    stopped at its ``limits.memory``)."""

    kind: ClassVar[Literal["python"]] = "python"
    modules: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    workers: int | None = None
    batch: int = default_of("dispatcher.batch", int, "python")
    max_batches: int = default_of("dispatcher.max_batches", int, "python")
    max_memory: str | None = None
    # $wgJobBackoffThrottling: (job type, work items per second) pairs, shared by the
    # workers of the host through the backoff file.
    throttling: tuple[tuple[str, float], ...] = ()


DispatcherConfig: TypeAlias = (
    CommandDispatcherConfig | HttpDispatcherConfig | PythonDispatcherConfig
)


def _timing(name: str, kind: type[V]) -> V:
    return default_of(f"mwjobs.timing.{name}", kind)


@dataclass(frozen=True)
class TimingConfig:
    """What the PHP service hard-codes; overridable under ``"mwjobs": {"timing": {...}}``.
    Each field is the key of the same name; its meaning and default are declared in
    :mod:`mwjobs.config.schema` (and listed in docs/configuration.md).

    ``legacy_maxtime_inversion=True`` replicates the PHP maxtime inversion (high-priority runs get
    ``lp_max_time``); the default gives each priority its own documented maxtime.
    """

    hp_max_delay: int = _timing("hp_max_delay", int)
    lp_max_delay: int = _timing("lp_max_delay", int)
    hp_max_time: int = _timing("hp_max_time", int)
    lp_max_time: int = _timing("lp_max_time", int)
    aggregator_cache_ttl: float = _timing("aggregator_cache_ttl", float)
    chron_period: float = _timing("chron_period", float)
    abandoned_retention: int = _timing("abandoned_retention", int)
    pool_lock_ttl: int = _timing("pool_lock_ttl", int)
    chron_batch: int = _timing("chron_batch", int)
    kill_grace: float = _timing("kill_grace", float)
    legacy_maxtime_inversion: bool = _timing("legacy_maxtime_inversion", bool)
    stop_grace: float = _timing("stop_grace", float)
    wake_on_push: bool = _timing("wake_on_push", bool)

    def maxtime_for(self, high_priority: bool) -> int:
        """The ``%(maxtime)`` of a run started while its group is in the given priority."""
        if self.legacy_maxtime_inversion:
            high_priority = not high_priority
        return self.hp_max_time if high_priority else self.lp_max_time

    @property
    def min_real(self) -> int:
        """The floor for ``limits.real``: 2 x the longest maxtime (PHP's rule)."""
        return 2 * max(self.hp_max_time, self.lp_max_time)


@dataclass(frozen=True)
class RunnerConfig:
    """The whole validated configuration of the runner and chron services."""

    groups: tuple[GroupConfig, ...]
    limits: LimitsConfig
    queues: QueuesConfig
    redis: RedisConfig | None  # None when the file gave mwjobs.queues instead
    statsd: StatsdConfig | None
    dispatcher: DispatcherConfig
    timing: TimingConfig
    source: str
    warnings: tuple[str, ...] = ()

    @property
    def enabled_groups(self) -> tuple[GroupConfig, ...]:
        """The groups with runners, in file order: the PHP service's loops 0..n-1."""
        return tuple(g for g in self.groups if g.enabled)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for display; passwords are replaced by ``***``."""
        return render.config_dict(self)

    def summary(self) -> str:
        """A readable multi-line summary (``mwjobs check-config``); no secrets."""
        return render.summary(self)
