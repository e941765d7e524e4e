"""The private Redis is real, isolated and empty per test."""

from __future__ import annotations

import redis

from tests.servers import RedisServer


def test_private_redis_is_not_the_shared_one(redis_server: RedisServer) -> None:
    assert redis_server.port != 6379
    info = redis.Redis.from_url(redis_server.url).info("server")
    assert info["tcp_port"] == redis_server.port


def test_each_test_starts_empty(redis_client: redis.Redis) -> None:
    assert redis_client.dbsize() == 0
    redis_client.set("k", "v")
    assert redis_client.get("k") == b"v"


def test_unix_socket_reaches_the_same_server(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    redis_client.set("through", "tcp")
    via_socket = redis.Redis(unix_socket_path=str(redis_server.socket_path))
    assert via_socket.get("through") == b"tcp"
