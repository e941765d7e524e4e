"""Connections to a Redis server: the redis-py client for an endpoint, and what the server
is (its version)."""

from __future__ import annotations

import re
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.connection import SSLConnection, UnixDomainSocketConnection
from redis.retry import Retry

from mwjobs.errors import QueueError, QueueUnavailable
from mwjobs.queues.redis.endpoint import RedisEndpoint

__all__ = ["UNREACHABLE", "endpoint_of", "error_class", "make_client", "redis_version"]

# redis-py's errors that mean "the server cannot be reached now" (QueueUnavailable).
UNREACHABLE: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, OSError)


def error_class(exc: BaseException) -> type[QueueError]:
    """The error to raise for a redis-py error: QueueUnavailable when the server could not
    be reached, else QueueError (the server answered with an error)."""
    return QueueUnavailable if isinstance(exc, UNREACHABLE) else QueueError


def make_client(endpoint: RedisEndpoint) -> redis.Redis:
    # Only the address differs between a Unix socket and TCP (with or without TLS).
    where: dict[str, Any] = (
        {"unix_socket_path": endpoint.unix_socket}
        if endpoint.unix_socket is not None
        else {"host": endpoint.host, "port": endpoint.port, "ssl": endpoint.tls}
    )
    return redis.Redis(
        **where,
        db=endpoint.db,
        username=endpoint.username,
        password=endpoint.password,
        socket_connect_timeout=endpoint.connect_timeout,
        socket_timeout=endpoint.read_timeout,
        retry=Retry(NoBackoff(), 0),  # see the module docstring
    )


def redis_version(info: dict[str, Any]) -> tuple[int, ...]:
    """The server's version from ``INFO server`` as numbers, ``(0,)`` when unreadable."""
    found = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(info.get("redis_version", "")))
    if found is None:
        return (0,)
    return tuple(int(part) for part in found.groups() if part is not None)


def endpoint_of(client: redis.Redis) -> RedisEndpoint:
    """Where an existing client points, for messages (its password is never shown)."""
    pool = client.connection_pool
    kwargs: dict[str, Any] = pool.connection_kwargs
    unix = pool.connection_class is UnixDomainSocketConnection
    return RedisEndpoint(
        str(kwargs.get("host", "localhost")),
        int(kwargs.get("port", 6379)),
        unix_socket=str(kwargs["path"]) if unix else None,
        db=int(kwargs.get("db", 0) or 0),
        username=kwargs.get("username"),
        password=kwargs.get("password"),
        tls=issubclass(pool.connection_class, SSLConnection),
    )
