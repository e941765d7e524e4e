"""PHP's ``serialize()`` / ``unserialize()`` for the values MediaWiki job records hold.

Exact to the byte with PHP 8.2: MediaWiki hashes serialized bytes for de-duplication and
stores them in Redis, so "almost the same" would break interoperability. The subset is
what job records use: null, bool, int, float, string, array, and ``stdClass`` (only for
the gzip wrapper of compressed records).

Mapping to Python:

* PHP string -> ``str`` (UTF-8); with ``binary_strings=True`` a string that is not valid
  UTF-8 comes back as ``bytes`` instead of raising. Array keys follow the same rule, so
  every string PHP can write reads back and serializes to the same bytes. ``bytes`` values
  serialize as-is; a ``bytes`` key is the PHP key its bytes spell (``b"a"`` is ``"a"``,
  ``b"5"`` is ``5``), and stays ``bytes`` only when it is not UTF-8. A ``str`` must be
  encodable text: binary data (lone surrogates included) goes in ``bytes``.
* PHP array -> ``list`` when its keys are exactly 0..n-1 in order (including the empty
  array), else ``dict`` with ``int``/``str``/``bytes`` keys in PHP order. Both serialize
  back to the same bytes.
* ``stdClass`` -> :class:`StdClass`.

The reader is strict and bounded: nesting depth and input size are capped, counts and
lengths are checked against the bytes left before anything is allocated, and anything
else (other classes, references, custom serialization) raises :class:`RecordError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cmp_to_key
from typing import Union

from mwjobs.errors import RecordError

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_SIZE",
    "PhpArray",
    "PhpKey",
    "PhpValue",
    "StdClass",
    "php_array_key",
    "php_float_repr",
    "php_ksort",
    "php_serialize",
    "php_serialize_into",
    "php_unserialize",
    "php_unserialize_at",
]

# bytes only for a string key that is not valid UTF-8 (see php_array_key).
PhpKey = int | str | bytes
# A recursive alias: what a PHP value looks like on the Python side.
PhpValue = Union[
    None,
    bool,
    int,
    float,
    str,
    bytes,
    list["PhpValue"],
    dict[PhpKey, "PhpValue"],
    Mapping[PhpKey, "PhpValue"],
    "StdClass",
]
PhpArray = dict[PhpKey, PhpValue]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# PHP's own default max_depth is 4096; job params never nest anywhere near this.
DEFAULT_MAX_DEPTH = 128
# Redis values are at most 512 MiB; a job record over 64 MiB is not a job record.
DEFAULT_MAX_SIZE = 64 * 1024 * 1024

_CANONICAL_INT = re.compile(rb"-?[1-9][0-9]*|0")
_CANONICAL_INT_STR = re.compile(r"-?[1-9][0-9]*|0")
_INT_START = frozenset("-0123456789")
# First characters a PHP numeric string can have (is_numeric_string; "" is not numeric).
_NUMERIC_START = frozenset(" \t\n\r\v\f+-.0123456789")



@dataclass
class StdClass:
    """A PHP ``stdClass`` object: public properties in order (only the gzip wrapper)."""

    properties: dict[PhpKey, PhpValue] = field(default_factory=dict)


# -- serialize ------------------------------------------------------------------------------


def php_array_key(key: PhpKey) -> PhpKey:
    """The key PHP actually stores: canonical decimal integer strings become ints, and a
    ``bytes`` key is read as text when it is UTF-8 (PHP has one string type)."""
    if type(key) is str:
        # Only text starting like a number can be a canonical int (cheap pre-check).
        if not key or key[0] not in _INT_START:
            return key
        if _CANONICAL_INT_STR.fullmatch(key) and INT64_MIN <= int(key) <= INT64_MAX:
            return int(key)
        return key
    if isinstance(key, int):
        return int(key) if isinstance(key, bool) else key
    if isinstance(key, bytes):
        return _bytes_key(key)
    return php_array_key(str(key)) if isinstance(key, str) else key


def _bytes_key(key: bytes) -> PhpKey:
    """A bytes key as PHP stores it: as text when UTF-8, else bytes (never numeric, as
    numeric strings are ASCII)."""
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return bytes(key)
    return php_array_key(text)


def php_float_repr(value: float) -> str:
    """PHP's text for a float with ``serialize_precision = -1`` (shortest round trip).

    Same digits as Python's ``repr``, laid out like PHP's ``php_gcvt``: exponent form when
    the decimal point sits more than 3 places left of the first digit or more than 17
    digits right of it, with ``.0`` after a lone digit.
    """
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    digits, point = _shortest_digits(abs(value))
    if point < -3 or point > 17:  # php_gcvt's limits (17 is its digit count)
        exponent = point - 1
        mantissa = digits[0] + "." + (digits[1:] or "0")
        return f"{sign}{mantissa}E{'-' if exponent < 0 else '+'}{abs(exponent)}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if len(digits) <= point:
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _shortest_digits(value: float) -> tuple[str, int]:
    """(significant digits, decimal point position) of the shortest round-trip repr."""
    text = repr(value)
    exponent = 0
    if "e" in text:
        text, exp_text = text.split("e")
        exponent = int(exp_text)
    whole, _, fraction = text.partition(".")
    digits = whole + fraction
    point = len(whole) + exponent
    stripped = digits.lstrip("0")
    if not stripped:
        return "0", 1
    point -= len(digits) - len(stripped)
    return stripped.rstrip("0"), point


def _serialize_into(value: PhpValue, out: list[bytes]) -> None:
    # Hot path of every push: exact-type checks first (str, int, dict), the general
    # isinstance chain only for subclasses and rarer types.
    kind = type(value)
    if kind is str:
        try:
            raw = value.encode("utf-8")  # type: ignore[union-attr]
        except UnicodeEncodeError:
            raise _not_text(str(value)) from None
        out.append(b's:%d:"%b";' % (len(raw), raw))
    elif kind is int:
        _serialize_int(value, out)  # type: ignore[arg-type]
    elif kind is dict:
        _serialize_mapping(b"a:%d:{", value, out)  # type: ignore[arg-type]
    else:
        _serialize_other(value, out)


def _serialize_int(value: int, out: list[bytes]) -> None:
    if not INT64_MIN <= value <= INT64_MAX:
        raise RecordError(f"integer {value} does not fit PHP's 64-bit int")
    out.append(b"i:%d;" % value)


def _serialize_other(value: PhpValue, out: list[bytes]) -> None:
    if value is None:
        out.append(b"N;")
    elif value is True:
        out.append(b"b:1;")
    elif value is False:
        out.append(b"b:0;")
    elif isinstance(value, int):
        _serialize_int(value, out)
    elif isinstance(value, float):
        out.append(b"d:" + php_float_repr(value).encode("ascii") + b";")
    elif isinstance(value, str | bytes):
        raw = _utf8(value) if isinstance(value, str) else value
        out.append(b's:%d:"%b";' % (len(raw), raw))
    elif isinstance(value, list | tuple):
        out.append(b"a:%d:{" % len(value))
        for index, item in enumerate(value):
            out.append(b"i:%d;" % index)
            _serialize_into(item, out)
        out.append(b"}")
    elif isinstance(value, Mapping):
        _serialize_mapping(b"a:%d:{", value, out)
    elif isinstance(value, StdClass):
        _serialize_mapping(b'O:8:"stdClass":%d:{', value.properties, out)
    else:
        raise RecordError(f"cannot serialize a {type(value).__name__} as a PHP value")


def _not_text(text: str) -> RecordError:
    return RecordError(
        f"{text[:64]!r} is not UTF-8 text (lone surrogates): pass binary PHP strings as bytes"
    )


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise _not_text(text) from None


def _serialize_mapping(head: bytes, mapping: Mapping[PhpKey, PhpValue], out: list[bytes]) -> None:
    # Keys are normalised the way PHP stores them; two Python keys that PHP sees as one
    # ("5" and 5, b"a" and "a") collapse, the later value winning, as in a PHP array literal.
    items: dict[PhpKey, PhpValue] = {}
    for key, item in mapping.items():
        if type(key) is not str and not isinstance(key, int | str | bytes):
            raise RecordError(f"PHP array keys are int, str or bytes, not {type(key).__name__}")
        items[php_array_key(key)] = item
    out.append(head % len(items))
    for key, item in items.items():
        if type(key) is str:
            try:
                raw = key.encode("utf-8")
            except UnicodeEncodeError:
                raise _not_text(key) from None
            out.append(b's:%d:"%b";' % (len(raw), raw))
        elif isinstance(key, int):
            out.append(b"i:%d;" % key)
        else:  # bytes that are not UTF-8 (php_array_key made the rest str)
            raw = key if isinstance(key, bytes) else _utf8(key)
            out.append(b's:%d:"%b";' % (len(raw), raw))
        _serialize_into(item, out)
    out.append(b"}")


def php_serialize(value: PhpValue) -> bytes:
    """``serialize($value)`` exactly as PHP 8.2 writes it."""
    # Strings and ints directly, without the output list (most record fields are these).
    if type(value) is str:
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError:
            raise _not_text(value) from None
        return b's:%d:"%b";' % (len(raw), raw)
    if type(value) is int and INT64_MIN <= value <= INT64_MAX:
        return b"i:%d;" % value
    out: list[bytes] = []
    _serialize_into(value, out)
    return b"".join(out)


def php_serialize_into(value: PhpValue, out: list[bytes]) -> None:
    """Append ``serialize($value)`` to ``out`` (for writers of a fixed envelope)."""
    _serialize_into(value, out)


# -- ksort ------------------------------------------------------------------------------------

_NUMERIC = re.compile(
    r"[ \t\n\r\v\f]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t\n\r\v\f]*"
)


def _numeric_value(text: str | bytes) -> float | int | None:
    """PHP 8's ``is_numeric_string``: the number a string stands for, or None."""
    # A bytes key is not UTF-8, so not numeric: numeric strings are ASCII.
    if isinstance(text, bytes) or not _NUMERIC.fullmatch(text):
        return None
    stripped = text.strip(" \t\n\r\v\f")
    if re.fullmatch(r"[+-]?[0-9]+", stripped):
        number = int(stripped)
        if INT64_MIN <= number <= INT64_MAX:
            return number
        return float(number)
    return float(stripped)


