"""What ``mwjobs check-config`` shows: :func:`config_dict` (``--json``) and :func:`summary`.

A section is rendered from its declared keys (:mod:`mwjobs.config.schema`): each key's
model attribute, shown as its kind says. Secrets never leave this module in clear: a key
declared ``secret`` becomes ``***``, and a URL keeps its user but not its password.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mwjobs.config.schema import Key, Kind, children

if TYPE_CHECKING:  # the model imports this module to render itself
    from mwjobs.config.model import DispatcherConfig, GroupConfig, RunnerConfig

__all__ = ["MASK", "config_dict", "mask_url", "summary"]

MASK = "***"


def config_dict(cfg: RunnerConfig) -> dict[str, Any]:
    """A JSON-ready view of ``cfg``; passwords are replaced by ``***``."""
    return {
        "source": cfg.source,
        "groups": [_group_dict(g) for g in cfg.groups],
        "limits": section_dict("limits", cfg.limits),
        "queues": section_dict("mwjobs.queues", cfg.queues),
        "redis": None if cfg.redis is None else section_dict("redis", cfg.redis),
        "statsd": None if cfg.statsd is None else cfg.statsd.display,
        "dispatcher": _dispatcher_dict(cfg.dispatcher),
        "mwjobs": {"timing": section_dict("mwjobs.timing", cfg.timing)},
        "warnings": list(cfg.warnings),
    }


def section_dict(parent: str, obj: object, variant: str | None = None) -> dict[str, Any]:
    """The members of the section at ``parent`` (in its ``variant``) that ``obj`` holds,
    by key name, in declaration order."""
    data: dict[str, Any] = {}
    for key in children(parent, variant):
        value = getattr(obj, key.attr)
        if _shows(key, obj, value):
            data[key.name] = shown_value(key, value)
    return data


def _shows(key: Key, obj: object, value: object) -> bool:
    if key.only_with is not None:  # e.g. a Special:RunJobs key while mode is rpc
        name, needed = key.only_with
        return bool(getattr(obj, name) == needed)
    return key.shown_at_default or value != key.default


def mask_url(url: str) -> str:
    """The URL with any ``user:password@`` password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    return parts._replace(netloc=netloc).geturl()


# How values of some kinds are shown; the rest as they are (tuples as lists).
_SHOW: dict[Kind, Callable[[Any], Any]] = {
    Kind.SERVERS: lambda endpoints: [e.display for e in endpoints],
    Kind.LOCATIONS: lambda places: [
        {"url": p.url, "password": None if p.password is None else MASK} for p in places
    ],
    Kind.URL: mask_url,
    Kind.RATES: dict,
}


def shown_value(key: Key, value: Any) -> Any:
    """``value`` of ``key`` as check-config shows it: secrets masked, maps as objects."""
    if value is None:
        return None
    if key.secret:
        return MASK
    if key.per_type:
        return dict(value.by_type)
    show = _SHOW.get(key.kind)
    if show is not None:
        return show(value)
    return list(value) if isinstance(value, tuple) else value


def _group_dict(group: GroupConfig) -> dict[str, Any]:
    return {"name": group.name, **section_dict("groups.*", group)}


def _dispatcher_dict(disp: DispatcherConfig) -> dict[str, Any]:
    if disp.kind == "command":
        # Not from the declarations: the model keeps the file's "shell" command line as
        # template (with shell=True) and also the template of the string form.
        data: dict[str, Any] = {"kind": disp.kind, "argv": list(disp.argv)}
        data["template"] = disp.template
        if disp.shell:
            data["shell"] = True
        return data
    return section_dict("dispatcher", disp, disp.kind)


def summary(cfg: RunnerConfig) -> str:
    """A readable multi-line summary of ``cfg``; no secrets."""
    return "\n".join(_summary_lines(cfg))


def _summary_lines(cfg: RunnerConfig) -> list[str]:
    data = config_dict(cfg)
    enabled = len(cfg.enabled_groups)
    lines = [f"{cfg.source}: OK", f"groups: {enabled} enabled of {len(cfg.groups)}"]
    for g in cfg.groups:
        lines += _group_lines(g)
    lines.append("limits:")
    for key, values in data["limits"].items():
        shown = ", ".join(f"{t}={v}" for t, v in values.items())
        lines.append(f"  {key}: {shown}")
    lines += _queue_lines(cfg, data)
    lines += [f"statsd: {data['statsd'] or 'off'}", f"dispatcher: {cfg.dispatcher.kind}"]
    for key, value in data["dispatcher"].items():
        if key != "kind" and value not in (None, []):
            shown = json.dumps(value) if isinstance(value, list) else str(value)
            lines.append(f"  {key}: {shown}")
    timing = ", ".join(f"{k}={v}" for k, v in data["mwjobs"]["timing"].items())
    lines.append(f"timing: {timing}")
    lines += [f"warning: {w}" for w in cfg.warnings]
    return lines


def _group_lines(g: GroupConfig) -> list[str]:
    state = f"{g.runners} runner(s)" if g.enabled else "disabled (runners: 0)"
    lines = [f"  {g.name}: {state}"]
    for label, types in (("include", g.include), ("exclude", g.exclude)):
        if types:
            lines.append(f"    {label}: {', '.join(types)}")
    if g.low_priority:
        lines.append(f"    low-priority: {', '.join(g.low_priority)}")
    return lines


def _queue_lines(cfg: RunnerConfig, data: dict[str, Any]) -> list[str]:
    """The queues section, then the redis section it came from, if it did."""
    origin = "redis" if cfg.redis is not None else "mwjobs.queues"
    lines = [f"queues (from {origin}):"]
    for key, places in data["queues"].items():
        shown = ", ".join(_place(p) for p in places) or "none"
        lines.append(f"  {key}: {shown}")
    redis = data["redis"]
    if redis is not None:
        lines += [
            "redis:",
            f"  aggregators: {', '.join(redis['aggregators'])}",
            f"  queues: {', '.join(redis['queues'])}",
            f"  password: {'set (hidden)' if redis['password'] else 'none'}",
        ]
    return lines


def _place(place: dict[str, Any]) -> str:
    return f"{place['url']} (password {MASK})" if place["password"] else str(place["url"])
