"""Where a Redis server is: :class:`RedisEndpoint` and the parser for the ways to write one.

Accepted forms (the first four are what the PHP jobrunner's ``redisConfig`` server lists and
MediaWiki's ``redisServer`` use; the URLs are redis-py's):

* ``host`` (port 6379), ``host:port``, ``[v6addr]:port``, a bare IPv6 address (``::1``);
* ``/path/to.sock`` or ``unix:///path/to.sock?db=N`` (a Unix socket);
* ``redis://[user:pass@]host[:port][/db]`` and ``rediss://…`` (TLS).

This module is pure (no redis-py import) so the config loader can use it cheaply.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from mwjobs.errors import ConfigError

__all__ = ["RedisEndpoint", "parse_redis_endpoint"]

DEFAULT_PORT = 6379
FORMS = (
    "host, host:port, [ipv6]:port, /path/to.sock, unix:///path/to.sock?db=N, "
    "redis://[user:pass@]host:port/db or rediss://… for TLS"
)
# PHP RedisConnectionPool's rules for server strings, restated.
_BRACKETED = re.compile(r"^\[([^\]]+)\](?::(\d*))?$")
_HOST_PORT = re.compile(r"^([^:\[\]]+):([^:]*)$")
_HOST_CHARS = re.compile(r"^[A-Za-z0-9._~%-]+$")


@dataclasses.dataclass(frozen=True)
class RedisEndpoint:
    """One Redis server and how to talk to it. ``host`` is ignored when ``unix_socket`` is
    set. The password never appears in ``repr`` or :attr:`display`."""

    host: str
    port: int = DEFAULT_PORT
    unix_socket: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    tls: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.unix_socket is None and not self.host:
            raise ConfigError("a Redis endpoint needs a host or a unix_socket path")
        if not 0 < self.port < 65536:
            raise ConfigError(f"Redis port {self.port} is out of range; use 1-65535")
        if self.db < 0:
            raise ConfigError(f"Redis database number {self.db} is negative; use 0 or more")
        if self.tls and self.unix_socket is not None:
            raise ConfigError("TLS over a Unix socket is not supported; drop tls or the socket")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ConfigError("Redis timeouts must be positive numbers of seconds")

    @property
    def url(self) -> str:
        """The endpoint as a URL :func:`parse_redis_endpoint` reads back to the same
        endpoint, password left out (it travels apart, see ``BackendLocation``)."""
        user = f"{quote(self.username, safe='')}@" if self.username else ""
        if self.unix_socket is not None:
            query = f"?db={self.db}" if self.db else ""
            return f"unix://{user}{quote(self.unix_socket)}{query}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{user}{host}:{self.port}/{self.db}"

    @property
    def display(self) -> str:
        """A name for log and error messages: ``host:port[/db]``, never credentials."""
        if self.unix_socket is not None:
            where = f"unix:{self.unix_socket}"
        elif ":" in self.host:
            where = f"[{self.host}]:{self.port}"
        else:
            where = f"{self.host}:{self.port}"
        if self.tls:
            where = f"tls:{where}"
        return f"{where}/{self.db}" if self.db else where


def parse_redis_endpoint(
    text: str, *, password: str | None = None, username: str | None = None
) -> RedisEndpoint:
    """Parse one server string (see the module docstring for the forms).

    ``password``/``username`` are the defaults from elsewhere in the config (jobrunner's
    ``redisConfig.password``); credentials inside a URL take precedence, as in redis-py.
    Raises ConfigError naming the text (password masked) and the accepted forms.
    """
    value = text.strip()
    try:
        if not value:
            raise _Bad("it is empty")
        if "://" in value:
            return _parse_url(value, password, username)
        if value.startswith("/"):
            return RedisEndpoint("", unix_socket=value, password=password, username=username)
        host, port = _split_host_port(value)
        return RedisEndpoint(host, port, password=password, username=username)
    except (_Bad, ConfigError) as exc:
        raise ConfigError(
            f"bad Redis server {_masked(value)!r}: {exc}; write it as one of: {FORMS}"
        ) from None


class _Bad(Exception):
    """An internal parse failure; turned into one ConfigError with the whole text."""


def _split_host_port(value: str) -> tuple[str, int]:
    if match := _BRACKETED.match(value):
        host, port = match.group(1), match.group(2)
        _check_ipv6(host)
        return host, _port(port) if port else DEFAULT_PORT
    if match := _HOST_PORT.match(value):
        return _check_host(match.group(1)), _port(match.group(2))
    if value.count(":") >= 2:  # a bare IPv6 address, as PHP treats it: default port
        _check_ipv6(value)
        return value, DEFAULT_PORT
    return _check_host(value), DEFAULT_PORT


def _check_host(host: str) -> str:
    if not _HOST_CHARS.match(host):
        raise _Bad(f"{host!r} is not a host name or address")
    return host


def _check_ipv6(host: str) -> None:
    try:
        ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        raise _Bad(f"{host!r} is not an IPv6 address") from None


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise _Bad(f"port {raw!r} is not a number from 1 to 65535")
    return int(raw)


def _db(raw: str) -> int:
    if not raw.isdigit():
        raise _Bad(f"database {raw!r} is not a non-negative integer")
    return int(raw)


def _parse_url(value: str, password: str | None, username: str | None) -> RedisEndpoint:
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss", "unix"):
        raise _Bad(f"scheme {parts.scheme!r} is not redis, rediss or unix")
    db = _query_db(parts.query)
    if parts.password is not None:
        password = unquote(parts.password)
    if parts.username:
        username = unquote(parts.username)
    if scheme == "unix":
        if not parts.path.startswith("/"):
            raise _Bad("a unix:// URL needs an absolute socket path (unix:///path/to.sock)")
        return RedisEndpoint(
            "", unix_socket=unquote(parts.path), db=db or 0, password=password, username=username
        )
    host = parts.hostname
    if not host:
        raise _Bad("the URL has no host")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise _Bad("the URL's port is not a number from 1 to 65535") from None
    path_db = _db(parts.path.strip("/")) if parts.path.strip("/") else None
    if path_db is not None and db is not None and path_db != db:
        raise _Bad(f"the path says database {path_db} but db= says {db}")
    if ":" in host:
        _check_ipv6(host)
    else:
        _check_host(host)
    return RedisEndpoint(
        host,
        port,
        db=path_db if path_db is not None else db or 0,
        username=username,
        password=password,
        tls=scheme == "rediss",
    )


def _query_db(query: str) -> int | None:
    db: int | None = None
    for key, val in parse_qsl(query, keep_blank_values=True):
        if key != "db":
            raise _Bad(f"unknown URL option {key!r} (only db= is understood)")
        db = _db(val)
    return db


def _masked(value: str) -> str:
    """The text with a URL password replaced by ``***``, safe to put in a message."""
    if "://" not in value:
        return value
    try:
        parts = urlsplit(value)
        secret = parts.password
    except ValueError:
        return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", value)
    if not secret:
        return value
    netloc = parts.netloc.replace(f":{secret}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