def _key_bytes(key: str | bytes) -> bytes:
    """A string key's PHP bytes: what ksort compares, byte by byte."""
    return key.encode("utf-8") if isinstance(key, str) else key


def _byte_compare(left: str | bytes, right: str | bytes) -> int:
    a, b = _key_bytes(left), _key_bytes(right)
    return (a > b) - (a < b)


def _three_way(left: float, right: float) -> int:
    return (left > right) - (left < right)


def _compare_keys(left: PhpKey, right: PhpKey) -> int:
    """ksort's default (SORT_REGULAR) key comparison under PHP 8 rules."""
    if isinstance(left, int) and isinstance(right, int):
        return _three_way(left, right)
    if not isinstance(left, int) and not isinstance(right, int):
        lnum, rnum = _numeric_value(left), _numeric_value(right)
        if lnum is not None and rnum is not None:
            return _three_way(lnum, rnum)
        return _byte_compare(left, right)
    # An int against a string: numerically if the string is numeric, else as strings.
    number, text, flip = (left, right, 1) if isinstance(left, int) else (right, left, -1)
    assert isinstance(number, int) and not isinstance(text, int)
    parsed = _numeric_value(text)
    result = _three_way(number, parsed) if parsed is not None else _byte_compare(str(number), text)
    return result * flip


