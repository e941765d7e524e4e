"""Run a command on the first reachable of several Redis servers (the PHP service's
``RedisJobService::redisCmdHA``): the aggregator servers that hold the ready-queue map and the
chron pool lock.

Servers are tried in the configured order and the first success wins; this is fail-over, not
replication, as in PHP. A server whose connection failed is skipped for ``down_for`` seconds
while another one is available; when every server is marked down they are all tried again
rather than giving up, because a daemon can do nothing useful without them (the PHP service
gave up for 30 s).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import redis

from mwjobs.errors import QueueError, QueueUnavailable
from mwjobs.queues.redis.connection import UNREACHABLE, error_class, make_client
from mwjobs.queues.redis.endpoint import RedisEndpoint

__all__ = ["RedisFailover"]

log = logging.getLogger(__name__)

T = TypeVar("T")
DOWN_FOR = 30.0  # seconds a server that failed to connect is skipped (PHP's value)

# Errors after which the server is presumed down, not merely refusing one command.


class _Server:
    """One server's lazily made client and the time until which it counts as down."""

    def __init__(self, endpoint: RedisEndpoint) -> None:
        self.endpoint = endpoint
        self.down_until = 0.0
        self._client: redis.Redis | None = None

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = make_client(self.endpoint)
        return self._client

    def reset(self) -> None:
        """Drop the connection (PHP's ``unset($this->conns[$server])``): a half-read reply
        must never be mistaken for the next command's."""
        if self._client is not None:
            self._client.close()
            self._client = None


class RedisFailover:
    """Commands on the first reachable server of ``endpoints``. ``on_error`` is called with
    each failing server's display name (the daemons count ``redis-error.<host>``)."""

    def __init__(
        self,
        endpoints: Sequence[RedisEndpoint],
        *,
        down_for: float = DOWN_FOR,
        monotonic: Callable[[], float] = time.monotonic,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("RedisFailover needs at least one server")
        self.servers = [_Server(endpoint) for endpoint in endpoints]
        self.down_for = down_for
        self.on_error = on_error
        self._monotonic = monotonic

    def __repr__(self) -> str:
        names = ", ".join(server.endpoint.display for server in self.servers)
        return f"<RedisFailover {names}>"

    def run(self, operation: str, command: Callable[[redis.Redis], T]) -> T:
        """``command(client)`` on the first server that answers; QueueError (naming every
        server tried and its error) when none does. ``operation`` names it in messages."""
        errors: list[str] = []
        kind: type[QueueError] = QueueUnavailable  # unless some server answered with an error
        for server in self._candidates():
            try:
                return command(server.client)
            except (redis.RedisError, OSError) as exc:
                self._failed(server, operation, exc)
                errors.append(f"{server.endpoint.display}: {exc}")
                if error_class(exc) is QueueError:
                    kind = QueueError
        raise kind(f"Could not execute {operation} on any server ({'; '.join(errors)})")

    def _candidates(self) -> list[_Server]:
        now = self._monotonic()
        up = [server for server in self.servers if server.down_until <= now]
        return up or list(self.servers)

    def _failed(self, server: _Server, operation: str, exc: Exception) -> None:
        name = server.endpoint.display
        server.reset()
        if isinstance(exc, UNREACHABLE):
            server.down_until = self._monotonic() + self.down_for
        log.error("Redis error: %s (%s on %s)", exc, operation, name)
        if self.on_error is not None:
            self.on_error(name)

    def close(self) -> None:
        """Close every connection; later commands reconnect."""
        for server in self.servers:
            server.reset()
