"""Checking the ``dispatcher`` value: the original command string (split into argv, shell
syntax refused), and the object forms ``command``, ``http`` and ``python``."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mwjobs.config.model import (
    PLACEHOLDERS,
    CommandDispatcherConfig,
    DispatcherConfig,
    HttpDispatcherConfig,
    PythonDispatcherConfig,
)
from mwjobs.config.schema import children, names, variants
from mwjobs.config.schema import key as declared
from mwjobs.config.values import Reader, is_plain, key_path, shown, suggest

__all__ = ["DispatcherReader"]

_KINDS = variants("dispatcher")
_TEMPLATE = declared("dispatcher")
_ARGV = declared("dispatcher.argv", "command")
_SHELL_KEY = declared("dispatcher.shell", "command")
_URL = declared("dispatcher.url", "http")
_TIMEOUT = declared("dispatcher.timeout", "http")
_MODE = declared("dispatcher.mode", "http")
_SECRET = declared("dispatcher.secret", "http")
_SECRET_ENV = declared("dispatcher.secret_env", "http")
_MAXJOBS = declared("dispatcher.maxjobs", "http")
_MODULES = declared("dispatcher.modules", "python")
_PATHS = declared("dispatcher.paths", "python")
_THROTTLING = declared("dispatcher.throttling", "python")
# The python form's members of plain values (read as declared, when given).
_PYTHON_PLAIN = tuple(k for k in children("dispatcher", "python") if k.variant and is_plain(k))
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MODULE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\Z")
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

_DISPATCHER_FIX = (
    'add "dispatcher": "php /srv/mediawiki/maintenance/runJobs.php --wiki=%(db)x '
    '--type=%(type)x --maxtime=%(maxtime)x --memory-limit=%(maxmem)x --result=json"'
)
_SHELL_FIX = (
    "remove it (mwjobs reads the output itself); put pipes, redirections or variables "
    "in a wrapper script and run that script (or opt in to a shell explicitly with "
    '{"kind": "command", "shell": "..."})'
)


def _shell_syntax(template: str) -> str | None:
    """The first piece of shell-only syntax in a command template, if any."""
    for match in _SHELL.finditer(template):
        if bad := match.group("op") or match.group("hash"):
            return bad
        if match.group("dq") and (found := _DQ_EXPANSION.search(match.group("dq"))):
            return found.group()
    return None


class DispatcherReader:
    """Reads the ``dispatcher`` value with ``r``'s checks; relative python ``paths`` are
    anchored at ``base_dir`` (the config file's directory) when it is given."""

    def __init__(self, r: Reader, base_dir: Path | None) -> None:
        self.r = r
        self.base_dir = base_dir

    def read(self, raw: Any) -> DispatcherConfig:
        """The ``dispatcher`` value: the original command string or an object form."""
        if raw is None:
            raise self.r.fail("dispatcher", "is missing", _DISPATCHER_FIX)
        if isinstance(raw, str):
            return self.command_template(raw)
        if not isinstance(raw, dict):
            got = f"must be a command string or an object (got {shown(raw)})"
            raise self.r.fail("dispatcher", got, _DISPATCHER_FIX)
        kind = raw.get("kind")
        if not isinstance(kind, str) or kind not in _KINDS:
            got = "is missing" if kind is None else f"is not a dispatcher kind (got {shown(kind)})"
            fix = f"write {_either(_KINDS)}"
            if isinstance(kind, str):
                fix = suggest(kind, _KINDS, "kind")
            raise self.r.fail("dispatcher.kind", got, fix)
        spec = self.r.obj(raw, "dispatcher", names("dispatcher", kind))
        if kind == "command":
            return self.command_argv(spec)
        if kind == "http":
            return self.http(spec)
        return self.python(spec)

    def command_template(self, template: str) -> CommandDispatcherConfig:
        """The original string form, split into argv as /bin/sh would have split it."""
        self.r.string_of(_TEMPLATE, template, "dispatcher")
        self.placeholders(template, "dispatcher", url=False)
        if bad := _shell_syntax(template):
            problem = f'uses the shell syntax "{bad}" but mwjobs runs it without a shell'
            raise self.r.fail("dispatcher", problem, _SHELL_FIX)
        try:
            argv = tuple(shlex.split(template))
        except ValueError as exc:
            problem = f"cannot be split into arguments ({exc})"
            fix = "close every quote, and do not end the command with a lone backslash"
            raise self.r.fail("dispatcher", problem, fix) from None
        if not argv[0]:
            raise self.r.fail("dispatcher", "has an empty program name", "name the program first")
        return CommandDispatcherConfig(argv, template=template)

    def command_argv(self, spec: dict[str, Any]) -> CommandDispatcherConfig:
        if "shell" in spec:
            return self.command_shell(spec)
        argv = self.r.strings_of(_ARGV, spec.get("argv"), _ARGV.path)
        if not argv:
            fix = f"list the program and its arguments, e.g. {json.dumps(_ARGV.example)}"
            raise self.r.fail(_ARGV.path, "is missing or empty", fix)
        for i, arg in enumerate(argv):
            self.placeholders(arg, key_path(_ARGV.path, i), url=False)
        return CommandDispatcherConfig(argv)

    def command_shell(self, spec: dict[str, Any]) -> CommandDispatcherConfig:
        """The explicit opt-in to ``/bin/sh -c``: PHP's behaviour, for templates that need
        pipes or redirections. Values are quoted as PHP's ``escapeshellarg``."""
        if spec.get("argv") is not None:
            fix = 'keep "argv" (no shell) or "shell" (a /bin/sh command line), not both'
            raise self.r.fail(_SHELL_KEY.path, "is given together with argv", fix)
        template = self.r.string_of(_SHELL_KEY, spec["shell"], _SHELL_KEY.path)
        self.placeholders(template, _SHELL_KEY.path, url=False)
        return CommandDispatcherConfig((), template=template, shell=True)

    def placeholders(self, text: str, path: str, *, url: bool) -> None:
        for match in _PLACEHOLDER.finditer(text):
            name, flag = match.groups()
            found = match.group()
            if name not in PLACEHOLDERS:
                fix = suggest(f"%({name})", [f"%({p})" for p in PLACEHOLDERS], "placeholder")
                raise self.r.fail(path, f"uses the unknown placeholder {found}", fix)
            if flag not in ("u", "x"):
                fix = f"write %({name})x (the value) or %({name})u (URL-encoded)"
                raise self.r.fail(path, f"has {found} without a u or x ending", fix)
            if url and flag == "x":
                fix = f"write %({name})u so the value is URL-encoded"
                raise self.r.fail(path, f"uses {found} in a URL", fix)

    def http(self, spec: dict[str, Any]) -> HttpDispatcherConfig:
        url = self.r.string_of(_URL, spec.get("url"), _URL.path).strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            got = f"is not an http(s) URL (got {shown(url)})"
            raise self.r.fail(_URL.path, got, f'write e.g. "{_URL.example}"')
        self.placeholders(url, _URL.path, url=True)
        raw = spec.get("timeout")
        timeout = None if raw is None else self.r.number_of(_TIMEOUT, raw, _TIMEOUT.path)
        mode = spec.get("mode", _MODE.default)
        if mode not in _MODE.choice_names:
            got = f"is not an HTTP mode (got {shown(mode)})"
            fix = 'write "rpc" (rpc/RunJobs.php) or "special" (signed Special:RunJobs)'
            raise self.r.fail(_MODE.path, got, fix)
        self.refuse_misplaced(spec, "http")
        if mode == "rpc":
            return HttpDispatcherConfig(url, timeout)
        return self.http_special(spec, url, timeout)

    def refuse_misplaced(self, spec: dict[str, Any], kind: str) -> None:
        """A key declared ``only_with`` a sibling's value is an error without it."""
        for k in children("dispatcher", kind):
            if k.only_with is None or spec.get(k.name) is None:
                continue
            name, value = k.only_with
            if spec.get(name, declared(f"dispatcher.{name}", kind).default) != value:
                fix = f'remove it, or add "{name}": "{value}"'
                raise self.r.fail(k.path, f"is only used in {name} {value}", fix)

    def http_special(
        self, spec: dict[str, Any], url: str, timeout: float | None
    ) -> HttpDispatcherConfig:
        """Signed ``Special:RunJobs``: the secret is given inline or, better, by the name of
        an environment variable (read when the runner starts, never logged)."""
        secret, env = spec.get("secret"), spec.get("secret_env")
        if (secret is None) == (env is None):
            fix = 'give "secret_env": "MW_SECRET_KEY" (an environment variable) or "secret"'
            raise self.r.fail("dispatcher", "in mode special needs one of secret, secret_env", fix)
        if secret is not None:
            secret = self.r.string_of(_SECRET, secret, _SECRET.path)
        if env is not None:
            env = self.r.string_of(_SECRET_ENV, env, _SECRET_ENV.path)
            if not _ENV_NAME.match(env):
                got = f"is not an environment variable name (got {shown(env)})"
                fix = f'write e.g. "{_SECRET_ENV.example}"'
                raise self.r.fail(_SECRET_ENV.path, got, fix)
        raw = spec.get("maxjobs")
        maxjobs = HttpDispatcherConfig.maxjobs
        if raw is not None:
            maxjobs = self.r.int_of(_MAXJOBS, raw, _MAXJOBS.path)
        return HttpDispatcherConfig(url, timeout, "special", secret, env, maxjobs)

    def python(self, spec: dict[str, Any]) -> PythonDispatcherConfig:
        modules = self.r.strings_of(_MODULES, spec.get("modules"), _MODULES.path)
        for i, module in enumerate(modules):
            if not _MODULE.match(module):
                got = f"is not a module name (got {shown(module)})"
                fix = f'write a dotted import name, e.g. "{_MODULES.item_example}"'
                raise self.r.fail(key_path(_MODULES.path, i), got, fix)
        paths = self.r.strings_of(_PATHS, spec.get("paths"), _PATHS.path)
        if self.base_dir is not None:  # relative to the config file, not the service's cwd
            paths = tuple(str(self.base_dir / p) for p in paths)
        plain: dict[str, Any] = {}
        for k in _PYTHON_PLAIN:
            if (raw := spec.get(k.name)) is not None:
                plain[k.attr] = self.r.read(k, raw, k.path)
        throttling = self.throttling(spec.get("throttling"))
        return PythonDispatcherConfig(modules, paths, throttling=throttling, **plain)

    def throttling(self, raw: Any) -> tuple[tuple[str, float], ...]:
        """``{"htmlCacheUpdate": 15}``: job type -> work items per second (0: no limit)."""
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            got = f"must be an object of job type -> rate (got {shown(raw)})"
            fix = f"write e.g. {json.dumps(_THROTTLING.example)}"
            raise self.r.fail(_THROTTLING.path, got, fix)
        rates: list[tuple[str, float]] = []
        for job_type, rate in raw.items():
            path = key_path(_THROTTLING.path, job_type)
            rates.append((job_type, self.r.number_of(_THROTTLING, rate, path)))
        return tuple(rates)


def _either(options: tuple[str, ...]) -> str:
    """``"a", "b" or "c"``."""
    quoted = [f'"{o}"' for o in options]
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0]

