"""The h-data job record and dedup hashes: a NullJob worked example, real MediaWiki 1.43 data,
real PHP."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mwjobs.codec import (
    JobRecord,
    PhpKey,
    PhpValue,
    StdClass,
    base36_sha1,
    decode_record,
    encode_record,
    job_dedup_hash,
    job_dedup_info,
    php_serialize,
    php_unserialize,
    spec_dedup_hash,
)
from mwjobs.codec.dedup import _base36_31
from mwjobs.codec.record import _decode_general
from mwjobs.errors import RecordError
from tests.codec.conftest import PhpOracle

WORKED_PARAMS: dict[PhpKey, PhpValue] = {
    "removeDuplicates": True,
    "requestId": "8f0e2c1d6a7b4e3fa1b2c3d4",
    "lives": 1,
    "usleep": 0,
}
WORKED_BLOB = (
    b'a:8:{s:4:"type";s:4:"null";s:9:"namespace";i:-1;s:5:"title";s:0:"";s:6:"params";'
    b'a:4:{s:16:"removeDuplicates";b:1;s:9:"requestId";s:24:"8f0e2c1d6a7b4e3fa1b2c3d4";'
    b's:5:"lives";i:1;s:6:"usleep";i:0;}s:10:"rtimestamp";i:0;s:4:"uuid";'
    b's:32:"3f2a9c4e1b7d4c0e9a8b7c6d5e4f3a2b";s:4:"sha1";s:31:"j66c9icc7d92im135tkwc7xxefhkynh";'
    b's:9:"timestamp";i:1700000000;}'
)


def fixture_records(fixtures_dir: Path) -> list[tuple[str, bytes]]:
    state: dict[str, dict[str, Any]] = json.loads((fixtures_dir / "redis-state.json").read_text())
    return [
        (f"{key}/{job_id}", blob.encode("utf-8"))
        for key, entry in state.items()
        if key.endswith(":h-data")
        for job_id, blob in entry["value"].items()
    ]


def test_dedup_info_vector() -> None:
    info = job_dedup_info("null", WORKED_PARAMS)
    serialized = php_serialize(info)
    assert serialized == (
        b'a:2:{s:4:"type";s:4:"null";s:6:"params";a:3:{s:5:"lives";i:1;'
        b's:16:"removeDuplicates";b:1;s:6:"usleep";i:0;}}'
    )
    assert base36_sha1(serialized) == "j66c9icc7d92im135tkwc7xxefhkynh"
    assert job_dedup_hash("null", WORKED_PARAMS) == "j66c9icc7d92im135tkwc7xxefhkynh"


@settings(max_examples=2000)
@given(
    st.one_of(
        st.integers(0, 2**160 - 1),
        st.sampled_from([0, 1, 35, 36, 1295, 1296, 36**30 - 1, 36**30, 2**160 - 1]),
    )
)
def test_base36_writes_two_digits_at_a_time_correctly(number: int) -> None:
    text = _base36_31(number)
    assert len(text) == 31
    assert text == text.lower()
    assert int(text, 36) == number


def test_worked_example_blob_round_trips() -> None:
    record = JobRecord(
        type="null",
        namespace=-1,
        title="",
        params=dict(WORKED_PARAMS),
        rtimestamp=0,
        uuid="3f2a9c4e1b7d4c0e9a8b7c6d5e4f3a2b",
        sha1=job_dedup_hash("null", WORKED_PARAMS),
        timestamp=1700000000,
    )
    assert encode_record(record) == WORKED_BLOB
    assert decode_record(WORKED_BLOB) == record


def test_every_fixture_record_round_trips_and_rehashes(fixtures_dir: Path) -> None:
    records = fixture_records(fixtures_dir)
    assert len(records) == 15
    hashed = 0
    for name, blob in records:
        record = decode_record(blob)
        assert encode_record(record) == blob, name
        assert name.endswith(record.uuid)
        if record.sha1:
            assert job_dedup_hash(record.type, record.params) == record.sha1, name
            hashed += 1
    assert hashed == 8


def test_fixture_spec_style_record_keeps_string_rtimestamp(fixtures_dir: Path) -> None:
    blobs = dict(fixture_records(fixtures_dir))
    record = decode_record(blobs["testwiki:jobqueue:null:h-data/f355af30c08947c5830f982736d42545"])
    assert record.rtimestamp == "1795355827"
    assert record.release_timestamp == 1795355827
    # A JobSpecification hash (insertion order) agrees here because the params are sorted.
    assert spec_dedup_hash(record.type, record.params) == record.sha1


def test_fixture_non_ascii_title(fixtures_dir: Path) -> None:
    blobs = dict(fixture_records(fixtures_dir))
    record = decode_record(
        blobs["testwiki:jobqueue:htmlCacheUpdate:h-data/81678e9600d04d0f864a001694377336"]
    )
    assert (record.namespace, record.title) == (0, "Café_日本")


def test_spec_hash_honours_ignore_params_and_order() -> None:
    a = spec_dedup_hash("t", {"x": 1, "y": 2, "requestId": "r1"})
    assert a == spec_dedup_hash("t", {"x": 1, "y": 2, "requestId": "r2"})
    assert a != spec_dedup_hash("t", {"y": 2, "x": 1})  # no ksort, as JobSpecification
    assert job_dedup_hash("t", {"x": 1, "y": 2}) == job_dedup_hash("t", {"y": 2, "x": 1})
    assert spec_dedup_hash("t", {"x": 1, "z": 3}, ["z"]) == spec_dedup_hash("t", {"x": 1})


def test_compressed_record_matches_php_gzdeflate(php: PhpOracle) -> None:
    record = JobRecord("null", -1, "", {"text": "lorem ipsum " * 200}, 0, "a" * 32, "", 1)
    plain = encode_record(record)
    wrapped = encode_record(record, compress=True)
    assert len(wrapped) < len(plain)
    expected = php_serialize(StdClass({"blob": php.gzdeflate(plain), "enc": "gzip"}))
    assert wrapped == expected
    assert decode_record(wrapped) == record


def test_small_records_are_not_compressed() -> None:
    record = JobRecord("null", -1, "", {"n": 1}, 0, "a" * 32, "", 1)
    assert encode_record(record, compress=True) == encode_record(record)


@pytest.mark.parametrize(
    "blob",
    [
        b"N;",
        b"a:0:{}",
        b'a:1:{s:4:"type";s:4:"null";}',
        b'O:8:"stdClass":2:{s:4:"blob";s:3:"xyz";s:3:"enc";s:4:"gzip";}',
        b'O:8:"stdClass":1:{s:3:"enc";s:3:"bz2";}',
        WORKED_BLOB.replace(b"i:1700000000", b"s:3:\"abc\""),
        WORKED_BLOB[:-1],
    ],
)
def test_unreadable_records_raise_record_error(blob: bytes) -> None:
    with pytest.raises(RecordError):
        decode_record(blob)


def test_zip_bomb_is_refused() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = compressor.compress(b"\0" * (80 * 1024 * 1024)) + compressor.flush()
    wrapper = php_serialize(StdClass({"blob": bomb, "enc": "gzip"}))
    with pytest.raises(RecordError, match="inflates beyond"):
        decode_record(wrapper)


SAFE_KEYS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(alphabet=st.characters(categories=["Lu", "Ll"]), min_size=1, max_size=8),
)
PARAM_VALUES = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(), st.text(max_size=8)
    ),
    lambda children: st.dictionaries(SAFE_KEYS, children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=1, max_size=10), st.dictionaries(SAFE_KEYS, PARAM_VALUES, max_size=8))
def test_job_dedup_hash_matches_php(
    php: PhpOracle, job_type: str, params: dict[PhpKey, PhpValue]
) -> None:
    expected_hash, expected_blob = php.job_dedup(job_type, params)
    assert php_serialize(job_dedup_info(job_type, params)) == expected_blob
    assert job_dedup_hash(job_type, params) == expected_hash


# Top-level binary keys never start like a number: next to int keys, "1\xff" or " 0" make
# PHP's ksort comparison intransitive (php_ksort's docstring), the order zend_sort's whim.
BINARY_KEYS = st.binary(max_size=8).filter(lambda key: key[:1] not in b" \t\n\r\v\f+-.0123456789")
BINARY_PARAMS = st.dictionaries(
    st.one_of(SAFE_KEYS, BINARY_KEYS),
    st.recursive(
        st.one_of(PARAM_VALUES, st.binary(max_size=8)),
        lambda children: st.dictionaries(
            st.one_of(SAFE_KEYS, st.binary(max_size=6)), children, max_size=4
        ),
        max_leaves=12,
    ),
    max_size=8,
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=1, max_size=10), BINARY_PARAMS)
def test_dedup_hashes_of_binary_params_match_php(
    php: PhpOracle, job_type: str, params: dict[PhpKey, PhpValue]
) -> None:
    expected_hash, expected_blob = php.job_dedup(job_type, params)
    assert php_serialize(job_dedup_info(job_type, params)) == expected_blob
    assert job_dedup_hash(job_type, params) == expected_hash
    assert spec_dedup_hash(job_type, params) == php.spec_dedup(job_type, params)[0]


def test_dedup_hash_of_non_utf8_key_matches_php(php: PhpOracle) -> None:
    # Params as a pop with binary_strings=True reads them from MediaWiki's bytes.
    raw = b'a:3:{s:1:"z";i:1;s:2:"\xff\xfe";s:1:"\x80";s:1:"a";a:1:{s:1:"\xe9";i:2;}}'
    params = php_unserialize(raw, binary_strings=True)
    assert isinstance(params, dict)
    expected_hash, expected_blob = php.job_dedup("t", params)
    assert expected_blob == (
        b'a:2:{s:4:"type";s:1:"t";s:6:"params";a:3:{s:1:"a";a:1:{s:1:"\xe9";i:2;}'
        b's:1:"z";i:1;s:2:"\xff\xfe";s:1:"\x80";}}'
    )
    assert job_dedup_hash("t", params) == expected_hash
    assert spec_dedup_hash("t", params) == php.spec_dedup("t", params)[0]


def test_volatile_params_given_as_bytes_are_dropped_like_php(php: PhpOracle) -> None:
    params: dict[PhpKey, PhpValue] = {b"requestId": "r1", "a": 1, b"skip": 2}
    assert job_dedup_hash("t", params) == php.job_dedup("t", params)[0]
    assert job_dedup_hash("t", params) == job_dedup_hash("t", {"a": 1, "skip": 2})
    assert spec_dedup_hash("t", params, ["skip"]) == php.spec_dedup("t", params, ["skip"])[0]
    # unset($params["5"]) removes the int key 5 as well.
    numbered: dict[PhpKey, PhpValue] = {5: 1, "a": 2}
    assert spec_dedup_hash("t", numbered, ["5"]) == php.spec_dedup("t", numbered, ["5"])[0]
    assert spec_dedup_hash("t", numbered, ["5"]) == spec_dedup_hash("t", {"a": 2})


def test_record_with_binary_params_round_trips_when_read_as_binary() -> None:
    params = b'a:2:{s:2:"\xff\xfe";s:1:"\x80";s:4:"page";a:1:{s:1:"\xe9";i:1;}}'
    blob = WORKED_BLOB.replace(
        WORKED_BLOB[WORKED_BLOB.index(b"a:4:{") : WORKED_BLOB.index(b"}") + 1], params
    )
    record = decode_record(blob, binary_strings=True)
    assert record.params == {b"\xff\xfe": b"\x80", "page": {b"\xe9": 1}}
    assert encode_record(record) == blob
    assert _decode_general(blob, True) == record
    with pytest.raises(RecordError, match="UTF-8"):  # text-only readers refuse it, keys too
        decode_record(blob)


def test_records_read_back_by_php_unserialize() -> None:
    # What we write is plain PHP: our strict reader (PHP's subset) reads it field by field.
    record = JobRecord("x", 0, "T", {"a": [1, 2]}, "1700000000", "b" * 32, "", 5)
    decoded = php_unserialize(encode_record(record))
    assert isinstance(decoded, dict)
    assert list(decoded) == [
        "type", "namespace", "title", "params", "rtimestamp", "uuid", "sha1", "timestamp"
    ]


RECORD_PARAMS = st.dictionaries(
    st.one_of(st.text(max_size=6), st.integers(-5, 5)), PARAM_VALUES, max_size=6
)


RECORDS = st.builds(
    JobRecord,
    type=st.text(min_size=1, max_size=12),
    namespace=st.integers(-(2**40), 2**40),
    title=st.text(max_size=12),
    params=RECORD_PARAMS,
    rtimestamp=st.one_of(st.integers(0, 2**40), st.integers(1, 2**40).map(str)),
    uuid=st.just("a" * 32),
    sha1=st.sampled_from(["", "j66c9icc7d92im135tkwc7xxefhkynh"]),
    timestamp=st.integers(0, 2**40),
)


@settings(max_examples=500, deadline=None)
@given(RECORDS, st.booleans())
def test_fast_and_general_record_readers_agree(record: JobRecord, compress: bool) -> None:
    blob = encode_record(record, compress=compress)
    if not compress:  # the envelope writer equals serializing the whole PHP array
        assert blob == php_serialize(record.to_php())
    fast, general = decode_record(blob), _decode_general(blob, False)
    # Compared through their bytes (NaN params are unequal to themselves) and field types.
    assert encode_record(fast, compress=compress) == blob
    assert encode_record(general, compress=compress) == blob
    assert type(fast.rtimestamp) is type(general.rtimestamp) is type(record.rtimestamp)


@pytest.mark.parametrize(
    "blob",
    [
        WORKED_BLOB.replace(b's:4:"uuid";s:32:', b's:4:"uuid";s:33:'),
        WORKED_BLOB.replace(b'i:1700000000;}', b"i:1700000000;}x"),
        WORKED_BLOB.replace(b's:5:"lives";i:1;', b's:5:"lives";i:1'),
        WORKED_BLOB.replace(b's:4:"sha1";s:31:', b's:4:"sha1";s:30:'),
    ],
)
def test_fast_reader_never_accepts_what_the_general_one_refuses(blob: bytes) -> None:
    with pytest.raises(RecordError):
        _decode_general(blob, False)
    with pytest.raises(RecordError):
        decode_record(blob)
