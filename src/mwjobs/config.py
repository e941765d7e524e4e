"""Load ``jobrunner.json`` (the PHP jobrunner service's format) into typed, frozen objects.

This is the only module that reads raw configuration; everything else takes a
:class:`RunnerConfig`. The file format is the PHP service's (spec §6.2) plus our extensions,
which the PHP service ignores or never sees:

* ``//`` comments are removed only outside JSON strings, so ``http://`` URLs survive
  (the PHP regex cut them, spec §14 item 5). ``/* */`` comments are refused, as PHP does.
* ``"dispatcher"`` may be the original command string or an object
  ``{"kind": "command" | "http" | "python", ...}``.
* ``"mwjobs": {"timing": {...}}`` overrides what the PHP service hard-codes (:class:`TimingConfig`).

Every error is a :class:`~mwjobs.errors.ConfigError` whose message names the file, the key
path (``groups.basic.runners``), what was found and how to fix it. docs/configuration.md is
the reference for every key.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Generic, Literal, TypeAlias, TypeVar
from urllib.parse import urlsplit

from mwjobs.errors import ConfigError
from mwjobs.queues.redis.endpoint import RedisEndpoint, parse_redis_endpoint

__all__ = [
    "PLACEHOLDERS",
    "CommandDispatcherConfig",
    "DispatcherConfig",
    "GroupConfig",
    "HttpDispatcherConfig",
    "LimitMap",
    "LimitsConfig",
    "PythonDispatcherConfig",
    "RedisConfig",
    "RunnerConfig",
    "StatsdConfig",
    "TimingConfig",
    "load_config",
    "parse_config",
    "strip_comments",
]

V = TypeVar("V")

PLACEHOLDERS = ("db", "type", "maxtime", "maxmem")
"""Names a dispatcher template may use as ``%(name)x`` (raw value) or ``%(name)u`` (URL-encoded)."""

DEFAULT_STATSD_PORT = 8125
MASK = "***"


# --------------------------------------------------------------------------- the objects


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


def _claim_ttl_default() -> LimitMap[int]:
    return LimitMap({"*": 3600})


def _attempts_default() -> LimitMap[int]:
    return LimitMap({"*": 3})


def _real_default() -> LimitMap[int]:
    return LimitMap({"*": 3600})


def _memory_default() -> LimitMap[str]:
    return LimitMap({"*": "300M"})


@dataclass(frozen=True)
class LimitsConfig:
    """``limits`` (spec §6.2). claimTTL and attempts are read by the chron; real and memory
    by the runner. Values are merged over the defaults per key, as PHP's ``+`` does."""

    claim_ttl: LimitMap[int] = field(default_factory=_claim_ttl_default)
    attempts: LimitMap[int] = field(default_factory=_attempts_default)
    real: LimitMap[int] = field(default_factory=_real_default)
    memory: LimitMap[str] = field(default_factory=_memory_default)

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
class RedisConfig:
    """``redis``: aggregator servers (ready-queue map, chron locks) and queue partitions."""

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
    mode: HttpMode = "rpc"
    secret: str | None = field(default=None, repr=False)
    secret_env: str | None = None
    maxjobs: int = 5000


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
    batch: int = 10
    max_batches: int = 1000
    max_memory: str | None = None
    # $wgJobBackoffThrottling: (job type, work items per second) pairs, shared by the
    # workers of the host through the backoff file.
    throttling: tuple[tuple[str, float], ...] = ()


DispatcherConfig: TypeAlias = (
    CommandDispatcherConfig | HttpDispatcherConfig | PythonDispatcherConfig
)