def php_ksort(mapping: Mapping[PhpKey, PhpValue]) -> dict[PhpKey, PhpValue]:
    """A copy of ``mapping`` in the order PHP's ``ksort()`` leaves it.

    Exact whenever PHP's comparison is a total order on the keys (any mix of ints and
    non-numeric strings that do not start with a digit, or strings only). With keys such as
    ``10``, ``9`` and ``"1a"`` PHP's comparison is not transitive and the result depends on
    zend_sort's internals; such keys do not occur in job params.
    """
    keyed = {php_array_key(key): value for key, value in mapping.items()}
    try:
        order = _sorted_keys(keyed)
    except UnicodeEncodeError as exc:
        raise _not_text(exc.object) from None
    return {key: keyed[key] for key in order}


def _sorted_keys(keys: Collection[PhpKey]) -> list[PhpKey]:
    # No key can be numeric (bytes keys never are): PHP compares them as plain bytes.
    if all(type(key) is str and key[:1] not in _NUMERIC_START for key in keys):
        return sorted(keys, key=str.encode)  # type: ignore[arg-type]  # all str
    if all(
        type(key) is bytes or (type(key) is str and key[:1] not in _NUMERIC_START)
        for key in keys
    ):
        return sorted(keys, key=_key_bytes)  # type: ignore[arg-type]  # str and bytes
    return sorted(keys, key=cmp_to_key(_compare_keys))


