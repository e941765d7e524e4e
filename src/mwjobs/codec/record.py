"""The job record MediaWiki stores in ``h-data``: a PHP array of eight fields, in order.

``type, namespace, title, params, rtimestamp, uuid, sha1, timestamp``
(``JobQueueRedis::getNewJobFields``). ``rtimestamp`` is an int for ``Job`` objects and a
numeric string for ``JobSpecification`` ones; both are read and written back as found.
Records may come wrapped in a ``stdClass`` holding raw-DEFLATE data (queue option
``compression => gzip``); the wrapper is read always and written when asked.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from mwjobs.codec.php import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_SIZE,
    PhpKey,
    PhpValue,
    StdClass,
    php_serialize,
    php_unserialize,
    php_unserialize_at,
)
from mwjobs.errors import RecordError

__all__ = ["COMPRESSION_THRESHOLD", "JobRecord", "decode_record", "encode_record"]

RECORD_FIELDS = ("type", "namespace", "title", "params", "rtimestamp", "uuid", "sha1", "timestamp")
# MediaWiki only tries compression for blobs of at least this many bytes.
COMPRESSION_THRESHOLD = 1024
# A compressed record may not inflate beyond this (a "zip bomb" is a corrupt record).
MAX_INFLATED_SIZE = DEFAULT_MAX_SIZE


@dataclass(frozen=True)
class JobRecord:
    """One decoded ``h-data`` value. ``params`` holds the job's full parameter map."""

    type: str
    namespace: int
    title: str
    params: dict[PhpKey, PhpValue] = field(hash=False)
    rtimestamp: int | str
    uuid: str
    sha1: str
    timestamp: int

    @property
    def release_timestamp(self) -> int | None:
        """The release time as UNIX seconds, or None when the job was not delayed."""
        try:
            value = int(self.rtimestamp)
        except ValueError:
            return None
        return value if value > 0 else None

    def to_php(self) -> dict[PhpKey, PhpValue]:
        """The PHP array MediaWiki serializes, fields in MediaWiki's order."""
        return {
            "type": self.type,
            "namespace": self.namespace,
            "title": self.title,
            "params": self.params,
            "rtimestamp": self.rtimestamp,
            "uuid": self.uuid,
            "sha1": self.sha1,
            "timestamp": self.timestamp,
        }


def _deflate(data: bytes) -> bytes:
    # PHP gzdeflate(): raw DEFLATE (no zlib or gzip header) at zlib's default level 6.
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


# serialize() of the 8-field array with the field names as constants, in MediaWiki's
# order: one %b slot per serialized field value.
_RECORD_TEMPLATE = b"a:8:{" + b"".join(php_serialize(name) + b"%b" for name in RECORD_FIELDS) + b"}"


def _serialize_record(record: JobRecord) -> bytes:
    """``serialize()`` of the 8-field array: only the values are serialized, into a constant
    template (push hot path; same bytes as ``php_serialize(record.to_php())``)."""
    return _RECORD_TEMPLATE % (
        php_serialize(record.type),
        php_serialize(record.namespace),
        php_serialize(record.title),
        php_serialize(record.params),
        php_serialize(record.rtimestamp),
        php_serialize(record.uuid),
        php_serialize(record.sha1),
        php_serialize(record.timestamp),
    )


def encode_record(record: JobRecord, *, compress: bool = False) -> bytes:
    """The ``h-data`` bytes MediaWiki would write for ``record``.

    With ``compress`` (MediaWiki's ``compression => gzip``) a blob of at least 1024 bytes
    is wrapped as ``stdClass{blob: gzdeflate(blob), enc: "gzip"}`` when that is shorter.
    """
    blob = _serialize_record(record)
    if compress and len(blob) >= COMPRESSION_THRESHOLD:
        wrapped = php_serialize(StdClass({"blob": _deflate(blob), "enc": "gzip"}))
        if len(wrapped) < len(blob):
            return wrapped
    return blob


def _inflate(wrapper: StdClass) -> bytes:
    props = wrapper.properties
    if props.get("enc") != "gzip":
        raise RecordError("compressed record wrapper without enc=gzip")
    payload = props.get("blob")
    if isinstance(payload, str):  # valid UTF-8 by chance: back to the raw bytes
        payload = payload.encode("utf-8")
    if not isinstance(payload, bytes):
        raise RecordError("compressed record wrapper without a blob")
    inflater = zlib.decompressobj(-15)
    try:
        data = inflater.decompress(payload, MAX_INFLATED_SIZE)
    except zlib.error as exc:
        raise RecordError(f"compressed record does not inflate: {exc}") from None
    if inflater.unconsumed_tail:
        raise RecordError(f"compressed record inflates beyond {MAX_INFLATED_SIZE} bytes")
    return data


def _field(record: Mapping[PhpKey, PhpValue], name: str) -> PhpValue:
    if name not in record:
        raise RecordError(f"job record has no {name!r} field")
    return record[name]


def _int_field(record: Mapping[PhpKey, PhpValue], name: str) -> int:
    value = _field(record, name)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RecordError(f"job record field {name!r} is not an integer: {value!r}")
    try:
        return int(value)
    except ValueError:
        raise RecordError(f"job record field {name!r} is not an integer: {value!r}") from None


