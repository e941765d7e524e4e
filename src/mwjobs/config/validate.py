"""Turning the decoded JSON of a config file into a :class:`~mwjobs.config.model.RunnerConfig`.

:class:`Builder` walks the document once, section by section, in a fixed order (so the
first error reported does not depend on the order of the file), and collects warnings.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mwjobs.config.dispatcher import DispatcherReader
from mwjobs.config.model import (
    DEFAULT_STATSD_PORT,
    GroupConfig,
    LimitMap,
    LimitsConfig,
    RedisConfig,
    RunnerConfig,
    StatsdConfig,
    TimingConfig,
)
from mwjobs.config.values import Reader, key_path, shown
from mwjobs.errors import ConfigError
from mwjobs.queues.redis.endpoint import RedisEndpoint, parse_redis_endpoint

__all__ = ["Builder"]

V = TypeVar("V")

_TOP_KEYS = ("groups", "limits", "redis", "statsd", "dispatcher", "wrapper", "mwjobs")
_GROUP_KEYS = ("runners", "include", "exclude", "low-priority")
_LIMIT_KEYS = ("claimTTL", "attempts", "real", "memory")
_REDIS_KEYS = ("aggregators", "queues", "password")
_TIMING_KEYS = tuple(f.name for f in dataclasses.fields(TimingConfig))
_TIMING_MAY_BE_ZERO = frozenset({"aggregator_cache_ttl", "kill_grace", "stop_grace"})
_STATSD = re.compile(
    r"\[(?P<v6>[^\]]+)\](?::(?P<v6port>\d+))?"  # [v6addr]:port
    r"|(?P<host>[^:\[\]\s]+)(?::(?P<port>\d+))?"  # host:port
)


class Builder(Reader):
    """Walks the decoded document once, section by section."""

    def __init__(self, source: str, base_dir: Path | None) -> None:
        super().__init__(source)
        self.base_dir = base_dir

    def build(self, doc: Any) -> RunnerConfig:
        if not isinstance(doc, dict):
            raise ConfigError(
                f"{self.source}: the top level must be a JSON object (got {shown(doc)}); "
                "wrap the settings in { }"
            )
        top = self.obj(doc, "", _TOP_KEYS)
        if "wrapper" in top:
            self.warn("wrapper", "is ignored (an old PHP service key); the dispatcher is used")
        ext = top.get("mwjobs")
        ext = self.obj({} if ext is None else ext, "mwjobs", ("timing",))
        timing = self.timing(ext.get("timing"))
        config = RunnerConfig(
            groups=self.groups(top.get("groups")),
            limits=self.limits(top.get("limits"), timing),
            redis=self.redis(top.get("redis")),
            statsd=self.statsd(top.get("statsd")),
            dispatcher=DispatcherReader(self, self.base_dir).read(top.get("dispatcher")),
            timing=timing,
            source=self.source,
        )
        if not config.enabled_groups:
            self.warn("groups", "has no group with runners > 0; the runner will start no slots")
        return dataclasses.replace(config, warnings=tuple(self.warnings))

    # -- groups

    def groups(self, raw: Any) -> tuple[GroupConfig, ...]:
        if raw is None:  # a chron-only file may omit groups (PHP loops over nothing)
            return ()
        groups = self.obj(raw, "groups")
        return tuple(
            self.group(name, spec, key_path("groups", name)) for name, spec in groups.items()
        )

    def group(self, name: str, raw: Any, path: str) -> GroupConfig:
        spec = self.obj(raw, path, _GROUP_KEYS)
        if not name.strip():
            raise self.fail(path, "has an empty name", 'give the group a name, e.g. "basic"')
        if "runners" not in spec:
            raise self.fail(path, 'has no "runners"', 'add "runners": 5 (0 disables the group)')
        group = GroupConfig(
            name=name,
            runners=self.integer(spec["runners"], key_path(path, "runners"), minimum=0, example=5),
            include=self.job_types(spec.get("include"), key_path(path, "include"), star=True),
            exclude=self.job_types(spec.get("exclude"), key_path(path, "exclude")),
            low_priority=self.job_types(spec.get("low-priority"), key_path(path, "low-priority")),
        )
        if group.enabled and not group.include and not group.low_priority:
            self.warn(path, 'includes no job types; add "include": ["*"] or a list of types')
        return group

    def job_types(self, raw: Any, path: str, *, star: bool = False) -> tuple[str, ...]:
        types = self.strings(raw, path, "refreshLinks")
        if "*" in types and not star:
            at = key_path(path, types.index("*"))
            raise self.fail(at, '"*" only has a meaning in "include"', "list job types by name")
        return types

    # -- limits

    def limits(self, raw: Any, timing: TimingConfig) -> LimitsConfig:
        spec = self.obj({} if raw is None else raw, "limits", _LIMIT_KEYS)
        return LimitsConfig(
            claim_ttl=self.limit_map(spec.get("claimTTL"), "limits.claimTTL", 3600, self.seconds),
            attempts=self.limit_map(spec.get("attempts"), "limits.attempts", 3, self.attempts),
            real=self.real(spec.get("real"), timing),
            memory=self.limit_map(spec.get("memory"), "limits.memory", "300M", self.memory),
        )

    def limit_map(
        self, raw: Any, path: str, default: V, read: Callable[[Any, str], V]
    ) -> LimitMap[V]:
        values: dict[str, V] = {"*": default}  # file values override per key, as PHP's `+`
        for job_type, value in self.obj({} if raw is None else raw, path).items():
            at = key_path(path, job_type)
            if not job_type.strip():
                raise self.fail(at, "has an empty job type", 'use a job type name or "*"')
            values[job_type] = read(value, at)
        return LimitMap(values)

    def seconds(self, value: Any, path: str) -> int:
        return self.integer(value, path, minimum=1, example=3600)

    def attempts(self, value: Any, path: str) -> int:
        return self.integer(value, path, minimum=1, example=3)

    def real(self, raw: Any, timing: TimingConfig) -> LimitMap[int]:
        """PHP raises every real limit to 2 x the longest maxtime so a run can finish."""
        real = self.limit_map(raw, "limits.real", 3600, self.seconds)
        floor = timing.min_real
        for job_type, value in real.by_type.items():
            if value < floor:
                at = key_path("limits.real", job_type)
                self.warn(at, f"= {value} is raised to {floor} (2 x the longest maxtime)")
        return LimitMap({t: max(v, floor) for t, v in real.by_type.items()})

    # -- servers

    def redis(self, raw: Any) -> RedisConfig:
        if raw is None:
            fix = 'add "redis": {"aggregators": ["127.0.0.1:6379"], "queues": ["127.0.0.1:6379"]}'
            raise self.fail("redis", "is missing", fix)
        spec = self.obj(raw, "redis", _REDIS_KEYS)
        password = spec.get("password")
        if password is not None:
            password = self.string(password, "redis.password", "secret")
        return RedisConfig(
            aggregators=self.servers(spec.get("aggregators"), "redis.aggregators", password),
            queues=self.servers(spec.get("queues"), "redis.queues", password),
            password=password,
        )

    def servers(self, raw: Any, path: str, password: str | None) -> tuple[RedisEndpoint, ...]:
        if raw is None:
            raise self.fail(path, "is missing", f'add "{path[6:]}": ["127.0.0.1:6379"]')
        texts = self.strings(raw, path, "127.0.0.1:6379")
        if not texts:
            fix = 'list at least one Redis server, e.g. ["127.0.0.1:6379"]'
            raise self.fail(path, "is an empty list", fix)
        endpoints: list[RedisEndpoint] = []
        for i, text in enumerate(texts):
            try:
                endpoint = parse_redis_endpoint(text, password=password)
            except ConfigError as exc:
                raise ConfigError(f"{self.source}: {key_path(path, i)}: {exc}") from None
            if endpoint in endpoints:
                raise self.fail(key_path(path, i), f"repeats {endpoint.display}", "list each once")
            endpoints.append(endpoint)
        return tuple(endpoints)

    def statsd(self, raw: Any) -> StatsdConfig | None:
        if raw is None:
            return None
        text = self.string(raw, "statsd", "statsd.example.org:8125").strip()
        match = _STATSD.fullmatch(text)
        if match is None:
            fix = 'write e.g. "statsd.example.org:8125" (IPv6: "[::1]:8125")'
            raise self.fail("statsd", f"is not host[:port] (got {shown(raw)})", fix)
        port_text = match.group("v6port") or match.group("port")
        port = int(port_text) if port_text else DEFAULT_STATSD_PORT
        if not 0 < port < 65536:
            raise self.fail("statsd", f"has port {port}", "use a port from 1 to 65535")
        return StatsdConfig(match.group("v6") or match.group("host"), port)

    # -- extensions

    def timing(self, raw: Any) -> TimingConfig:
        spec = self.obj({} if raw is None else raw, "mwjobs.timing", _TIMING_KEYS)
        defaults = TimingConfig()
        values: dict[str, Any] = {}
        for name, value in spec.items():
            path = key_path("mwjobs.timing", name)
            default = getattr(defaults, name)
            if isinstance(default, bool):
                values[name] = self.boolean(value, path)
            elif isinstance(default, int):
                values[name] = self.integer(value, path, minimum=1, example=default)
            else:
                zero_ok = name in _TIMING_MAY_BE_ZERO
                values[name] = self.number(value, path, positive=not zero_ok, example=default)
        timing = TimingConfig(**values)
        # The PHP service documents these orderings in comments; breaking them starves a
        # priority, which is legal but rarely meant.
        if timing.lp_max_time >= timing.hp_max_delay:
            self.warn("mwjobs.timing.lp_max_time", "should be lower than hp_max_delay")
        if timing.hp_max_time >= timing.lp_max_delay:
            self.warn("mwjobs.timing.hp_max_time", "should be lower than lp_max_delay")
        return timing
