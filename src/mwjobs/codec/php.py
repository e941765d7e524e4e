"""PHP's ``serialize()`` / ``unserialize()`` for the values MediaWiki job records hold.

Exact to the byte with PHP 8.2: MediaWiki hashes serialized bytes for de-duplication and
stores them in Redis, so "almost the same" would break interoperability. The subset is
what job records use: null, bool, int, float, string, array, and ``stdClass`` (only for
the gzip wrapper of compressed records).

Mapping to Python:

* PHP string -> ``str`` (UTF-8); with ``binary_strings=True`` a string that is not valid
  UTF-8 comes back as ``bytes`` instead of raising. ``bytes`` values serialize as-is.
* PHP array -> ``list`` when its keys are exactly 0..n-1 in order (including the empty
  array), else ``dict`` with ``int``/``str`` keys in PHP order. Both serialize back to the
  same bytes.
* ``stdClass`` -> :class:`StdClass`.

The reader is strict and bounded: nesting depth and input size are capped, counts and
lengths are checked against the bytes left before anything is allocated, and anything
else (other classes, references, custom serialization) raises :class:`RecordError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
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
    "php_unserialize",
]

PhpKey = int | str
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


@dataclass
class StdClass:
    """A PHP ``stdClass`` object: public properties in order (only the gzip wrapper)."""

    properties: dict[PhpKey, PhpValue] = field(default_factory=dict)


# -- serialize ------------------------------------------------------------------------------


def php_array_key(key: PhpKey) -> PhpKey:
    """The key PHP actually stores: canonical decimal integer strings become ints."""
    if isinstance(key, bool):
        return int(key)
    if isinstance(key, int):
        return key
    if _CANONICAL_INT_STR.fullmatch(key) and INT64_MIN <= int(key) <= INT64_MAX:
        return int(key)
    return key


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
    if value is None:
        out.append(b"N;")
    elif value is True:
        out.append(b"b:1;")
    elif value is False:
        out.append(b"b:0;")
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise RecordError(f"integer {value} does not fit PHP's 64-bit int")
        out.append(b"i:%d;" % value)
    elif isinstance(value, float):
        out.append(b"d:" + php_float_repr(value).encode("ascii") + b";")
    elif isinstance(value, str | bytes):
        raw = value.encode("utf-8") if isinstance(value, str) else value
        out.append(b's:%d:"' % len(raw) + raw + b'";')
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


def _serialize_mapping(head: bytes, mapping: Mapping[PhpKey, PhpValue], out: list[bytes]) -> None:
    # Keys are normalised the way PHP stores them; two Python keys that PHP sees as one
    # ("5" and 5) collapse, the later value winning, as in a PHP array literal.
    items: dict[PhpKey, PhpValue] = {}
    for key, item in mapping.items():
        if not isinstance(key, int | str):
            raise RecordError(f"PHP array keys are int or str, not {type(key).__name__}")
        items[php_array_key(key)] = item
    out.append(head % len(items))
    for key, item in items.items():
        _serialize_into(key, out)
        _serialize_into(item, out)
    out.append(b"}")


def php_serialize(value: PhpValue) -> bytes:
    """``serialize($value)`` exactly as PHP 8.2 writes it."""
    out: list[bytes] = []
    _serialize_into(value, out)
    return b"".join(out)


# -- ksort ------------------------------------------------------------------------------------

_NUMERIC = re.compile(
    r"[ \t\n\r\v\f]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t\n\r\v\f]*"
)


def _numeric_value(text: str) -> float | int | None:
    """PHP 8's ``is_numeric_string``: the number a string stands for, or None."""
    if not _NUMERIC.fullmatch(text):
        return None
    stripped = text.strip(" \t\n\r\v\f")
    if re.fullmatch(r"[+-]?[0-9]+", stripped):
        number = int(stripped)
        if INT64_MIN <= number <= INT64_MAX:
            return number
        return float(number)
    return float(stripped)


def _byte_compare(left: str, right: str) -> int:
    a, b = left.encode("utf-8"), right.encode("utf-8")
    return (a > b) - (a < b)


def _three_way(left: float, right: float) -> int:
    return (left > right) - (left < right)


def _compare_keys(left: PhpKey, right: PhpKey) -> int:
    """ksort's default (SORT_REGULAR) key comparison under PHP 8 rules."""
    if isinstance(left, int) and isinstance(right, int):
        return _three_way(left, right)
    if isinstance(left, str) and isinstance(right, str):
        lnum, rnum = _numeric_value(left), _numeric_value(right)
        if lnum is not None and rnum is not None:
            return _three_way(lnum, rnum)
        return _byte_compare(left, right)
    # An int against a string: numerically if the string is numeric, else as strings.
    number, text, flip = (left, right, 1) if isinstance(left, int) else (right, left, -1)
    assert isinstance(number, int) and isinstance(text, str)
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
    return {key: keyed[key] for key in sorted(keyed, key=cmp_to_key(_compare_keys))}