def _str_field(record: Mapping[PhpKey, PhpValue], name: str) -> str:
    value = _field(record, name)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # PHP would read an int title or sha1 as a string just the same
    if not isinstance(value, str):
        raise RecordError(f"job record field {name!r} is not a string: {value!r}")
    return value


def _params(record: Mapping[PhpKey, PhpValue]) -> dict[PhpKey, PhpValue]:
    value = _field(record, "params")
    if isinstance(value, list):  # an empty or list-shaped PHP array
        return dict(enumerate(value))
    if not isinstance(value, dict):
        raise RecordError(f"job record params are not an array: {value!r}")
    return value


def _rtimestamp(record: Mapping[PhpKey, PhpValue]) -> int | str:
    value = record.get("rtimestamp", 0)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RecordError(f"job record rtimestamp is not a number: {value!r}")
    if isinstance(value, str) and value:
        try:
            float(value)
        except ValueError:
            raise RecordError(f"job record rtimestamp is not numeric: {value!r}") from None
    return value


# The envelope MediaWiki always writes around params, matched in four steps so a pop
# parses only the params token by token (a third of a record's tokens); anything else
# (compressed records, other field orders or types) takes the general path.
_TYPE = re.compile(rb'a:8:\{s:4:"type";s:([0-9]{1,9}):"')
_TITLE = re.compile(rb'";s:9:"namespace";i:(-?[0-9]{1,18});s:5:"title";s:([0-9]{1,9}):"')
_PARAMS = re.compile(rb'";s:6:"params";')
_REST = re.compile(
    rb's:10:"rtimestamp";(?:i:(-?[0-9]{1,18})|s:([0-9]{1,2}):"([0-9]{1,18})");'
    rb's:4:"uuid";s:32:"([0-9a-f]{32})";s:4:"sha1";s:([0-9]{1,2}):"([0-9a-z]*)";'
    rb's:9:"timestamp";i:(-?[0-9]{1,18});\}'
)


def _head(blob: bytes) -> tuple[str, int, str, int] | None:
    """(type, namespace, title, where params start) of the usual envelope, else None."""
    head = _TYPE.match(blob)
    middle = head and _TITLE.match(blob, head.end() + int(head[1]))
    if head is None or middle is None:
        return None
    title_end = middle.end() + int(middle[2])
    params_at = _PARAMS.match(blob, title_end)
    if params_at is None:
        return None
    try:
        job_type = blob[head.end() : head.end() + int(head[1])].decode("utf-8")
        title = blob[middle.end() : title_end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return job_type, int(middle[1]), title, params_at.end()


def _decode_common(blob: bytes, binary_strings: bool) -> JobRecord | None:
    """The record if it has MediaWiki's usual shape, else None (use the general path)."""
    head = _head(blob)
    if head is None:
        return None
    job_type, namespace, title, params_at = head
    # The params sit one level down in the record, as in the general path.
    params, rest_at = php_unserialize_at(
        blob, params_at, max_depth=DEFAULT_MAX_DEPTH - 1, binary_strings=binary_strings
    )
    rest = _REST.fullmatch(blob, rest_at)
    if rest is None or not job_type or not isinstance(params, dict | list):
        return None
    rtime_int, rtime_len, rtime_text, uuid, sha1_len, sha1, timestamp = rest.groups()
    if (rtime_text is not None and len(rtime_text) != int(rtime_len)) or len(sha1) != int(
        sha1_len
    ):
        return None  # a declared length disagrees: let the strict general path judge
    return JobRecord(
        type=job_type,
        namespace=namespace,
        title=title,
        params=dict(enumerate(params)) if isinstance(params, list) else params,
        rtimestamp=int(rtime_int) if rtime_int is not None else rtime_text.decode("ascii"),
        uuid=uuid.decode("ascii"),
        sha1=sha1.decode("ascii"),
        timestamp=int(timestamp),
    )


def decode_record(blob: bytes, *, binary_strings: bool = False) -> JobRecord:
    """Read one ``h-data`` value (plain or gzip-wrapped); :class:`RecordError` if it is not
    a job record MediaWiki could read back."""
    if len(blob) <= MAX_INFLATED_SIZE:
        record = _decode_common(bytes(blob), binary_strings)
        if record is not None:
            return record
    return _decode_general(blob, binary_strings)


def _decode_general(blob: bytes, binary_strings: bool) -> JobRecord:
    """Any record PHP could read back: compressed, other key orders, string fields."""
    # The gzip wrapper's blob is binary by nature; only the wrapper may carry raw bytes.
    wrapped = bytes(blob[:2]) == b"O:"
    value = php_unserialize(blob, binary_strings=binary_strings or wrapped)
    if isinstance(value, StdClass):
        value = php_unserialize(_inflate(value), binary_strings=binary_strings)
    if not isinstance(value, dict):
        raise RecordError(f"job record is not a PHP array but {type(value).__name__}")
    job_type = _str_field(value, "type")
    if not job_type:
        raise RecordError("job record has an empty type")
    return JobRecord(
        type=job_type,
        namespace=_int_field(value, "namespace"),
        title=_str_field(value, "title"),
        params=_params(value),
        rtimestamp=_rtimestamp(value),
        uuid=_str_field(value, "uuid"),
        sha1=_str_field(value, "sha1") if "sha1" in value else "",
        timestamp=_int_field(value, "timestamp"),
    )
