"""The de-duplication hash MediaWiki stores in a record's ``sha1`` field.

``base36(sha1(serialize(dedup info)))``, zero-padded to 31 characters. The dedup info is
``{type, params}`` with the volatile params removed. Two flavours exist:

* ``Job`` objects (what MediaWiki's own code mostly pushes) ``ksort`` the params;
* ``JobSpecification`` keeps the insertion order and also drops the params named in
  ``removeDuplicatesIgnoreParams`` (its ``getDeduplicationInfo`` has no ``ksort``: the two
  can disagree).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from mwjobs.codec.php import PhpKey, PhpValue, php_array_key, php_ksort, php_serialize

__all__ = [
    "VOLATILE_PARAMS",
    "base36_sha1",
    "job_dedup_hash",
    "job_dedup_info",
    "spec_dedup_hash",
    "spec_dedup_info",
]

# Params that never make two jobs different (Job::getDeduplicationInfo removes them).
VOLATILE_PARAMS = ("rootJobSignature", "rootJobTimestamp", "jobReleaseTimestamp", "requestId")

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
# Every two-digit base-36 string, by value: converting two digits per division halves the
# big-int divisions of each dedup hash (about 1 µs of a push with removeDuplicates).
_DIGIT_PAIRS = [high + low for high in _DIGITS for low in _DIGITS]


def base36_sha1(data: bytes) -> str:
    """``Wikimedia\\base_convert(sha1(data), 16, 36, 31)``."""
    return _base36_31(int.from_bytes(hashlib.sha1(data).digest(), "big"))


def _base36_31(number: int) -> str:
    """``number`` (at most 160 bits) in base 36, zero-padded to 31 digits."""
    pairs: list[str] = []
    while number:
        number, remainder = divmod(number, 36 * 36)
        pairs.append(_DIGIT_PAIRS[remainder])
    # The top pair may start with a 0 (31 digits take 16 pairs): strip, then pad.
    return "".join(reversed(pairs)).lstrip("0").rjust(31, "0")


def _key_forms(names: Iterable[str]) -> frozenset[PhpKey]:
    """Every Python key PHP's ``unset($params[$name])`` removes for these names: the name,
    its bytes (``b"requestId"`` is ``"requestId"`` in PHP) and its int form (``"5"``)."""
    return frozenset(
        form for name in names for form in (name, name.encode("utf-8"), php_array_key(name))
    )


_VOLATILE_KEYS = _key_forms(VOLATILE_PARAMS)


def _without(
    params: Mapping[PhpKey, PhpValue], dropped: frozenset[PhpKey]
) -> dict[PhpKey, PhpValue]:
    return {key: value for key, value in params.items() if key not in dropped}


def job_dedup_info(job_type: str, params: Mapping[PhpKey, PhpValue]) -> dict[PhpKey, PhpValue]:
    """``Job::getDeduplicationInfo``: type and ksorted params without the volatile ones."""
    return {"type": job_type, "params": php_ksort(_without(params, _VOLATILE_KEYS))}


def spec_dedup_info(
    job_type: str, params: Mapping[PhpKey, PhpValue], ignore_params: Iterable[str] = ()
) -> dict[PhpKey, PhpValue]:
    """``JobSpecification::getDeduplicationInfo``: like Job's but unsorted, and without the
    params listed in ``removeDuplicatesIgnoreParams``."""
    dropped = (_key_forms(ignore_params) | _VOLATILE_KEYS) if ignore_params else _VOLATILE_KEYS
    kept = _without(params, dropped)
    return {"type": job_type, "params": kept}


def job_dedup_hash(job_type: str, params: Mapping[PhpKey, PhpValue]) -> str:
    """The ``sha1`` field of a record pushed as a ``Job`` object."""
    return base36_sha1(php_serialize(job_dedup_info(job_type, params)))


def spec_dedup_hash(
    job_type: str, params: Mapping[PhpKey, PhpValue], ignore_params: Iterable[str] = ()
) -> str:
    """The ``sha1`` field of a record pushed as a ``JobSpecification``."""
    return base36_sha1(php_serialize(spec_dedup_info(job_type, params, ignore_params)))