# -- unserialize ------------------------------------------------------------------------------


class _Reader:
    """A strict recursive-descent reader over one serialized buffer."""

    __slots__ = ("binary_strings", "data", "max_depth", "pos")

    def __init__(self, data: bytes, *, max_depth: int, binary_strings: bool) -> None:
        self.data = data
        self.pos = 0
        self.max_depth = max_depth
        self.binary_strings = binary_strings

    def fail(self, what: str) -> RecordError:
        return RecordError(f"malformed PHP serialized data at byte {self.pos}: {what}")

    def expect(self, token: bytes) -> None:
        end = self.pos + len(token)
        if self.data[self.pos : end] != token:
            raise self.fail(f"expected {token.decode('ascii')!r}")
        self.pos = end

    def read_until(self, stop: bytes, limit: int = 32) -> bytes:
        end = self.data.find(stop, self.pos, self.pos + limit + 1)
        if end < 0:
            raise self.fail(f"expected {stop.decode('ascii')!r}")
        chunk = self.data[self.pos : end]
        self.pos = end + 1
        return chunk

    def read_count(self, stop: bytes) -> int:
        text = self.read_until(stop, 20)
        if not re.fullmatch(rb"[0-9]+", text):
            raise self.fail("expected a length or count")
        return int(text)

    def read_int(self) -> int:
        text = self.read_until(b";", 21)
        if not re.fullmatch(rb"[+-]?[0-9]+", text):
            raise self.fail("bad integer")
        number = int(text)
        if not INT64_MIN <= number <= INT64_MAX:
            raise self.fail("integer out of 64-bit range")
        return number

    def read_float(self) -> float:
        text = self.read_until(b";", 400)
        if text in (b"INF", b"-INF", b"NAN"):
            return float(text.decode("ascii").replace("NAN", "nan"))
        if not re.fullmatch(rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", text):
            raise self.fail("bad float")
        return float(text)

    def read_string_body(self) -> bytes:
        length = self.read_count(b":")
        if length > len(self.data) - self.pos:
            raise self.fail(f"string length {length} runs past the end")
        self.expect(b'"')
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        self.expect(b'"')
        return raw

    def text(self, raw: bytes) -> str | bytes:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            if self.binary_strings:
                return raw
            raise self.fail("string is not valid UTF-8") from None

    def read_key(self) -> PhpKey:
        tag = self.data[self.pos : self.pos + 2]
        self.pos += 2
        if tag == b"i:":
            return self.read_int()
        if tag == b"s:":
            raw = self.read_string_body()
            self.expect(b";")
            key = self.text(raw)
            if isinstance(key, bytes):  # a dict key must be hashable text
                key = key.decode("utf-8", "surrogateescape")
            return php_array_key(key)
        self.pos -= 2
        raise self.fail("array keys must be integers or strings")

    def read_entries(self, depth: int) -> dict[PhpKey, PhpValue]:
        count = self.read_count(b":")
        # Every entry needs at least 6 bytes ("i:0;N;"): refuse impossible counts up front.
        if count * 6 > len(self.data) - self.pos:
            raise self.fail(f"count {count} is larger than the data can hold")
        self.expect(b"{")
        entries: dict[PhpKey, PhpValue] = {}
        for _ in range(count):
            key = self.read_key()
            entries[key] = self.read_value(depth + 1)
        self.expect(b"}")
        return entries

    def read_value(self, depth: int) -> PhpValue:  # noqa: PLR0911 - one branch per tag
        if depth > self.max_depth:
            raise self.fail(f"nesting deeper than {self.max_depth}")
        tag = self.data[self.pos : self.pos + 2]
        self.pos += 2
        if tag == b"N;":
            return None
        if tag == b"b:":
            flag = self.read_until(b";", 1)
            if flag not in (b"0", b"1"):
                raise self.fail("bad boolean")
            return flag == b"1"
        if tag == b"i:":
            return self.read_int()
        if tag == b"d:":
            return self.read_float()
        if tag == b"s:":
            raw = self.read_string_body()
            self.expect(b";")
            return self.text(raw)
        if tag == b"a:":
            entries = self.read_entries(depth)
            if list(entries) == list(range(len(entries))):
                return list(entries.values())
            return entries
        if tag == b"O:":
            return self.read_object(depth)
        self.pos -= 2
        raise self.fail(f"unsupported type tag {tag[:1]!r}")

    def read_object(self, depth: int) -> StdClass:
        name = self.read_string_body()
        if name != b"stdClass":
            raise self.fail(f"objects of class {name[:64]!r} are not allowed")
        self.expect(b":")
        return StdClass(self.read_entries(depth))


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
    reader = _Reader(bytes(data), max_depth=max_depth, binary_strings=binary_strings)
    value = reader.read_value(0)
    if reader.pos != len(reader.data):
        raise reader.fail("trailing data after the value")
    return value
