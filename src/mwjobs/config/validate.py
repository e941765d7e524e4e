"""Turning the decoded JSON of a config file into a :class:`~mwjobs.config.model.RunnerConfig`.

:class:`Builder` walks the document once, section by section, in a fixed order (so the
first error reported does not depend on the order of the file), and collects warnings.
Which keys each object accepts, their examples and bounds come from
:mod:`mwjobs.config.schema`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mwjobs.config.dispatcher import DispatcherReader
from mwjobs.config.model import (
    DEFAULT_STATSD_PORT,
    GroupConfig,
    LimitMap,
    LimitsConfig,
    QueuesConfig,
    RedisConfig,
    RunnerConfig,
    StatsdConfig,
    TimingConfig,
)
from mwjobs.config.render import mask_url
from mwjobs.config.schema import Key, children, key, names
from mwjobs.config.values import Reader, key_path, shown
from mwjobs.errors import ConfigError
from mwjobs.queues.backends import BACKENDS, BackendLocation, scheme_of
from mwjobs.queues.redis.endpoint import RedisEndpoint, parse_redis_endpoint

__all__ = ["Builder"]

_RUNNERS = key("groups.*.runners")
_INCLUDE = key("groups.*.include")
_EXCLUDE = key("groups.*.exclude")
_LOW_PRIORITY = key("groups.*.low-priority")
_REDIS_PASSWORD = key("redis.password")
_REDIS_AGGREGATORS = key("redis.aggregators")
_REDIS_QUEUES = key("redis.queues")
_PARTITIONS = key("mwjobs.queues.partitions")
_AGGREGATORS = key("mwjobs.queues.aggregators")
# The schemes parse_redis_endpoint reads: their URLs are checked and written out by it.
_REDIS_SCHEMES = ("redis", "rediss", "unix")
_STATSD_KEY = key("statsd")
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
        top = self.obj(doc, "", names(""))
        if "wrapper" in top:
            self.warn("wrapper", "is ignored (an old PHP service key); the dispatcher is used")
        ext = top.get("mwjobs")
        ext = self.obj({} if ext is None else ext, "mwjobs", names("mwjobs"))
        timing = self.timing(ext.get("timing"))
        groups = self.groups(top.get("groups"))
        limits = self.limits(top.get("limits"), timing)
        redis, queues = self.queue_places(top.get("redis"), ext.get("queues"))
        config = RunnerConfig(
            groups=groups,
            limits=limits,
            queues=queues,
            redis=redis,
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
        spec = self.obj(raw, path, names("groups.*"))
        if not name.strip():
            raise self.fail(path, "has an empty name", 'give the group a name, e.g. "basic"')
        if "runners" not in spec:
            fix = f'add "runners": {_RUNNERS.example} (0 disables the group)'
            raise self.fail(path, 'has no "runners"', fix)
        group = GroupConfig(
            name=name,
            runners=self.int_of(_RUNNERS, spec["runners"], key_path(path, "runners")),
            include=self.job_types(_INCLUDE, spec, path, star=True),
            exclude=self.job_types(_EXCLUDE, spec, path),
            low_priority=self.job_types(_LOW_PRIORITY, spec, path),
        )
        if group.enabled and not group.include and not group.low_priority:
            self.warn(path, 'includes no job types; add "include": ["*"] or a list of types')
        return group

    def job_types(
        self, of: Key, spec: dict[str, Any], group: str, *, star: bool = False
    ) -> tuple[str, ...]:
        path = key_path(group, of.name)
        types = self.strings_of(of, spec.get(of.name), path)
        if "*" in types and not star:
            at = key_path(path, types.index("*"))
            raise self.fail(at, '"*" only has a meaning in "include"', "list job types by name")
        return types

    # -- limits

    def limits(self, raw: Any, timing: TimingConfig) -> LimitsConfig:
        spec = self.obj({} if raw is None else raw, "limits", names("limits"))
        maps = {k.attr: self.limit_map(k, spec.get(k.name)) for k in children("limits")}
        maps["real"] = self.raise_real(maps["real"], timing)
        return LimitsConfig(**maps)

    def limit_map(self, of: Key, raw: Any) -> LimitMap[Any]:
        values: dict[str, Any] = {"*": of.default}  # file values override per key, as PHP's `+`
        for job_type, value in self.obj({} if raw is None else raw, of.path).items():
            at = key_path(of.path, job_type)
            if not job_type.strip():
                raise self.fail(at, "has an empty job type", 'use a job type name or "*"')
            values[job_type] = self.read(of, value, at)
        return LimitMap(values)

    def raise_real(self, real: LimitMap[int], timing: TimingConfig) -> LimitMap[int]:
        """PHP raises every real limit to 2 x the longest maxtime so a run can finish."""
        floor = timing.min_real
        for job_type, value in real.by_type.items():
            if value < floor:
                at = key_path("limits.real", job_type)
                self.warn(at, f"= {value} is raised to {floor} (2 x the longest maxtime)")
        return LimitMap({t: max(v, floor) for t, v in real.by_type.items()})

    # -- where the queues are

    def queue_places(
        self, redis_raw: Any, queues_raw: Any
    ) -> tuple[RedisConfig | None, QueuesConfig]:
        """``redis`` (the PHP service's form, mapped onto :class:`QueuesConfig`) or
        ``mwjobs.queues`` (URLs): exactly one of them."""
        if redis_raw is not None and queues_raw is not None:
            fix = "keep one of them: redis (the PHP service's form) or mwjobs.queues (URLs)"
            raise self.fail("mwjobs.queues", "is given together with redis", fix)
        if queues_raw is not None:
            return None, self.backend_queues(queues_raw)
        redis = self.redis(redis_raw)
        return redis, QueuesConfig(
            partitions=tuple(_redis_location(e) for e in redis.queues),
            aggregators=tuple(_redis_location(e) for e in redis.aggregators),
        )

    def redis(self, raw: Any) -> RedisConfig:
        if raw is None:
            servers = {"aggregators": _REDIS_AGGREGATORS.example, "queues": _REDIS_QUEUES.example}
            urls = {"queues": {"partitions": _PARTITIONS.example}}
            fix = f'add "redis": {json.dumps(servers)}, or "mwjobs": {json.dumps(urls)}'
            raise self.fail("redis", "is missing", fix)
        spec = self.obj(raw, "redis", names("redis"))
        password = spec.get("password")
        if password is not None:
            password = self.string_of(_REDIS_PASSWORD, password, _REDIS_PASSWORD.path)
        return RedisConfig(
            aggregators=self.servers(_REDIS_AGGREGATORS, spec.get("aggregators"), password),
            queues=self.servers(_REDIS_QUEUES, spec.get("queues"), password),
            password=password,
        )

    def servers(self, of: Key, raw: Any, password: str | None) -> tuple[RedisEndpoint, ...]:
        path, example = of.path, json.dumps(of.example)
        if raw is None:
            raise self.fail(path, "is missing", f'add "{of.name}": {example}')
        texts = self.strings_of(of, raw, path)
        if not texts:
            fix = f"list at least one Redis server, e.g. {example}"
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

    def backend_queues(self, raw: Any) -> QueuesConfig:
        spec = self.obj(raw, "mwjobs.queues", names("mwjobs.queues"))
        partitions = spec.get(_PARTITIONS.name)
        example = json.dumps(_PARTITIONS.example)
        if partitions is None:
            raise self.fail(_PARTITIONS.path, "is missing", f'add "partitions": {example}')
        found = self.locations(_PARTITIONS, partitions)
        if not found:
            fix = f"list at least one queue backend URL, e.g. {example}"
            raise self.fail(_PARTITIONS.path, "is an empty list", fix)
        return QueuesConfig(found, self.locations(_AGGREGATORS, spec.get(_AGGREGATORS.name)))

    def locations(self, of: Key, raw: Any) -> tuple[BackendLocation, ...]:
        found: list[BackendLocation] = []
        for i, text in enumerate(self.strings_of(of, raw, of.path)):
            at = key_path(of.path, i)
            where = self.location(text.strip(), at)
            if any(seen.url == where.url for seen in found):
                raise self.fail(at, f"repeats {where.display}", "list each once")
            found.append(where)
        return tuple(found)

    def location(self, url: str, at: str) -> BackendLocation:
        """A backend URL, its password moved out of it (the URL is shown, never it)."""
        scheme = scheme_of(url)
        if scheme not in BACKENDS:
            known = ", ".join(f"{name}://" for name in sorted(BACKENDS))
            fix = f'use one of {known}, e.g. "{_PARTITIONS.item_example}"'
            raise self.fail(at, f"is not a queue backend URL (got {shown(mask_url(url))})", fix)
        if scheme in _REDIS_SCHEMES:
            try:
                return _redis_location(parse_redis_endpoint(url))
            except ConfigError as exc:
                raise ConfigError(f"{self.source}: {at}: {exc}") from None
        return _without_password(url)

    def statsd(self, raw: Any) -> StatsdConfig | None:
        if raw is None:
            return None
        text = self.string_of(_STATSD_KEY, raw, "statsd").strip()
        match = _STATSD.fullmatch(text)
        if match is None:
            fix = f'write e.g. "{_STATSD_KEY.example}" (IPv6: "[::1]:8125")'
            raise self.fail("statsd", f"is not host[:port] (got {shown(raw)})", fix)
        port_text = match.group("v6port") or match.group("port")
        port = int(port_text) if port_text else DEFAULT_STATSD_PORT
        if not 0 < port < 65536:
            raise self.fail("statsd", f"has port {port}", "use a port from 1 to 65535")
        return StatsdConfig(match.group("v6") or match.group("host"), port)

    # -- extensions

    def timing(self, raw: Any) -> TimingConfig:
        timing = TimingConfig(**self.section("mwjobs.timing", raw))
        # The PHP service documents these orderings in comments; breaking them starves a
        # priority, which is legal but rarely meant.
        if timing.lp_max_time >= timing.hp_max_delay:
            self.warn("mwjobs.timing.lp_max_time", "should be lower than hp_max_delay")
        if timing.hp_max_time >= timing.lp_max_delay:
            self.warn("mwjobs.timing.hp_max_time", "should be lower than lp_max_delay")
        return timing


def _redis_location(endpoint: RedisEndpoint) -> BackendLocation:
    """A Redis server as a backend location: its URL (database and user included) and,
    apart, its password (the URL's own, else ``redis.password``)."""
    return BackendLocation(endpoint.url, endpoint.password)


def _without_password(url: str) -> BackendLocation:
    """A URL of another backend, with a ``user:password@`` password moved out."""
    parts = urlsplit(url)
    if parts.password is None:
        return BackendLocation(url)
    user = f"{parts.username}@" if parts.username else ""
    netloc = user + parts.netloc.rpartition("@")[2]
    return BackendLocation(parts._replace(netloc=netloc).geturl(), unquote(parts.password))

