"""The job record MediaWiki stores in ``h-data``: a PHP array of eight fields, in order.

``type, namespace, title, params, rtimestamp, uuid, sha1, timestamp``
(``JobQueueRedis::getNewJobFields``). ``rtimestamp`` is an int for ``Job`` objects and a
numeric string for ``JobSpecification`` ones; both are read and written back as found.
Records may come wrapped in a ``stdClass`` holding raw-DEFLATE data (queue option
``compression => gzip``); the wrapper is read always and written when asked.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from mwjobs.codec.php import (
    DEFAULT_MAX_SIZE,
    PhpKey,
    PhpValue,
    StdClass,
    php_serialize,
    php_unserialize,
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


def encode_record(record: JobRecord, *, compress: bool = False) -> bytes:
    """The ``h-data`` bytes MediaWiki would write for ``record``.

    With ``compress`` (MediaWiki's ``compression => gzip``) a blob of at least 1024 bytes
    is wrapped as ``stdClass{blob: gzdeflate(blob), enc: "gzip"}`` when that is shorter.
    """
    blob = php_serialize(record.to_php())
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


def decode_record(blob: bytes, *, binary_strings: bool = False) -> JobRecord:
    """Read one ``h-data`` value (plain or gzip-wrapped); :class:`RecordError` if it is not
    a job record MediaWiki could read back."""
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
