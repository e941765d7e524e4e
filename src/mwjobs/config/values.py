"""Checking one decoded JSON value: :class:`Reader`, and the pieces of its messages.

Every failed check is a :class:`~mwjobs.errors.ConfigError` worded
``<file>: <key path> <what was found>; <the fix>``. :meth:`Reader.read` checks a value as
its declaration (:class:`~mwjobs.config.schema.Key`) says.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from mwjobs.config.schema import Key, Kind, names
from mwjobs.config.schema import key as declared
from mwjobs.errors import ConfigError

__all__ = ["Reader", "is_plain", "key_path", "shown", "suggest"]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_INT_TEXT = re.compile(r"\s*[-+]?\d+\s*\Z")
_NUM_TEXT = re.compile(r"\s*[-+]?\d+(?:\.\d*)?\s*\Z")
_MEMORY = re.compile(r"(?:-1|\d+[KMGkmg]?)\Z")


def key_path(path: str, key: str | int) -> str:
    """``groups.basic.runners``, ``limits.real["*"]``, ``redis.queues[0]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def shown(value: Any) -> str:
    """A short JSON rendering of a found value for messages."""
    text = json.dumps(value, ensure_ascii=False)
    if len(text) > 60:
        text = text[:57] + "..."
    if isinstance(value, dict):
        return f"an object {text}"
    return f"a list {text}" if isinstance(value, list) else text


def _normal(name: str) -> str:
    return re.sub(r"[-_\s]", "", name.lower())


def suggest(name: str, known: Iterable[str], what: str = "key") -> str:
    """``did you mean "dispatcher"?``, else the list of known names."""
    options = list(known)
    close = [k for k in options if _normal(k) == _normal(name)]
    close = close or difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        return f'did you mean "{close[0]}"?'
    listed = ", ".join(f'"{k}"' for k in options)
    return f"remove it or use a known {what}: {listed}"


def _int_fix(value: Any, example: object) -> str:
    if isinstance(value, str) and _INT_TEXT.match(value):
        return f"write {int(value)} without quotes"
    if isinstance(value, float) and value.is_integer():
        return f"write {int(value)} without a decimal point"
    return f"write a whole number, e.g. {example}"


class Reader:
    """Typed readers: each checks one value at a key path or raises a ConfigError that
    names the file, the path, what was found and the fix. Warnings are collected."""

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
            got = f"must be an object {{ ... }} (got {shown(value)})"
            raise self.fail(path, got, "write it as { ... }")
        for dup in getattr(value, "duplicates", ()):
            fix = "keep one (JSON readers silently use only the last)"
            raise self.fail(key_path(path, dup), "is given more than once", fix)
        unknown = [key for key in value if known and key not in known]
        if unknown:
            fix = suggest(unknown[0], known)
            raise self.fail(key_path(path, unknown[0]), "is not a known key", fix)
        return value

    def integer(self, value: Any, path: str, *, minimum: int, example: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            got = f"must be an integer (got {shown(value)})"
            raise self.fail(path, got, _int_fix(value, example))
        if value < minimum:
            fix = "use 0 or a positive number" if minimum == 0 else f"use {minimum} or more"
            raise self.fail(path, f"must be at least {minimum} (got {value})", fix)
        return value

    def number(self, value: Any, path: str, *, positive: bool, example: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            fix = f"write a number of seconds, e.g. {example}"
            if isinstance(value, str) and _NUM_TEXT.match(value):
                fix = f"write {value.strip()} without quotes"
            raise self.fail(path, f"must be a number (got {shown(value)})", fix)
        if value < 0 or (positive and value == 0):
            bound = "greater than 0" if positive else "0 or more"
            raise self.fail(path, f"must be {bound} (got {value})", f"use e.g. {example}")
        return float(value)

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            got = f"must be true or false (got {shown(value)})"
            raise self.fail(path, got, "write true or false without quotes")
        return value

    def string(self, value: Any, path: str, example: object) -> str:
        if not isinstance(value, str):
            got = f"must be a string (got {shown(value)})"
            raise self.fail(path, got, f'write it in double quotes, e.g. "{example}"')
        if not value.strip():
            raise self.fail(path, "is empty", f'write a value, e.g. "{example}"')
        return value

    def strings(self, value: Any, path: str, example: object) -> tuple[str, ...]:
        """A list of non-empty strings; ``null`` (PHP: unset) is an empty list."""
        if value is None:
            return ()
        if not isinstance(value, list):
            fix = f'write a list of strings, e.g. ["{example}"]'
            if isinstance(value, str):
                fix = f"write a list: {json.dumps([value])}"
            raise self.fail(path, f"must be a list (got {shown(value)})", fix)
        return tuple(self.string(item, key_path(path, i), example) for i, item in enumerate(value))

    def memory(self, value: Any, path: str) -> str:
        """A PHP memory string: bytes, or a number with K, M or G; ``"-1"``: no limit."""
        if isinstance(value, int) and not isinstance(value, bool):
            fix = f'write "{value}" in quotes, or with a unit such as "300M"'
            raise self.fail(path, f"must be a PHP memory string (got {value})", fix)
        text = self.string(value, path, "300M").strip()
        if not _MEMORY.match(text):
            fix = 'write bytes or a number with K, M or G, e.g. "300M" ("-1" = no limit)'
            raise self.fail(path, f"is not a PHP memory size (got {shown(value)})", fix)
        return text

    # -- by declaration

    def read(self, key: Key, value: Any, path: str) -> Any:
        """``value`` checked as ``key`` declares it (kinds with a fixed shape only)."""
        check = _CHECKS.get(key.kind)
        if check is None:
            raise TypeError(f"config key {key.path}: {key.kind.name} has no generic check")
        return check(self, key, value, path)

    def int_of(self, key: Key, value: Any, path: str) -> int:
        return self.integer(value, path, minimum=key.minimum, example=key.item_example)

    def number_of(self, key: Key, value: Any, path: str) -> float:
        return self.number(value, path, positive=not key.zero_ok, example=key.item_example)

    def string_of(self, key: Key, value: Any, path: str) -> str:
        return self.string(value, path, key.item_example)

    def strings_of(self, key: Key, value: Any, path: str) -> tuple[str, ...]:
        return self.strings(value, path, key.item_example)

    def section(self, parent: str, raw: Any) -> dict[str, Any]:
        """The members of a section of plain values that the file gives, as model
        attribute -> value (``null`` for the whole section: none)."""
        spec = self.obj({} if raw is None else raw, parent, names(parent))
        values: dict[str, Any] = {}
        for name, value in spec.items():
            key = declared(f"{parent}.{name}")
            values[key.attr] = self.read(key, value, key_path(parent, name))
        return values


def is_plain(key: Key) -> bool:
    """Whether :meth:`Reader.read` can check ``key``'s values (its kind has a fixed shape)."""
    return key.kind in _CHECKS


_CHECKS: dict[Kind, Callable[[Reader, Key, Any, str], Any]] = {
    Kind.INT: Reader.int_of,
    Kind.SECONDS: Reader.int_of,
    Kind.DURATION: Reader.number_of,
    Kind.BOOL: lambda r, _key, value, path: r.boolean(value, path),
    Kind.MEMORY: lambda r, _key, value, path: r.memory(value, path),
    Kind.STRING: Reader.string_of,
    Kind.JOB_TYPES: Reader.strings_of,
    Kind.STRINGS: Reader.strings_of,
}
