"""Wake-ups for new ready jobs: listen on the side channel mwjobs' pushes publish on.

MediaWiki's Redis layout has no blocking pop, so a consumer of its queues polls: the PHP
runner learns of new work from the chron's ready-queue map (once a second), a worker loop
by popping again. mwjobs' push script also ``PUBLISH``es the queue ID on
:func:`~mwjobs.queues.redis.wake_channel` when it stores ready jobs. A channel stores
nothing and MediaWiki never reads it, so the data stay exactly MediaWiki's; consumers that
listen (:class:`PushListener`) wake within a round trip of the push, and still find jobs
pushed by MediaWiki itself the old way (the map, or a slower poll), since those publish
nothing.
"""

from __future__ import annotations

import logging
import socket

import redis
from redis.client import PubSub

from mwjobs.codec import parse_queue_id
from mwjobs.errors import QueueError, RecordError
from mwjobs.queues.redis.connection import error_class, make_client
from mwjobs.queues.redis.endpoint import RedisEndpoint

__all__ = ["WAKE_CHANNEL", "PushListener", "wake_channel"]

log = logging.getLogger(__name__)

# The pub/sub channel (per database: channels are server-wide) on which mwjobs' pushes name
# the queue that got ready jobs. An mwjobs extension: MediaWiki never publishes there, so its
# pushes are still found through the chron's ready-queue map.
WAKE_CHANNEL = "mwjobs:jobqueue:wake"


def wake_channel(db: int) -> str:
    """The wake-up channel of database ``db``."""
    return f"{WAKE_CHANNEL}:{db}"


class PushListener:
    """A subscription to one server's wake-up channel. Connects on first use; every
    redis-py error leaves as :class:`QueueError` (drop the listener and make a new one)."""

    def __init__(self, endpoint: RedisEndpoint) -> None:
        self.endpoint = endpoint
        self.channel = wake_channel(endpoint.db)
        self._client: redis.Redis | None = None
        self._pubsub: PubSub | None = None

    def __repr__(self) -> str:
        return f"<PushListener {self.endpoint.display} {self.channel}>"

    @property
    def name(self) -> str:
        """The server's display name (the partition's name in a farm)."""
        return self.endpoint.display

    def _subscription(self) -> PubSub:
        if self._pubsub is None:
            self._client = make_client(self.endpoint)
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
            except (redis.RedisError, OSError) as exc:
                pubsub.close()
                raise self._error(exc) from exc
            self._pubsub = pubsub
        return self._pubsub

    def _error(self, exc: BaseException) -> QueueError:
        return error_class(exc)(f"Redis {self.endpoint.display}: listening on {self.channel} "
                          f"failed: {exc}")  # fmt: skip

    def fileno(self) -> int:
        """The subscription's socket, for a selector (subscribes first). After it turns
        readable, call :meth:`poll` to take every waiting message."""
        connection = self._subscription().connection
        sock: socket.socket | None = getattr(connection, "_sock", None)
        if sock is None:
            raise self._error(ConnectionError("not connected"))
        return sock.fileno()

    def poll(self, timeout: float = 0.0) -> set[tuple[str, str]]:
        """The (type, domain) queues named since the last call, waiting up to ``timeout``
        seconds for the first message; empty if none came."""
        pubsub = self._subscription()
        queues: set[tuple[str, str]] = set()
        try:
            message = pubsub.get_message(timeout=timeout)
            while message is not None:  # replies the parser already holds come first
                self._add(queues, message.get("data"))
                message = pubsub.get_message(timeout=0.0)
        except (redis.RedisError, OSError) as exc:
            raise self._error(exc) from exc
        return queues

    def _add(self, queues: set[tuple[str, str]], data: object) -> None:
        try:
            text = data.decode() if isinstance(data, bytes) else str(data)
            queues.add(parse_queue_id(text))
        except (RecordError, UnicodeDecodeError):  # someone else's message on our channel
            log.debug("%s: ignoring %r", self, data)

    def close(self) -> None:
        if self._pubsub is not None:
            self._pubsub.close()
            self._pubsub = None
        if self._client is not None:
            self._client.close()
            self._client = None
