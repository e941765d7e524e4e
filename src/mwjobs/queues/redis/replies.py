"""Typed views of redis-py replies.

redis-py types most command results as ``Awaitable[Any] | Any`` (one client class serves
sync and async code), and some releases type a command more precisely than others. Reading
a reply through one of these functions gives the type the command returns on a
``decode_responses=False`` client, whatever hints the installed redis-py ships: the cast is
from ``object``, so it is never "redundant" and never needs a ``type: ignore``.
"""

from __future__ import annotations

from typing import cast

__all__ = ["byte_list", "byte_map", "byte_set", "optional_bytes", "popped_item", "scored_list"]


def byte_list(reply: object) -> list[bytes]:
    """LRANGE, ZRANGE, KEYS, HVALS."""
    return cast("list[bytes]", reply)


def byte_set(reply: object) -> set[bytes]:
    """SMEMBERS."""
    return cast("set[bytes]", reply)


def byte_map(reply: object) -> dict[bytes, bytes]:
    """HGETALL."""
    return cast("dict[bytes, bytes]", reply)


def optional_bytes(reply: object) -> bytes | None:
    """GET, GETSET, HGET."""
    return cast("bytes | None", reply)


def scored_list(reply: object) -> list[tuple[bytes, float]]:
    """ZRANGE ... WITHSCORES."""
    return cast("list[tuple[bytes, float]]", reply)


def popped_item(reply: object) -> tuple[bytes, bytes] | None:
    """BLPOP: (list, item), or None when the wait timed out."""
    return cast("tuple[bytes, bytes] | None", reply)
