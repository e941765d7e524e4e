"""Identifiers MediaWiki uses around jobs: job and request IDs, DB domains and wiki IDs,
queue-ID JSON, ``rawurlencode``, and MediaWiki timestamps."""

from __future__ import annotations

import calendar
import json
import os
import re
import secrets
import time
from urllib.parse import quote, unquote_to_bytes

from mwjobs.errors import RecordError

__all__ = [
    "domain_to_wiki_id",
    "make_domain",
    "mw_timestamp",
    "new_job_id",
    "new_request_id",
    "parse_domain",
    "parse_queue_id",
    "php_json_encode",
    "queue_id_json",
    "rawurldecode",
    "rawurlencode",
    "unix_from_mw_timestamp",
]

# The schema name MediaWiki's installer uses by default; such wikis keep the short wiki ID.
DEFAULT_SCHEMA = "mediawiki"


def new_job_id() -> str:
    """A job ID as ``GlobalIdGenerator::newRawUUIDv4``: 32 lowercase hex chars (UUID v4).

    Same bits as ``uuid.uuid4().hex`` without building a UUID object (push hot path).
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # variant 10xx
    return raw.hex()


def new_request_id() -> str:
    """A request ID in MediaWiki's shape: 24 lowercase hex chars."""
    return secrets.token_hex(12)


# Python escapes DEL (0x7f) as \u007f, PHP writes it raw; an escape is only real when
# preceded by an even number of backslashes.
_ESCAPED_DEL = re.compile(r"(?<!\\)((?:\\\\)*)\\u007f")


def php_json_encode(value: object) -> str:
    """``json_encode($value)`` with PHP's default flags: compact, ``\\/``, ``\\uXXXX``."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/")
    return _ESCAPED_DEL.sub(lambda match: match.group(1) + "\x7f", text)


def queue_id_json(job_type: str, domain: str) -> str:
    """The queue ID: a member of ``s-queuesWithJobs`` and the chron's handle of a queue."""
    return php_json_encode([job_type, domain])


def parse_queue_id(text: str | bytes) -> tuple[str, str]:
    """(job type, domain) from a queue ID; :class:`RecordError` if it is not one."""
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordError(f"queue ID {text!r} is not JSON: {exc}") from None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(part, str) and part for part in value)
    ):
        raise RecordError(f"queue ID {text!r} is not a [type, domain] pair of strings")
    return value[0], value[1]


def rawurlencode(text: str) -> str:
    """PHP ``rawurlencode`` (RFC 3986): keep ``A-Za-z0-9-_.~``, ``%XX`` the other bytes."""
    return quote(text.encode("utf-8"), safe="")


def rawurldecode(text: str) -> str:
    """PHP ``rawurldecode`` (``+`` stays ``+``)."""
    return unquote_to_bytes(text).decode("utf-8", "surrogateescape")


def _escape_domain_part(part: str) -> str:
    return part.replace("?", "??").replace("-", "?h")


def _unescape_domain_part(part: str) -> str:
    return re.sub(r"\?\?|\?h", lambda m: "?" if m.group() == "??" else "-", part)


def make_domain(database: str, schema: str | None = None, prefix: str = "") -> str:
    """``DatabaseDomain::getId``: ``db[-schema][-prefix]`` with ``-``/``?`` escaped."""
    parts = [database]
    if schema is not None:
        parts.append(schema)
    if prefix or schema is not None:
        parts.append(prefix)
    return "-".join(_escape_domain_part(part) for part in parts)


def parse_domain(domain: str) -> tuple[str, str | None, str]:
    """``DatabaseDomain::newFromId``: (database, schema or None, table prefix)."""
    parts = [_unescape_domain_part(part) for part in domain.split("-")]
    if len(parts) == 1:
        return parts[0], None, ""
    if len(parts) == 2:
        return parts[0], None, parts[1]
    if len(parts) == 3:
        return parts[0], parts[1] or None, parts[2]
    raise RecordError(f"DB domain {domain!r} has more than three parts")


def domain_to_wiki_id(domain: str) -> str:
    """``WikiMap::getWikiIdFromDbDomain``: the wiki ID that prefixes the Redis keys."""
    database, schema, prefix = parse_domain(domain)
    if schema is not None and schema != DEFAULT_SCHEMA:
        return f"{database}-{schema}-{prefix}"
    if prefix:
        return f"{database}-{prefix}"
    return database


def mw_timestamp(unix: float) -> str:
    """TS_MW: the 14-digit UTC timestamp MediaWiki stores (``20240102030405``)."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(int(unix)))


_TS_UNIX = re.compile(r"-?[0-9]{1,13}(?:\.[0-9]+)?")
_TS_MW = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})")
_TS_DB_OR_ISO = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[ T]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?Z?"
)


def unix_from_mw_timestamp(value: int | str) -> int:
    """UNIX seconds from the timestamp forms ``wfTimestamp`` reads: UNIX (int or up to 13
    digits), TS_MW (14 digits), TS_DB and ISO 8601 in UTC. :class:`RecordError` otherwise."""
    if isinstance(value, bool):
        raise RecordError(f"{value!r} is not a timestamp")
    if isinstance(value, int):
        return value
    text = value.strip()
    if _TS_UNIX.fullmatch(text):
        return int(float(text)) if "." in text else int(text)
    match = _TS_MW.fullmatch(text) or _TS_DB_OR_ISO.fullmatch(text)
    if match is None:
        raise RecordError(f"{value!r} is not a timestamp MediaWiki understands")
    fields = tuple(int(part) for part in match.groups())
    try:
        time.strptime("".join(f"{part:02d}" for part in fields), "%Y%m%d%H%M%S")
    except ValueError:
        raise RecordError(f"{value!r} is not a valid date and time") from None
    return calendar.timegm((*fields, 0, 0, 0))