@dataclass(frozen=True)
class TimingConfig:
    """What the PHP service hard-codes; overridable under ``"mwjobs": {"timing": {...}}``.

    ``legacy_maxtime_inversion=True`` replicates spec §14 item 2 (high-priority runs get
    ``lp_max_time``); the default gives each priority its own documented maxtime.
    """

    hp_max_delay: int = 120  # longest stretch in low priority before high is looked at again
    lp_max_delay: int = 600  # longest stretch in high priority before low gets a turn
    hp_max_time: int = 30  # --maxtime of a high-priority run
    lp_max_time: int = 60  # --maxtime of a low-priority run
    aggregator_cache_ttl: float = 1.0  # seconds the runner reuses the ready-queue map
    chron_period: float = 1.0  # seconds between chron passes
    abandoned_retention: int = 7 * 86400  # seconds abandoned jobs are kept before pruning
    pool_lock_ttl: int = 300  # seconds after which a chron pool lock counts as stale
    chron_batch: int = 500  # jobs the chron script moves per queue per call
    kill_grace: float = 5.0  # seconds between SIGTERM and SIGKILL for a timed-out run
    legacy_maxtime_inversion: bool = False
    stop_grace: float = 5.0  # seconds the runner's children get after SIGTERM at shutdown
    wake_on_push: bool = True  # the runner reacts to mwjobs pushes at once (queues/redis/wake.py)

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
    redis: RedisConfig
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
        return {
            "source": self.source,
            "groups": [_group_dict(g) for g in self.groups],
            "limits": {
                "claimTTL": dict(self.limits.claim_ttl.by_type),
                "attempts": dict(self.limits.attempts.by_type),
                "real": dict(self.limits.real.by_type),
                "memory": dict(self.limits.memory.by_type),
            },
            "redis": {
                "aggregators": [e.display for e in self.redis.aggregators],
                "queues": [e.display for e in self.redis.queues],
                "password": None if self.redis.password is None else MASK,
            },
            "statsd": None if self.statsd is None else self.statsd.display,
            "dispatcher": _dispatcher_dict(self.dispatcher),
            "mwjobs": {"timing": dataclasses.asdict(self.timing)},
            "warnings": list(self.warnings),
        }

    def summary(self) -> str:
        """A readable multi-line summary (``mwjobs check-config``); no secrets."""
        return "\n".join(_summary_lines(self))


def _group_dict(group: GroupConfig) -> dict[str, Any]:
    return {
        "name": group.name,
        "runners": group.runners,
        "include": list(group.include),
        "exclude": list(group.exclude),
        "low-priority": list(group.low_priority),
    }


def _dispatcher_dict(disp: DispatcherConfig) -> dict[str, Any]:
    if isinstance(disp, CommandDispatcherConfig):
        data: dict[str, Any] = {"kind": disp.kind, "argv": list(disp.argv)}
        data["template"] = disp.template
        if disp.shell:
            data["shell"] = True
        return data
    if isinstance(disp, HttpDispatcherConfig):
        data = {"kind": disp.kind, "url": _mask_url(disp.url), "timeout": disp.timeout}
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


def _mask_url(url: str) -> str:
    """The URL with any ``user:password@`` password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    return parts._replace(netloc=netloc).geturl()


def _summary_lines(cfg: RunnerConfig) -> list[str]:
    data = cfg.to_dict()
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


# --------------------------------------------------------------------------- entry points


def load_config(path: str | os.PathLike[str]) -> RunnerConfig:
    """Read and validate a config file. Relative ``python`` dispatcher paths are resolved
    against the file's directory."""
    source = os.fspath(path)
    try:
        raw = Path(source).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"{source}: cannot read the configuration file ({reason}); "
            "check the path given to --config-file and that the service user may read it"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(raw[: exc.start].decode("utf-8", "replace"), exc.start)
        raise ConfigError(
            f"{source}: line {line}, column {col}: the file is not UTF-8 text "
            f"(byte 0x{raw[exc.start]:02x}); save it as UTF-8"
        ) from None
    return parse_config(text, source, base_dir=Path(source).resolve().parent)


def parse_config(
    text: str, source: str = "<string>", *, base_dir: Path | None = None
) -> RunnerConfig:
    """Validate config text. ``source`` names it in error messages; ``base_dir`` (if given)
    anchors relative ``python`` dispatcher paths."""
    doc = _decode(strip_comments(text.removeprefix("\ufeff"), source), source)
    return _Builder(source, base_dir).build(doc)


# --------------------------------------------------------------------------- lexical layer

