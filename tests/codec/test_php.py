"""PHP serialize/unserialize: fixed vectors, real PHP as the oracle, and hostile input."""

from __future__ import annotations

import math
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mwjobs.codec import (
    PhpKey,
    PhpValue,
    StdClass,
    php_array_key,
    php_float_repr,
    php_ksort,
    php_serialize,
    php_unserialize,
)
from mwjobs.errors import RecordError
from tests.codec.conftest import PhpOracle

# -- vectors: what PHP 8.2's serialize() prints -------------------------------------------


def test_mixed_values_vector() -> None:
    value: list[PhpValue] = [1.0, 0.1, 1e25, -0.0, 1.5e-7, True, None, "é"]
    expected = (
        'a:8:{i:0;d:1;i:1;d:0.1;i:2;d:1.0E+25;i:3;d:-0;i:4;d:1.5E-7;i:5;b:1;i:6;N;i:7;s:2:"é";}'
    )
    assert php_serialize(value) == expected.encode("utf-8")


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (0.1, "0.1"),
        (1e25, "1.0E+25"),
        (-0.0, "-0"),
        (0.0, "0"),
        (1.5e-7, "1.5E-7"),
        (1e15, "1000000000000000"),
        (1e17, "1.0E+17"),
        (0.0001, "0.0001"),
        (0.00001, "1.0E-5"),
        (math.inf, "INF"),
        (-math.inf, "-INF"),
        (math.nan, "NAN"),
        (-2.5, "-2.5"),
    ],
)
def test_float_repr(number: float, text: str) -> None:
    assert php_float_repr(number) == text


@pytest.mark.parametrize(
    ("key", "stored"),
    [("5", 5), ("-5", -5), ("0", 0), ("05", "05"), ("5.0", "5.0"), (" 5", " 5"), ("-0", "-0"),
     ("9223372036854775807", 9223372036854775807), ("9223372036854775808", "9223372036854775808"),
     ("abc", "abc"), (7, 7)],
)
def test_array_key_normalisation(key: int | str, stored: int | str) -> None:
    assert php_array_key(key) == stored


def test_numeric_string_keys_serialize_as_ints() -> None:
    assert php_serialize({"5": 1, "05": 2}) == b'a:2:{i:5;i:1;s:2:"05";i:2;}'


def test_strings_count_bytes_not_characters() -> None:
    assert php_serialize("Café 日本") == 's:12:"Café 日本";'.encode()


def test_stdclass_round_trip() -> None:
    raw = b'O:8:"stdClass":2:{s:4:"blob";s:3:"\x00\xff\x01";s:3:"enc";s:4:"gzip";}'
    value = php_unserialize(raw, binary_strings=True)
    assert value == StdClass({"blob": b"\x00\xff\x01", "enc": "gzip"})
    assert php_serialize(value) == raw
    with pytest.raises(RecordError, match="UTF-8"):
        php_unserialize(raw)


def test_lists_and_maps_decode_to_python_shapes() -> None:
    assert php_unserialize(b"a:2:{i:0;s:1:\"a\";i:1;i:2;}") == ["a", 2]
    assert php_unserialize(b"a:2:{i:1;s:1:\"a\";i:0;i:2;}") == {1: "a", 0: 2}
    assert php_unserialize(b"a:0:{}") == []


def test_int64_limits() -> None:
    assert php_unserialize(b"i:-9223372036854775808;") == -(2**63)
    with pytest.raises(RecordError):
        php_serialize(2**63)
    with pytest.raises(RecordError):
        php_unserialize(b"i:9223372036854775808;")


def test_ksort_orders_like_php8() -> None:
    ordered = php_ksort({"b": 1, "a": 2, 10: 3, 9: 4, "B": 5})
    assert list(ordered) == [9, 10, "B", "a", "b"]


# -- against real PHP ---------------------------------------------------------------------

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
TEXT = st.text(max_size=12)
KEYS = st.one_of(INT64, st.sampled_from(["5", "05", "-0", " 5", "1.5", "1e3", ""]), TEXT)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    INT64,
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(KEYS, children, max_size=5),
    ),
    max_leaves=25,
)
PHP_SETTINGS = settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PHP_SETTINGS
@given(VALUES)
def test_serialize_matches_php(php: PhpOracle, value: PhpValue) -> None:
    assert php_serialize(value) == php.serialize(value)


@PHP_SETTINGS
@given(VALUES)
def test_unserialize_reads_what_php_writes(php: PhpOracle, value: PhpValue) -> None:
    written = php.serialize(value)
    # Same value back: compared through serialization, since NaN != NaN.
    assert php_serialize(php_unserialize(written)) == written


@PHP_SETTINGS
@given(st.binary(max_size=40))
def test_binary_strings_match_php(php: PhpOracle, raw: bytes) -> None:
    written = php.serialize(raw)
    assert php_serialize(raw) == written
    assert php_unserialize(written, binary_strings=True) in (raw, raw.decode("utf-8", "replace"))


