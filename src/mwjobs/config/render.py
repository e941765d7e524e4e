"""What ``mwjobs check-config`` shows: :func:`config_dict` (``--json``) and :func:`summary`.

Secrets never leave this module in clear: passwords and keys become ``***``, and a URL
keeps its user but not its password.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # the model imports this module to render itself
    from mwjobs.config.model import DispatcherConfig, GroupConfig, RunnerConfig

__all__ = ["MASK", "config_dict", "mask_url", "summary"]

MASK = "***"


def config_dict(cfg: RunnerConfig) -> dict[str, Any]:
    """A JSON-ready view of ``cfg``; passwords are replaced by ``***``."""
    return {
        "source": cfg.source,
        "groups": [_group_dict(g) for g in cfg.groups],
        "limits": {
            "claimTTL": dict(cfg.limits.claim_ttl.by_type),
            "attempts": dict(cfg.limits.attempts.by_type),
            "real": dict(cfg.limits.real.by_type),
            "memory": dict(cfg.limits.memory.by_type),
        },
        "redis": {
            "aggregators": [e.display for e in cfg.redis.aggregators],
            "queues": [e.display for e in cfg.redis.queues],
            "password": None if cfg.redis.password is None else MASK,
        },
        "statsd": None if cfg.statsd is None else cfg.statsd.display,
        "dispatcher": _dispatcher_dict(cfg.dispatcher),
        "mwjobs": {"timing": dataclasses.asdict(cfg.timing)},
        "warnings": list(cfg.warnings),
    }


def _group_dict(group: GroupConfig) -> dict[str, Any]:
    return {
        "name": group.name,
        "runners": group.runners,
        "include": list(group.include),
        "exclude": list(group.exclude),
        "low-priority": list(group.low_priority),
    }


def _dispatcher_dict(disp: DispatcherConfig) -> dict[str, Any]:
    if disp.kind == "command":
        data: dict[str, Any] = {"kind": disp.kind, "argv": list(disp.argv)}
        data["template"] = disp.template
        if disp.shell:
            data["shell"] = True
        return data
    if disp.kind == "http":
        data = {"kind": disp.kind, "url": mask_url(disp.url), "timeout": disp.timeout}
        if disp.mode == "special":
            data.update(mode=disp.mode, maxjobs=disp.maxjobs, secret_env=disp.secret_env)
            data["secret"] = None if disp.secret is None else MASK
        return data
    return {
        "kind": disp.kind,
        "modules": list(disp.modules),
        "paths": list(disp.paths),
        "workers": disp.workers,
        "batch": disp.batch,
        "max_batches": disp.max_batches,
        "max_memory": disp.max_memory,
        "throttling": dict(disp.throttling),
    }


def mask_url(url: str) -> str:
    """The URL with any ``user:password@`` password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    return parts._replace(netloc=netloc).geturl()


def summary(cfg: RunnerConfig) -> str:
    """A readable multi-line summary of ``cfg``; no secrets."""
    return "\n".join(_summary_lines(cfg))


def _summary_lines(cfg: RunnerConfig) -> list[str]:
    data = config_dict(cfg)
    enabled = len(cfg.enabled_groups)
    lines = [f"{cfg.source}: OK", f"groups: {enabled} enabled of {len(cfg.groups)}"]
    for g in cfg.groups:
        state = f"{g.runners} runner(s)" if g.enabled else "disabled (runners: 0)"
        lines.append(f"  {g.name}: {state}")
        for label, types in (("include", g.include), ("exclude", g.exclude)):
            if types:
                lines.append(f"    {label}: {', '.join(types)}")
        if g.low_priority:
            lines.append(f"    low-priority: {', '.join(g.low_priority)}")
    lines.append("limits:")
    for key, values in data["limits"].items():
        shown = ", ".join(f"{t}={v}" for t, v in values.items())
        lines.append(f"  {key}: {shown}")
    redis = data["redis"]
    lines += [
        "redis:",
        f"  aggregators: {', '.join(redis['aggregators'])}",
        f"  queues: {', '.join(redis['queues'])}",
        f"  password: {'set (hidden)' if redis['password'] else 'none'}",
        f"statsd: {data['statsd'] or 'off'}",
        f"dispatcher: {cfg.dispatcher.kind}",
    ]
    for key, value in data["dispatcher"].items():
        if key != "kind" and value not in (None, []):
            shown = json.dumps(value) if isinstance(value, list) else str(value)
            lines.append(f"  {key}: {shown}")
    timing = ", ".join(f"{k}={v}" for k, v in data["mwjobs"]["timing"].items())
    lines.append(f"timing: {timing}")
    lines += [f"warning: {w}" for w in cfg.warnings]
    return lines