# One pass over the text: strings are skipped whole (a `//` inside one is data), comments
# are blanked, block comments and NaN/Infinity are refused with their position.
_LEXEME = re.compile(
    r'"(?:\\.|[^"\\\n])*"?'  # a string (maybe unterminated; json reports that)
    r"|//[^\n]*"  # a line comment
    r"|/\*"  # a block comment start
    r"|(?<![\w.])-?(?:NaN|Infinity)\b"  # constants Python's json takes and PHP refuses
)


def strip_comments(text: str, source: str = "<string>") -> str:
    """Blank out ``//`` comments outside JSON strings. Offsets, lines and columns are kept
    (comments become spaces), so JSON errors point at the right place in the file."""
    pieces: list[str] = []
    last = 0
    for match in _LEXEME.finditer(text):
        lexeme = match.group()
        if lexeme.startswith('"'):
            continue
        if not lexeme.startswith("//"):
            raise _lexical_error(text, match.start(), lexeme, source)
        pieces += [text[last : match.start()], " " * len(lexeme)]
        last = match.end()
    pieces.append(text[last:])
    return "".join(pieces)


def _lexical_error(text: str, pos: int, lexeme: str, source: str) -> ConfigError:
    line, col = _line_col(text, pos)
    where = f"{source}: line {line}, column {col}:"
    if lexeme == "/*":
        return ConfigError(
            f"{where} block comments /* */ are not supported (the PHP service refuses them "
            "too); use // line comments"
        )
    return ConfigError(
        f"{where} {lexeme} is not valid JSON (the PHP service refuses it); write a number"
    )


def _line_col(text: str, pos: int) -> tuple[int, int]:
    """1-based line and column of ``pos``."""
    line = text.count("\n", 0, pos) + 1
    return line, pos - text.rfind("\n", 0, pos)