# PHP strings are bytes, keys included: any value PHP writes must come back byte for byte.
BINARY = st.binary(max_size=12)
BINARY_KEYS = st.one_of(KEYS, st.binary(max_size=8), st.sampled_from([b"5", b"\xff", b"\x80a"]))
BINARY_VALUES = st.recursive(
    st.one_of(SCALARS, BINARY),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(BINARY_KEYS, children, max_size=5),
    ),
    max_leaves=25,
)


@PHP_SETTINGS
@given(BINARY_VALUES)
def test_binary_values_from_php_round_trip(php: PhpOracle, value: PhpValue) -> None:
    written = php.serialize(value)
    assert php_serialize(php_unserialize(written, binary_strings=True)) == written


@PHP_SETTINGS
@given(BINARY_VALUES)
def test_binary_values_serialize_like_php_and_php_reads_them(
    php: PhpOracle, value: PhpValue
) -> None:
    ours = php_serialize(value)
    assert ours == php.serialize(value)
    assert php.reserialize(ours) == ours


def test_non_utf8_key_round_trips() -> None:
    raw = b'a:2:{s:2:"\xff\xfe";i:1;s:3:"a\x80b";a:1:{s:1:"\xc3";s:1:"\xe9";}}'
    value = php_unserialize(raw, binary_strings=True)
    assert value == {b"\xff\xfe": 1, b"a\x80b": {b"\xc3": b"\xe9"}}
    assert php_serialize(value) == raw


def test_non_utf8_key_is_refused_without_binary_strings() -> None:
    with pytest.raises(RecordError, match="UTF-8"):
        php_unserialize(b'a:1:{s:1:"\xff";i:1;}')


def test_bytes_keys_are_normalised_like_php_strings() -> None:
    assert php_array_key(b"\xff") == b"\xff"
    assert php_array_key(b"12") == 12
    assert php_array_key(b"abc") == "abc"
    # b"a" and "a" are one PHP key: the first position, the last value.
    assert php_serialize({b"a": 1, "b": 2, "a": 3}) == b'a:2:{s:1:"a";i:3;s:1:"b";i:2;}'
    assert php_serialize({b"7": 1}) == b"a:1:{i:7;i:1;}"


def test_ksort_compares_binary_keys_bytewise() -> None:
    keys: list[PhpKey] = [b"\xff", "z", b"\x80a", "a", b"\x80", "\u00e9"]  # "é" is b"\xc3\xa9"
    expected: list[PhpKey] = ["a", "z", b"\x80", b"\x80a", "\u00e9", b"\xff"]
    assert list(php_ksort(dict.fromkeys(keys, 0))) == expected
    assert list(php_ksort({b"\xff": 0, 5: 0, b"-\x80": 0})) == [b"-\x80", 5, b"\xff"]


def test_lone_surrogates_are_not_php_strings() -> None:
    # Binary strings are bytes; a str must be encodable text.
    with pytest.raises(RecordError, match="bytes"):
        php_serialize("\udcff")
    with pytest.raises(RecordError, match="bytes"):
        php_serialize({"\udcff": 1})


# -- hostile input ------------------------------------------------------------------------

MALFORMED = [
    b"",
    b"N",
    b"i:12",
    b"i:1x;",
    b"b:2;",
    b"d:1.2.3;",
    b's:5:"abc";',
    b's:2:"abc";',
    b's:-1:"";',
    b's:99999999999999:"abc";',
    b"a:1:{i:0;N;",
    b"a:2:{i:0;N;}",
    b"a:99999999999:{",
    b"a:1:{d:1.5;N;}",
    b"a:1:{N;N;}",
    b'O:8:"DateTime":0:{}',
    b'O:3:"Foo":0:{}',
    b'C:8:"stdClass":0:{}',
    b"r:1;",
    b"R:1;",
    b'E:7:"Foo:Bar";',
    b'a:1:{i:0;s:2:"\xff\xfe";}',
    b"N;N;",
    b"a:1:{i:0;N;}trailing",
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_input_raises_record_error(raw: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(RecordError):
        php_unserialize(raw)
    assert time.perf_counter() - started < 0.5


def test_deep_nesting_is_refused_quickly() -> None:
    raw = b"a:1:{i:0;" * 100_000 + b"N;" + b"}" * 100_000
    started = time.perf_counter()
    with pytest.raises(RecordError, match="nesting"):
        php_unserialize(raw)
    assert time.perf_counter() - started < 0.5


def test_huge_declared_sizes_use_bounded_memory() -> None:
    hostile = [b"a:4611686018427387903:{" + b"i:0;N;" * 10, b"s:4611686018427387903:\"x\";"]
    tracemalloc.start()
    try:
        for raw in hostile:
            with pytest.raises(RecordError):
                php_unserialize(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_input_size_limit() -> None:
    with pytest.raises(RecordError, match="exceeds"):
        php_unserialize(b"s:10:\"0123456789\";", max_size=8)


def test_invalid_utf8_can_be_read_as_bytes_when_asked() -> None:
    assert php_unserialize(b's:2:"\xff\xfe";', binary_strings=True) == b"\xff\xfe"


def test_unserializable_python_values_are_refused() -> None:
    with pytest.raises(RecordError):
        php_serialize({1.5: "x"})  # type: ignore[dict-item]
    with pytest.raises(RecordError):
        php_serialize(object())  # type: ignore[arg-type]
