"""Reading a config file into JSON data: bytes, UTF-8, ``//`` comments, JSON syntax.

Nothing here knows what the keys mean (that is :mod:`mwjobs.config.validate`). Every
error is a :class:`~mwjobs.errors.ConfigError` that names the file, the line and column,
and a probable fix.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from mwjobs.errors import ConfigError

__all__ = ["decode", "read_text", "strip_comments"]


def read_text(source: str | os.PathLike[str]) -> str:
    """The file's text, decoded as UTF-8 (a leading byte-order mark is kept:
    ``parse_config`` drops it)."""
    name = os.fspath(source)
    try:
        raw = Path(name).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"{name}: cannot read the configuration file ({reason}); "
            "check the path given to --config-file and that the service user may read it"
        ) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(raw[: exc.start].decode("utf-8", "replace"), exc.start)
        raise ConfigError(
            f"{name}: line {line}, column {col}: the file is not UTF-8 text "
            f"(byte 0x{raw[exc.start]:02x}); save it as UTF-8"
        ) from None


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


class JsonObject(dict[str, Any]):
    """A decoded JSON object that remembers keys given more than once (json keeps the last
    silently; a duplicated group name would drop a group)."""

    duplicates: tuple[str, ...] = ()

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, Any]]) -> JsonObject:
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


def decode(text: str, source: str) -> Any:
    """The JSON data of a config text (comments already stripped); objects are
    :class:`JsonObject`."""
    try:
        return json.loads(text, object_pairs_hook=JsonObject.from_pairs)
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
