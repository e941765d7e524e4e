"""Checking the ``dispatcher`` value: the original command string (split into argv, shell
syntax refused), and the object forms ``command``, ``http`` and ``python``."""

from __future__ import annotations

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
from mwjobs.config.values import Reader, key_path, shown, suggest

__all__ = ["DispatcherReader"]

_DISPATCHER_KEYS: dict[str, tuple[str, ...]] = {
    "command": ("kind", "argv", "shell"),
    "http": ("kind", "url", "timeout", "mode", "secret", "secret_env", "maxjobs"),
    "python": (
        "kind", "modules", "paths", "workers", "batch", "max_batches", "max_memory", "throttling"
    ),
}
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
        if not isinstance(kind, str) or kind not in _DISPATCHER_KEYS:
            got = "is missing" if kind is None else f"is not a dispatcher kind (got {shown(kind)})"
            fix = 'write "command", "http" or "python"'
            if isinstance(kind, str):
                fix = suggest(kind, _DISPATCHER_KEYS, "kind")
            raise self.r.fail("dispatcher.kind", got, fix)
        spec = self.r.obj(raw, "dispatcher", _DISPATCHER_KEYS[kind])
        if kind == "command":
            return self.command_argv(spec)
        if kind == "http":
            return self.http(spec)
        return self.python(spec)

    def command_template(self, template: str) -> CommandDispatcherConfig:
        """The original string form, split into argv as /bin/sh would have split it."""
        self.r.string(template, "dispatcher", "php runJobs.php --wiki=%(db)x")
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
        argv = self.r.strings(spec.get("argv"), "dispatcher.argv", "php")
        if not argv:
            fix = 'list the program and its arguments, e.g. ["php", "runJobs.php"]'
            raise self.r.fail("dispatcher.argv", "is missing or empty", fix)
        for i, arg in enumerate(argv):
            self.placeholders(arg, key_path("dispatcher.argv", i), url=False)
        return CommandDispatcherConfig(argv)

    def command_shell(self, spec: dict[str, Any]) -> CommandDispatcherConfig:
        """The explicit opt-in to ``/bin/sh -c``: PHP's behaviour, for templates that need
        pipes or redirections. Values are quoted as PHP's ``escapeshellarg``."""
        if spec.get("argv") is not None:
            fix = 'keep "argv" (no shell) or "shell" (a /bin/sh command line), not both'
            raise self.r.fail("dispatcher.shell", "is given together with argv", fix)
        example = "php runJobs.php --wiki=%(db)x 2>&1"
        template = self.r.string(spec["shell"], "dispatcher.shell", example)
        self.placeholders(template, "dispatcher.shell", url=False)
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
        url = self.r.string(spec.get("url"), "dispatcher.url", _EXAMPLE_URL).strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            got = f"is not an http(s) URL (got {shown(url)})"
            raise self.r.fail("dispatcher.url", got, f'write e.g. "{_EXAMPLE_URL}"')
        self.placeholders(url, "dispatcher.url", url=True)
        raw = spec.get("timeout")
        timeout = None
        if raw is not None:
            timeout = self.r.number(raw, "dispatcher.timeout", positive=True, example=300)
        mode = spec.get("mode", "rpc")
        if mode not in ("rpc", "special"):
            got = f"is not an HTTP mode (got {shown(mode)})"
            fix = 'write "rpc" (rpc/RunJobs.php) or "special" (signed Special:RunJobs)'
            raise self.r.fail("dispatcher.mode", got, fix)
        if mode == "rpc":
            for key in ("secret", "secret_env", "maxjobs"):
                if spec.get(key) is not None:
                    at, fix = key_path("dispatcher", key), 'remove it, or add "mode": "special"'
                    raise self.r.fail(at, "is only used in mode special", fix)
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
            raise self.r.fail("dispatcher", "in mode special needs one of secret, secret_env", fix)
        if secret is not None:
            secret = self.r.string(secret, "dispatcher.secret", "$wgSecretKey value")
        if env is not None:
            env = self.r.string(env, "dispatcher.secret_env", "MW_SECRET_KEY")
            if not _ENV_NAME.match(env):
                got = f"is not an environment variable name (got {shown(env)})"
                raise self.r.fail("dispatcher.secret_env", got, 'write e.g. "MW_SECRET_KEY"')
        raw = spec.get("maxjobs")
        maxjobs = 5000
        if raw is not None:
            maxjobs = self.r.integer(raw, "dispatcher.maxjobs", minimum=1, example=5000)
        return HttpDispatcherConfig(url, timeout, "special", secret, env, maxjobs)

    def python(self, spec: dict[str, Any]) -> PythonDispatcherConfig:
        modules = self.r.strings(spec.get("modules"), "dispatcher.modules", "myjobs.tasks")
        for i, module in enumerate(modules):
            if not _MODULE.match(module):
                got = f"is not a module name (got {shown(module)})"
                fix = 'write a dotted import name, e.g. "myjobs.tasks"'
                raise self.r.fail(key_path("dispatcher.modules", i), got, fix)
        paths = self.r.strings(spec.get("paths"), "dispatcher.paths", "/srv/jobs")
        if self.base_dir is not None:  # relative to the config file, not the service's cwd
            paths = tuple(str(self.base_dir / p) for p in paths)
        raw = spec.get("workers")
        workers = None
        if raw is not None:
            workers = self.r.integer(raw, "dispatcher.workers", minimum=1, example=4)
        defaults = PythonDispatcherConfig()
        raw = spec.get("batch")
        batch = defaults.batch
        if raw is not None:
            batch = self.r.integer(raw, "dispatcher.batch", minimum=1, example=10)
        raw = spec.get("max_batches")
        max_batches = defaults.max_batches
        if raw is not None:
            max_batches = self.r.integer(raw, "dispatcher.max_batches", minimum=1, example=1000)
        raw = spec.get("max_memory")
        max_memory = None if raw is None else self.r.memory(raw, "dispatcher.max_memory")
        throttling = self.throttling(spec.get("throttling"))
        return PythonDispatcherConfig(
            modules, paths, workers, batch, max_batches, max_memory, throttling
        )

    def throttling(self, raw: Any) -> tuple[tuple[str, float], ...]:
        """``{"htmlCacheUpdate": 15}``: job type -> work items per second (0: no limit)."""
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            got = f"must be an object of job type -> rate (got {shown(raw)})"
            raise self.r.fail("dispatcher.throttling", got, 'write e.g. {"htmlCacheUpdate": 15}')
        rates: list[tuple[str, float]] = []
        for job_type, rate in raw.items():
            path = key_path("dispatcher.throttling", job_type)
            rates.append((job_type, self.r.number(rate, path, positive=False, example=15)))
        return tuple(rates)