class _JsonObject(dict[str, Any]):
    """A decoded JSON object that remembers keys given more than once (json keeps the last
    silently; a duplicated group name would drop a group)."""

    duplicates: tuple[str, ...] = ()

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, Any]]) -> _JsonObject:
        obj = cls(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            dups: list[str] = []
            for key, _ in pairs:
                if key in seen:
                    dups.append(key)
                seen.add(key)
            obj.duplicates = tuple(dups)
        return obj


def _decode(text: str, source: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_JsonObject.from_pairs)
    except json.JSONDecodeError as exc:
        what = re.sub(r"( starting)? at$", "", exc.msg)  # json's "... at" names no place
        raise ConfigError(
            f"{source}: line {exc.lineno}, column {exc.colno}: invalid JSON ({what}); "
            f"{_json_hint(exc)}"
        ) from None


_JSON_HINTS = (
    ("Expecting ','", "add a comma between the two items (or close the list/object)"),
    ("Unterminated string", 'close the string with " on the same line'),
    ("Invalid control character", 'close the string with " on the same line'),
    ("Invalid \\escape", "write a backslash in a string as \\\\"),
    ("Extra data", "remove what follows the top-level object, or move it inside"),
)


def _json_hint(exc: json.JSONDecodeError) -> str:
    """A likely fix for a JSON syntax error, judged from the text around it."""
    if not exc.doc.strip():
        return "the file is empty; write a JSON object { ... }"
    if exc.msg.startswith(("Expecting property name", "Expecting value")):
        return _missing_item_hint(exc)
    hints = (hint for prefix, hint in _JSON_HINTS if exc.msg.startswith(prefix))
    return next(hints, "fix the JSON syntax at that place")


def _missing_item_hint(exc: json.JSONDecodeError) -> str:
    here = exc.doc[exc.pos : exc.pos + 1]
    if exc.doc[: exc.pos].rstrip().endswith(","):
        return "remove the trailing comma before it (JSON does not allow one)"
    if here == "'":
        return "use double quotes for strings and keys"
    if not here:
        return "the file ends too early; close every { [ and string"
    if exc.msg.startswith("Expecting property name"):
        return 'put the key in double quotes, e.g. "groups"'
    return "write a value: a string in double quotes, a number, true, false, null, [ ] or { }"


# --------------------------------------------------------------------------- validation helpers

_TOP_KEYS = ("groups", "limits", "redis", "statsd", "dispatcher", "wrapper", "mwjobs")
_GROUP_KEYS = ("runners", "include", "exclude", "low-priority")
_LIMIT_KEYS = ("claimTTL", "attempts", "real", "memory")
_REDIS_KEYS = ("aggregators", "queues", "password")
_DISPATCHER_KEYS: dict[str, tuple[str, ...]] = {
    "command": ("kind", "argv", "shell"),
    "http": ("kind", "url", "timeout", "mode", "secret", "secret_env", "maxjobs"),
    "python": (
        "kind", "modules", "paths", "workers", "batch", "max_batches", "max_memory", "throttling"
    ),
}
_TIMING_KEYS = tuple(f.name for f in dataclasses.fields(TimingConfig))
_TIMING_MAY_BE_ZERO = frozenset({"aggregator_cache_ttl", "kill_grace", "stop_grace"})
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_INT_TEXT = re.compile(r"\s*[-+]?\d+\s*\Z")
_NUM_TEXT = re.compile(r"\s*[-+]?\d+(?:\.\d*)?\s*\Z")
_MEMORY = re.compile(r"(?:-1|\d+[KMGkmg]?)\Z")
_MODULE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\Z")
_STATSD = re.compile(
    r"\[(?P<v6>[^\]]+)\](?::(?P<v6port>\d+))?"  # [v6addr]:port
    r"|(?P<host>[^:\[\]\s]+)(?::(?P<port>\d+))?"  # host:port
)
_PLACEHOLDER = re.compile(r"%\(([^()\s]*)\)([A-Za-z]?)")
# Shell syntax that the PHP service's /bin/sh interpreted; we run the argv directly.
_SHELL = re.compile(
    r"'[^']*'?"  # single quotes: all literal
    r'|"(?P<dq>(?:\\.|[^"\\])*)"?'  # double quotes: $ and ` still expand in a shell
    r"|\\."  # an escaped character
    r"|%\([^()\s]*\)[A-Za-z]?"  # a placeholder: its parentheses are not a subshell
    r"|(?P<op>[|&;<>()`$])"  # pipes, lists, redirections, subshells, expansions
    r"|(?:^|(?<=\s))(?P<hash>\#)",  # a comment
    re.DOTALL,
)
_DQ_EXPANSION = re.compile(r"(?<!\\)[$`]")

_EXAMPLE_URL = (
    "http://mw.example.org/rpc/RunJobs.php"
    "?wiki=%(db)u&type=%(type)u&maxtime=%(maxtime)u&maxmem=%(maxmem)u"
)
_DISPATCHER_FIX = (
    'add "dispatcher": "php /srv/mediawiki/maintenance/runJobs.php --wiki=%(db)x '
    '--type=%(type)x --maxtime=%(maxtime)x --memory-limit=%(maxmem)x --result=json"'
)
_SHELL_FIX = (
    "remove it (mwjobs reads the output itself); put pipes, redirections or variables "
    "in a wrapper script and run that script (or opt in to a shell explicitly with "
    '{"kind": "command", "shell": "..."})'
)


def _key(path: str, key: str | int) -> str:
    """``groups.basic.runners``, ``limits.real["*"]``, ``redis.queues[0]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def _shown(value: Any) -> str:
    """A short JSON rendering of a found value for messages."""
    text = json.dumps(value, ensure_ascii=False)
    if len(text) > 60:
        text = text[:57] + "..."
    if isinstance(value, dict):
        return f"an object {text}"
    return f"a list {text}" if isinstance(value, list) else text


def _normal(name: str) -> str:
    return re.sub(r"[-_\s]", "", name.lower())


def _suggest(name: str, known: Iterable[str], what: str = "key") -> str:
    """``did you mean "dispatcher"?``, else the list of known names."""
    options = list(known)
    close = [k for k in options if _normal(k) == _normal(name)]
    close = close or difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        return f'did you mean "{close[0]}"?'
    listed = ", ".join(f'"{k}"' for k in options)
    return f"remove it or use a known {what}: {listed}"


def _int_fix(value: Any, example: int) -> str:
    if isinstance(value, str) and _INT_TEXT.match(value):
        return f"write {int(value)} without quotes"
    if isinstance(value, float) and value.is_integer():
        return f"write {int(value)} without a decimal point"
    return f"write a whole number, e.g. {example}"


def _shell_syntax(template: str) -> str | None:
    """The first piece of shell-only syntax in a command template, if any."""
    for match in _SHELL.finditer(template):
        if bad := match.group("op") or match.group("hash"):
            return bad
        if match.group("dq") and (found := _DQ_EXPANSION.search(match.group("dq"))):
            return found.group()
    return None


class _Reader:
    """Typed readers: each checks one value at a key path or raises a ConfigError that
    names the file, the path, what was found and the fix."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.warnings: list[str] = []

    def fail(self, path: str, problem: str, fix: str) -> ConfigError:
        return ConfigError(f"{self.source}: {path} {problem}; {fix}")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path} {message}")

    def obj(self, value: Any, path: str, known: tuple[str, ...] = ()) -> dict[str, Any]:
        """An object; with ``known``, unknown keys are errors with a suggestion."""
        if not isinstance(value, dict):
            got = f"must be an object {{ ... }} (got {_shown(value)})"
            raise self.fail(path, got, "write it as { ... }")
        for dup in getattr(value, "duplicates", ()):
            fix = "keep one (JSON readers silently use only the last)"
            raise self.fail(_key(path, dup), "is given more than once", fix)
        unknown = [key for key in value if known and key not in known]
        if unknown:
            fix = _suggest(unknown[0], known)
            raise self.fail(_key(path, unknown[0]), "is not a known key", fix)
        return value

    def integer(self, value: Any, path: str, *, minimum: int, example: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            got = f"must be an integer (got {_shown(value)})"
            raise self.fail(path, got, _int_fix(value, example))
        if value < minimum:
            fix = "use 0 or a positive number" if minimum == 0 else f"use {minimum} or more"
            raise self.fail(path, f"must be at least {minimum} (got {value})", fix)
        return value

    def number(self, value: Any, path: str, *, positive: bool, example: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            fix = f"write a number of seconds, e.g. {example}"
            if isinstance(value, str) and _NUM_TEXT.match(value):
                fix = f"write {value.strip()} without quotes"
            raise self.fail(path, f"must be a number (got {_shown(value)})", fix)
        if value < 0 or (positive and value == 0):
            bound = "greater than 0" if positive else "0 or more"
            raise self.fail(path, f"must be {bound} (got {value})", f"use e.g. {example}")
        return float(value)

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            got = f"must be true or false (got {_shown(value)})"
            raise self.fail(path, got, "write true or false without quotes")
        return value

    def string(self, value: Any, path: str, example: str) -> str:
        if not isinstance(value, str):
            got = f"must be a string (got {_shown(value)})"
            raise self.fail(path, got, f'write it in double quotes, e.g. "{example}"')
        if not value.strip():
            raise self.fail(path, "is empty", f'write a value, e.g. "{example}"')
        return value

    def strings(self, value: Any, path: str, example: str) -> tuple[str, ...]:
        """A list of non-empty strings; ``null`` (PHP: unset) is an empty list."""
        if value is None:
            return ()
        if not isinstance(value, list):
            fix = f'write a list of strings, e.g. ["{example}"]'
            if isinstance(value, str):
                fix = f"write a list: {json.dumps([value])}"
            raise self.fail(path, f"must be a list (got {_shown(value)})", fix)
        return tuple(self.string(item, _key(path, i), example) for i, item in enumerate(value))


class _Builder(_Reader):
    """Walks the decoded document once, section by section."""

    def __init__(self, source: str, base_dir: Path | None) -> None:
        super().__init__(source)
        self.base_dir = base_dir

    def build(self, doc: Any) -> RunnerConfig:
        if not isinstance(doc, dict):
            raise ConfigError(
                f"{self.source}: the top level must be a JSON object (got {_shown(doc)}); "
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
            dispatcher=self.dispatcher(top.get("dispatcher")),
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
        return tuple(self.group(name, spec, _key("groups", name)) for name, spec in groups.items())

    def group(self, name: str, raw: Any, path: str) -> GroupConfig:
        spec = self.obj(raw, path, _GROUP_KEYS)
        if not name.strip():
            raise self.fail(path, "has an empty name", 'give the group a name, e.g. "basic"')
        if "runners" not in spec:
            raise self.fail(path, 'has no "runners"', 'add "runners": 5 (0 disables the group)')
        group = GroupConfig(
            name=name,
            runners=self.integer(spec["runners"], _key(path, "runners"), minimum=0, example=5),
            include=self.job_types(spec.get("include"), _key(path, "include"), star=True),
            exclude=self.job_types(spec.get("exclude"), _key(path, "exclude")),
            low_priority=self.job_types(spec.get("low-priority"), _key(path, "low-priority")),
        )
        if group.enabled and not group.include and not group.low_priority:
            self.warn(path, 'includes no job types; add "include": ["*"] or a list of types')
        return group

    def job_types(self, raw: Any, path: str, *, star: bool = False) -> tuple[str, ...]:
        types = self.strings(raw, path, "refreshLinks")
        if "*" in types and not star:
            at = _key(path, types.index("*"))
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
            at = _key(path, job_type)
            if not job_type.strip():
                raise self.fail(at, "has an empty job type", 'use a job type name or "*"')
            values[job_type] = read(value, at)
        return LimitMap(values)

    def seconds(self, value: Any, path: str) -> int:
        return self.integer(value, path, minimum=1, example=3600)

    def attempts(self, value: Any, path: str) -> int:
        return self.integer(value, path, minimum=1, example=3)

    def memory(self, value: Any, path: str) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            fix = f'write "{value}" in quotes, or with a unit such as "300M"'
            raise self.fail(path, f"must be a PHP memory string (got {value})", fix)
        text = self.string(value, path, "300M").strip()
        if not _MEMORY.match(text):
            fix = 'write bytes or a number with K, M or G, e.g. "300M" ("-1" = no limit)'
            raise self.fail(path, f"is not a PHP memory size (got {_shown(value)})", fix)
        return text

    def real(self, raw: Any, timing: TimingConfig) -> LimitMap[int]:
        """PHP raises every real limit to 2 x the longest maxtime so a run can finish."""
        real = self.limit_map(raw, "limits.real", 3600, self.seconds)
        floor = timing.min_real
        for job_type, value in real.by_type.items():
            if value < floor:
                at = _key("limits.real", job_type)
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
                raise ConfigError(f"{self.source}: {_key(path, i)}: {exc}") from None
            if endpoint in endpoints:
                raise self.fail(_key(path, i), f"repeats {endpoint.display}", "list each once")
            endpoints.append(endpoint)
        return tuple(endpoints)

    def statsd(self, raw: Any) -> StatsdConfig | None:
        if raw is None:
            return None
        text = self.string(raw, "statsd", "statsd.example.org:8125").strip()
        match = _STATSD.fullmatch(text)
        if match is None:
            fix = 'write e.g. "statsd.example.org:8125" (IPv6: "[::1]:8125")'
            raise self.fail("statsd", f"is not host[:port] (got {_shown(raw)})", fix)
        port_text = match.group("v6port") or match.group("port")
        port = int(port_text) if port_text else DEFAULT_STATSD_PORT
        if not 0 < port < 65536:
            raise self.fail("statsd", f"has port {port}", "use a port from 1 to 65535")
        return StatsdConfig(match.group("v6") or match.group("host"), port)

    # -- dispatcher

    def dispatcher(self, raw: Any) -> DispatcherConfig:
        if raw is None:
            raise self.fail("dispatcher", "is missing", _DISPATCHER_FIX)
        if isinstance(raw, str):
            return self.command_template(raw)
        if not isinstance(raw, dict):
            got = f"must be a command string or an object (got {_shown(raw)})"
            raise self.fail("dispatcher", got, _DISPATCHER_FIX)
        kind = raw.get("kind")
        if not isinstance(kind, str) or kind not in _DISPATCHER_KEYS:
            got = "is missing" if kind is None else f"is not a dispatcher kind (got {_shown(kind)})"
            fix = 'write "command", "http" or "python"'
            if isinstance(kind, str):
                fix = _suggest(kind, _DISPATCHER_KEYS, "kind")
            raise self.fail("dispatcher.kind", got, fix)
        spec = self.obj(raw, "dispatcher", _DISPATCHER_KEYS[kind])
        if kind == "command":
            return self.command_argv(spec)
        if kind == "http":
            return self.http(spec)
        return self.python(spec)

    def command_template(self, template: str) -> CommandDispatcherConfig:
        """The original string form, split into argv as /bin/sh would have split it."""
        self.string(template, "dispatcher", "php runJobs.php --wiki=%(db)x")
        self.placeholders(template, "dispatcher", url=False)
        if bad := _shell_syntax(template):
            problem = f'uses the shell syntax "{bad}" but mwjobs runs it without a shell'
            raise self.fail("dispatcher", problem, _SHELL_FIX)
        try:
            argv = tuple(shlex.split(template))
        except ValueError as exc:
            problem = f"cannot be split into arguments ({exc})"
            fix = "close every quote, and do not end the command with a lone backslash"
            raise self.fail("dispatcher", problem, fix) from None
        if not argv[0]:
            raise self.fail("dispatcher", "has an empty program name", "name the program first")
        return CommandDispatcherConfig(argv, template=template)

    def command_argv(self, spec: dict[str, Any]) -> CommandDispatcherConfig:
        if "shell" in spec:
            return self.command_shell(spec)
        argv = self.strings(spec.get("argv"), "dispatcher.argv", "php")
        if not argv:
            fix = 'list the program and its arguments, e.g. ["php", "runJobs.php"]'
            raise self.fail("dispatcher.argv", "is missing or empty", fix)
        for i, arg in enumerate(argv):
            self.placeholders(arg, _key("dispatcher.argv", i), url=False)
        return CommandDispatcherConfig(argv)

    def command_shell(self, spec: dict[str, Any]) -> CommandDispatcherConfig:
        """The explicit opt-in to ``/bin/sh -c``: PHP's behaviour, for templates that need
        pipes or redirections. Values are quoted as PHP's ``escapeshellarg``."""
        if spec.get("argv") is not None:
            fix = 'keep "argv" (no shell) or "shell" (a /bin/sh command line), not both'
            raise self.fail("dispatcher.shell", "is given together with argv", fix)
        example = "php runJobs.php --wiki=%(db)x 2>&1"
        template = self.string(spec["shell"], "dispatcher.shell", example)
        self.placeholders(template, "dispatcher.shell", url=False)
        return CommandDispatcherConfig((), template=template, shell=True)

    def placeholders(self, text: str, path: str, *, url: bool) -> None:
        for match in _PLACEHOLDER.finditer(text):
            name, flag = match.groups()
            found = match.group()
            if name not in PLACEHOLDERS:
                fix = _suggest(f"%({name})", [f"%({p})" for p in PLACEHOLDERS], "placeholder")
                raise self.fail(path, f"uses the unknown placeholder {found}", fix)
            if flag not in ("u", "x"):
                fix = f"write %({name})x (the value) or %({name})u (URL-encoded)"
                raise self.fail(path, f"has {found} without a u or x ending", fix)
            if url and flag == "x":
                fix = f"write %({name})u so the value is URL-encoded"
                raise self.fail(path, f"uses {found} in a URL", fix)

    def http(self, spec: dict[str, Any]) -> HttpDispatcherConfig:
        url = self.string(spec.get("url"), "dispatcher.url", _EXAMPLE_URL).strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            got = f"is not an http(s) URL (got {_shown(url)})"
            raise self.fail("dispatcher.url", got, f'write e.g. "{_EXAMPLE_URL}"')
        self.placeholders(url, "dispatcher.url", url=True)
        raw = spec.get("timeout")
        timeout = None
        if raw is not None:
            timeout = self.number(raw, "dispatcher.timeout", positive=True, example=300)
        mode = spec.get("mode", "rpc")
        if mode not in ("rpc", "special"):
            got = f"is not an HTTP mode (got {_shown(mode)})"
            fix = 'write "rpc" (rpc/RunJobs.php) or "special" (signed Special:RunJobs)'
            raise self.fail("dispatcher.mode", got, fix)
        if mode == "rpc":
            for key in ("secret", "secret_env", "maxjobs"):
                if spec.get(key) is not None:
                    fix = 'remove it, or add "mode": "special"'
                    raise self.fail(_key("dispatcher", key), "is only used in mode special", fix)
            return HttpDispatcherConfig(url, timeout)
        return self.http_special(spec, url, timeout)

    def http_special(
        self, spec: dict[str, Any], url: str, timeout: float | None
    ) -> HttpDispatcherConfig:
        """Signed ``Special:RunJobs``: the secret is given inline or, better, by the name of
        an environment variable (read when the runner starts, never logged)."""
        secret, env = spec.get("secret"), spec.get("secret_env")
        if (secret is None) == (env is None):
            fix = 'give "secret_env": "MW_SECRET_KEY" (an environment variable) or "secret"'
            raise self.fail("dispatcher", "in mode special needs one of secret, secret_env", fix)
        if secret is not None:
            secret = self.string(secret, "dispatcher.secret", "$wgSecretKey value")
        if env is not None:
            env = self.string(env, "dispatcher.secret_env", "MW_SECRET_KEY")
            if not _ENV_NAME.match(env):
                got = f"is not an environment variable name (got {_shown(env)})"
                raise self.fail("dispatcher.secret_env", got, 'write e.g. "MW_SECRET_KEY"')
        raw = spec.get("maxjobs")
        maxjobs = 5000
        if raw is not None:
            maxjobs = self.integer(raw, "dispatcher.maxjobs", minimum=1, example=5000)
        return HttpDispatcherConfig(url, timeout, "special", secret, env, maxjobs)

    def python(self, spec: dict[str, Any]) -> PythonDispatcherConfig:
        modules = self.strings(spec.get("modules"), "dispatcher.modules", "myjobs.tasks")
        for i, module in enumerate(modules):
            if not _MODULE.match(module):
                got = f"is not a module name (got {_shown(module)})"
                fix = 'write a dotted import name, e.g. "myjobs.tasks"'
                raise self.fail(_key("dispatcher.modules", i), got, fix)
        paths = self.strings(spec.get("paths"), "dispatcher.paths", "/srv/jobs")
        if self.base_dir is not None:  # relative to the config file, not the service's cwd
            paths = tuple(str(self.base_dir / p) for p in paths)
        raw = spec.get("workers")
        workers = None
        if raw is not None:
            workers = self.integer(raw, "dispatcher.workers", minimum=1, example=4)
        defaults = PythonDispatcherConfig()
        raw = spec.get("batch")
        batch = defaults.batch
        if raw is not None:
            batch = self.integer(raw, "dispatcher.batch", minimum=1, example=10)
        raw = spec.get("max_batches")
        max_batches = defaults.max_batches
        if raw is not None:
            max_batches = self.integer(raw, "dispatcher.max_batches", minimum=1, example=1000)
        raw = spec.get("max_memory")
        max_memory = None if raw is None else self.memory(raw, "dispatcher.max_memory")
        throttling = self.throttling(spec.get("throttling"))
        return PythonDispatcherConfig(
            modules, paths, workers, batch, max_batches, max_memory, throttling
        )

    def throttling(self, raw: Any) -> tuple[tuple[str, float], ...]:
        """``{"htmlCacheUpdate": 15}``: job type -> work items per second (0: no limit)."""
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            got = f"must be an object of job type -> rate (got {_shown(raw)})"
            raise self.fail("dispatcher.throttling", got, 'write e.g. {"htmlCacheUpdate": 15}')
        rates: list[tuple[str, float]] = []
        for job_type, rate in raw.items():
            path = _key("dispatcher.throttling", job_type)
            rates.append((job_type, self.number(rate, path, positive=False, example=15)))
        return tuple(rates)

    # -- extensions

    def timing(self, raw: Any) -> TimingConfig:
        spec = self.obj({} if raw is None else raw, "mwjobs.timing", _TIMING_KEYS)
        defaults = TimingConfig()
        values: dict[str, Any] = {}
        for name, value in spec.items():
            path = _key("mwjobs.timing", name)
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