# -- unserialize ------------------------------------------------------------------------------


_INT = re.compile(rb"i:([+-]?[0-9]{1,19});")
_STRING = re.compile(rb's:([0-9]{1,19}):"')
_BOOL = re.compile(rb"b:([01]);")
_FLOAT = re.compile(
    rb"d:([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|-?INF|NAN);"
)
_OBJECT = re.compile(rb'O:([0-9]{1,19}):"')


_ARRAY = re.compile(rb"a:([0-9]{1,19}):\{")
_STDCLASS = re.compile(rb'O:8:"stdClass":([0-9]{1,19}):\{')



def _fail(pos: int, what: str) -> RecordError:
    return RecordError(f"malformed PHP serialized data at byte {pos}: {what}")


def _read_int(data: bytes, pos: int) -> tuple[int, int]:
    match = _INT.match(data, pos)
    if match is None:
        raise _fail(pos, "bad integer")
    number = int(match[1])
    if not INT64_MIN <= number <= INT64_MAX:
        raise _fail(pos, "integer out of 64-bit range")
    return number, match.end()


def _read_int_key(data: bytes, pos: int) -> tuple[PhpKey, int]:
    """An integer key (string keys are read inline by the parser)."""
    if data[pos : pos + 1] == b"i":
        return _read_int(data, pos)
    raise _fail(pos, "array keys must be integers or strings")


def _read_scalar(data: bytes, pos: int) -> tuple[PhpValue, int]:
    """The rarer scalar forms: null, bool, float."""
    head = data[pos : pos + 1]
    if head == b"N" and data[pos + 1 : pos + 2] == b";":
        return None, pos + 2
    if head == b"b":
        match = _BOOL.match(data, pos)
        if match is not None:
            return match[1] == b"1", match.end()
    elif head == b"d":
        match = _FLOAT.match(data, pos)
        if match is not None:
            return float(match[1].replace(b"NAN", b"nan")), match.end()
    if not head:
        raise _fail(pos, "unexpected end of data")
    raise _fail(pos, f"bad or unsupported value starting with {head!r}")


def _object_error(data: bytes, pos: int) -> RecordError:
    """Why the object at ``pos`` is refused: a class other than stdClass, or malformed."""
    match = _OBJECT.match(data, pos)
    if match is None:
        return _fail(pos, "bad object header")
    name = data[match.end() : match.end() + int(match[1])]
    if name != b"stdClass":
        return _fail(pos, f"objects of class {name[:64]!r} are not allowed")
    return _fail(pos, "bad stdClass header")


def _open(data: bytes, pos: int, depth: int, max_depth: int) -> tuple[int, bool, int]:
    """(entry count, is-an-object, position after ``{``) of the array or stdClass at pos."""
    is_object = data[pos : pos + 1] == b"O"
    match = (_STDCLASS if is_object else _ARRAY).match(data, pos)
    if match is None:
        raise _object_error(data, pos) if is_object else _fail(pos, "bad array header")
    if depth >= max_depth:
        raise _fail(pos, f"nesting deeper than {max_depth}")
    count = int(match[1])
    # Every entry needs at least 6 bytes ("i:0;N;"): refuse impossible counts up front.
    if count * 6 > len(data) - match.end():
        raise _fail(pos, f"count {count} is larger than the data can hold")
    return count, is_object, match.end()


def _closed(entries: dict[PhpKey, PhpValue], is_list: bool, is_object: bool) -> PhpValue:
    if is_object:
        return StdClass(entries)
    return list(entries.values()) if is_list else entries


# A parent array's reader state, saved while a nested array is read.
_Saved = tuple[dict[PhpKey, PhpValue], int, PhpKey, bool, bool]


