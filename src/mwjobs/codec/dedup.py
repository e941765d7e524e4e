"""The de-duplication hash MediaWiki stores in a record's ``sha1`` field.

``base36(sha1(serialize(dedup info)))``, zero-padded to 31 characters. The dedup info is
``{type, params}`` with the volatile params removed. Two flavours exist:

* ``Job`` objects (what MediaWiki's own code mostly pushes) ``ksort`` the params;
* ``JobSpecification`` keeps the insertion order and also drops the params named in
  ``removeDuplicatesIgnoreParams`` (spec §14 item 17: the two can disagree).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from mwjobs.codec.php import PhpKey, PhpValue, php_ksort, php_serialize

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


def base36_sha1(data: bytes) -> str:
    """``Wikimedia\\base_convert(sha1(data), 16, 36, 31)``."""
    number = int(hashlib.sha1(data).hexdigest(), 16)
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 36)
        digits.append(_DIGITS[remainder])
    return "".join(reversed(digits)).rjust(31, "0")


def _without(params: Mapping[PhpKey, PhpValue], names: Iterable[str]) -> dict[PhpKey, PhpValue]:
    dropped = set(names)
    return {key: value for key, value in params.items() if key not in dropped}


def job_dedup_info(job_type: str, params: Mapping[PhpKey, PhpValue]) -> dict[PhpKey, PhpValue]:
    """``Job::getDeduplicationInfo``: type and ksorted params without the volatile ones."""
    return {"type": job_type, "params": php_ksort(_without(params, VOLATILE_PARAMS))}


def spec_dedup_info(
    job_type: str, params: Mapping[PhpKey, PhpValue], ignore_params: Iterable[str] = ()
) -> dict[PhpKey, PhpValue]:
    """``JobSpecification::getDeduplicationInfo``: like Job's but unsorted, and without the
    params listed in ``removeDuplicatesIgnoreParams``."""
    kept = _without(params, (*VOLATILE_PARAMS, *ignore_params))
    return {"type": job_type, "params": kept}


def job_dedup_hash(job_type: str, params: Mapping[PhpKey, PhpValue]) -> str:
    """The ``sha1`` field of a record pushed as a ``Job`` object."""
    return base36_sha1(php_serialize(job_dedup_info(job_type, params)))


def spec_dedup_hash(
    job_type: str, params: Mapping[PhpKey, PhpValue], ignore_params: Iterable[str] = ()
) -> str:
    """The ``sha1`` field of a record pushed as a ``JobSpecification``."""
    return base36_sha1(php_serialize(spec_dedup_info(job_type, params, ignore_params)))
