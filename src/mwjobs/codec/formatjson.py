"""MediaWiki's ``FormatJson::encode($value, true)``, byte for byte (what runJobs prints).

That is PHP ``json_encode`` with ``JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES |
JSON_HEX_TAG | JSON_HEX_AMP``: 4-space indent, ``"key": value``, ``/`` left alone, ``<``
``>`` ``&`` as ``\\u003C`` ``\\u003E`` ``\\u0026``, non-ASCII as ``\\uXXXX`` (lowercase hex,
surrogate pairs), DEL raw, floats as PHP prints them (``1.0`` -> ``1``, ``1.0e+25``), no
trailing newline.

Values are read as the PHP arrays they stand for: a mapping whose keys are 0..n-1 in order
is a list, and an EMPTY mapping is ``[]`` (PHP cannot tell an empty map from an empty list;
runJobs' ``"backoffs": []`` comes from that). ``bytes`` (a binary PHP string, as keys or
values) is text when it is UTF-8; otherwise ``ValueError``, as PHP's ``json_encode`` fails
on malformed UTF-8.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence

from mwjobs.codec.php import php_array_key, php_float_repr

__all__ = ["format_json"]

INDENT = "    "

_ESCAPED_DEL = re.compile(r"(?<!\\)((?:\\\\)*)\\u007f")
_HEX = {"<": "\\u003C", ">": "\\u003E", "&": "\\u0026"}


def format_json(value: object, pretty: bool = True) -> str:
    """The JSON text ``FormatJson::encode($value, $pretty)`` gives for the PHP equivalent."""
    out: list[str] = []
    _encode(value, out, "\n" if pretty else "", INDENT if pretty else "")
    return "".join(out)


def _encode(value: object, out: list[str], newline: str, indent: str) -> None:
    if isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, bytes):
        out.append(_string(_text(value)))
    elif value is None or isinstance(value, bool | int):
        out.append(json.dumps(value))
    elif isinstance(value, float):
        out.append(_float(value))
    elif isinstance(value, Mapping):
        _mapping(value, out, newline, indent)
    elif isinstance(value, Sequence):
        _items([(None, item) for item in value], "[]", out, newline, indent)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as PHP JSON")


def _string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=True)
    if "\\u007f" in encoded:  # Python escapes DEL, PHP does not
        encoded = _ESCAPED_DEL.sub(lambda m: m.group(1) + "\x7f", encoded)
    for char, escape in _HEX.items():
        encoded = encoded.replace(char, escape)
    return encoded


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("PHP json_encode cannot encode malformed UTF-8") from None


def _float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        raise ValueError("PHP json_encode cannot encode NAN or INF")
    return php_float_repr(value).replace("E", "e")


def _mapping(value: Mapping[object, object], out: list[str], newline: str, indent: str) -> None:
    keys = [php_array_key(k) if isinstance(k, str | int | bytes) else str(k) for k in value]
    if keys == list(range(len(keys))):  # a PHP list (this includes the empty array)
        _items([(None, item) for item in value.values()], "[]", out, newline, indent)
    else:
        pairs: list[tuple[str | None, object]] = [
            (_text(k) if isinstance(k, bytes) else str(k), item)
            for k, item in zip(keys, value.values(), strict=True)
        ]
        _items(pairs, "{}", out, newline, indent)


def _items(
    pairs: list[tuple[str | None, object]],
    brackets: str,
    out: list[str],
    newline: str,
    indent: str,
) -> None:
    if not pairs:
        out.append(brackets)
        return
    inner = newline + indent
    out.append(brackets[0])
    for i, (key, item) in enumerate(pairs):
        out.append("," + inner if i else inner)
        if key is not None:
            out.append(_string(key) + (": " if newline else ":"))
        _encode(item, out, inner, indent)
    out.append(newline + brackets[1])