# One function on purpose (hot loop, no call per token), hence over the complexity caps.
def _parse(  # noqa: C901, PLR0912, PLR0915
    data: bytes, pos: int, max_depth: int, binary_strings: bool
) -> tuple[PhpValue, int]:
    """The reader: one value from ``pos`` on, and the position after it. The array being
    filled lives in locals and its parents on a stack.

    It is the hot path of every pop, so strings, ints and string keys (most of a record)
    are read inline, without a function call per token; the rarer forms use helpers.
    """
    stack: list[_Saved] = []
    entries: dict[PhpKey, PhpValue] | None = None  # the array being filled, if any
    left = 0  # entries still to read in it
    key: PhpKey | None = None  # its key waiting for a value
    is_list = is_object = False
    value: PhpValue
    while True:
        if entries is not None and key is None:
            if left == 0:  # all entries read: close the array
                if data[pos : pos + 1] != b"}":
                    raise _fail(pos, "expected '}'")
                pos += 1
                value = _closed(entries, is_list, is_object)
                if stack:
                    entries, left, key, is_list, is_object = stack.pop()
                else:
                    entries = None
            elif data[pos : pos + 1] == b"s":  # a string key, inline (most keys are)
                match = _STRING.match(data, pos)
                if match is None:
                    raise _fail(pos, "bad string header")
                start = match.end()
                end = start + int(match[1])
                if data[end : end + 2] != b'";':
                    raise _fail(pos, "string length does not match its quotes")
                raw = data[start:end]
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    if not binary_strings:
                        raise _fail(pos, "array key is not valid UTF-8") from None
                    key = raw  # never numeric: numeric strings are ASCII
                else:
                    # Only text starting like a number can be a canonical int.
                    key = php_array_key(text) if text[:1] in _INT_START else text
                pos = end + 2
                continue
            else:
                key, pos = _read_int_key(data, pos)
                continue
        else:
            head = data[pos : pos + 1]
            if head == b"s":
                match = _STRING.match(data, pos)
                if match is None:
                    raise _fail(pos, "bad string header")
                start = match.end()
                end = start + int(match[1])
                if data[end : end + 2] != b'";':
                    raise _fail(pos, "string length does not match its quotes")
                raw = data[start:end]
                try:
                    value = raw.decode("utf-8")
                except UnicodeDecodeError:
                    if not binary_strings:
                        raise _fail(pos, "string is not valid UTF-8") from None
                    value = raw
                pos = end + 2
            elif head == b"i":
                value, pos = _read_int(data, pos)
            elif head in (b"a", b"O"):
                count, opens_object, pos = _open(data, pos, len(stack) + (entries is not None),
                                                 max_depth)  # fmt: skip
                if entries is not None:
                    assert key is not None
                    stack.append((entries, left, key, is_list, is_object))
                entries, left, key, is_list, is_object = {}, count, None, True, opens_object
                continue
            else:
                value, pos = _read_scalar(data, pos)
        if entries is None:
            return value, pos
        assert key is not None
        if is_list and (type(key) is not int or key != len(entries)):
            is_list = False
        entries[key] = value
        key = None
        left -= 1


def php_unserialize(
    data: bytes,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_size: int = DEFAULT_MAX_SIZE,
    binary_strings: bool = False,
) -> PhpValue:
    """``unserialize($data)`` for the job-record subset, strictly.

    Raises :class:`RecordError` on malformed or trailing data, on any class other than
    ``stdClass``, on references, on nesting deeper than ``max_depth`` and on input larger
    than ``max_size`` bytes. Work and memory are linear in the input size.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise RecordError(f"serialized data must be bytes, not {type(data).__name__}")
    if len(data) > max_size:
        raise RecordError(f"serialized data of {len(data)} bytes exceeds the {max_size} limit")
    data = bytes(data)
    value, end = _parse(data, 0, max_depth, binary_strings)
    if end != len(data):
        raise _fail(end, "trailing data after the value")
    return value


def php_unserialize_at(
    data: bytes, pos: int, *, max_depth: int = DEFAULT_MAX_DEPTH, binary_strings: bool = False
) -> tuple[PhpValue, int]:
    """One serialized value starting at ``pos`` (of data already size-checked), and the
    position after it; for readers that match a known envelope around it."""
    return _parse(data, pos, max_depth, binary_strings)
