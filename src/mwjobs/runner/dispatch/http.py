"""The ``http`` dispatcher: one POST per batch to MediaWiki, answered with the runJobs JSON.

Two modes (config ``dispatcher.mode``):

* ``rpc``: the URL template is the whole request, WMF's
  ``rpc/RunJobs.php?wiki=%(db)u&type=%(type)u&maxtime=%(maxtime)u`` (in WMF's
  operations-mediawiki-config);
* ``special``: MediaWiki's own ``Special:RunJobs`` (``includes/specials/SpecialRunJobs.php``).
  The query is signed as
  ``SpecialRunJobs::getQuerySignature`` checks it: HMAC-SHA1 with ``$wgSecretKey`` over
  ``wfArrayToCgi(ksort(params))``, with ``sigexpiry``; ``async=0`` and ``stats=1`` make
  MediaWiki run the jobs inline and print the JSON.

Each run is a thread doing one blocking exchange (stdlib ``http.client``: no dependency for
what is one POST and one response; the loop itself never blocks). Idle keep-alive connections
are pooled per host and reused, so many concurrent runs do not pay a TCP/TLS handshake each.
A finished thread writes a byte to a socket pair the loop's selector watches.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import os
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote_plus, unquote, urlsplit

from mwjobs import __version__
from mwjobs.config import HttpDispatcherConfig
from mwjobs.runner.dispatch.base import (
    Dispatcher,
    DispatchError,
    Run,
    RunOutcome,
    RunRequest,
    substitute,
)

__all__ = [
    "SIGNATURE_TTL",
    "ConnectionPool",
    "HttpDispatcher",
    "HttpRun",
    "array_to_cgi",
    "php_urlencode",
    "query_signature",
    "special_runjobs_params",
]

SIGNATURE_TTL = 60  # seconds a signed request stays valid: allows clock skew between hosts
MAX_IDLE_PER_HOST = 64
USER_AGENT = f"mwjobs-runner/{__version__}"
_DEFAULT_PORTS = {"http": 80, "https": 443}

PoolKey = tuple[str, str, int]


def php_urlencode(text: str) -> str:
    """PHP ``urlencode``: spaces as ``+``, everything but ``A-Za-z0-9-_.`` as ``%XX``
    (unlike Python's ``quote_plus``, ``~`` is encoded too)."""
    return quote_plus(text.encode("utf-8", "surrogateescape"), safe="").replace("~", "%7E")


def array_to_cgi(params: Mapping[str, str]) -> str:
    """MediaWiki's ``wfArrayToCgi`` for flat string maps: ``k=v`` joined by ``&``."""
    return "&".join(f"{php_urlencode(k)}={php_urlencode(v)}" for k, v in params.items())


def query_signature(params: Mapping[str, str], secret: str) -> str:
    """``SpecialRunJobs::getQuerySignature``: HMAC-SHA1 hex of the key-sorted query."""
    query = array_to_cgi(dict(sorted(params.items())))
    return hmac.new(secret.encode("utf-8"), query.encode("utf-8"), hashlib.sha1).hexdigest()


def special_runjobs_params(request: RunRequest, maxjobs: int, now: float) -> dict[str, str]:
    """The signed parameters of a ``Special:RunJobs`` request (without ``signature``)."""
    return {
        "title": "Special:RunJobs",
        "tasks": "jobs",
        "type": request.job_type,
        "maxtime": str(request.maxtime),
        "maxjobs": str(maxjobs),
        "async": "0",  # run inline and answer with the result, not 202 at once
        "stats": "1",  # print the JobRunner result as JSON instead of "Done"
        "sigexpiry": str(int(now) + SIGNATURE_TTL),
    }


@dataclass(frozen=True)
class _Target:
    """One request: where to connect, what to send, and what the logs may show."""

    scheme: str
    host: str
    port: int
    path: str  # path and query
    label: str  # no signature, no password
    authorization: str | None = None

    @property
    def key(self) -> PoolKey:
        return (self.scheme, self.host, self.port)


def _target(url: str, extra_query: str = "", shown_query: str = "") -> _Target:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or _DEFAULT_PORTS[parts.scheme]
    query = "&".join(q for q in (parts.query, extra_query) if q)
    shown = "&".join(q for q in (parts.query, shown_query) if q)
    path = parts.path or "/"
    netloc = parts.netloc.rpartition("@")[2]
    auth = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        auth = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
    label = f"POST {parts.scheme}://{netloc}{path}" + (f"?{shown}" if shown else "")
    return _Target(parts.scheme, host, port, path + (f"?{query}" if query else ""), label, auth)


def _no_wake() -> None:
    """Default wake-up: none (a caller that polls needs no signal)."""


class ConnectionPool:
    """Idle keep-alive connections per (scheme, host, port); thread-safe."""

    def __init__(self, max_idle: int = MAX_IDLE_PER_HOST) -> None:
        self.max_idle = max_idle
        self._idle: dict[PoolKey, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._tls: ssl.SSLContext | None = None

    def get(self, key: PoolKey, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection (and True) or a new, unconnected one (and False)."""
        with self._lock:
            idle = self._idle.get(key)
            conn = idle.pop() if idle else None
        if conn is None:
            return self.new(key, timeout), False
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn, True

    def new(self, key: PoolKey, timeout: float) -> http.client.HTTPConnection:
        """A new, unconnected connection."""
        scheme, host, port = key
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._ctx())
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _ctx(self) -> ssl.SSLContext:
        if self._tls is None:  # made once: loading the CA store is slow
            self._tls = ssl.create_default_context()
        return self._tls

    def put(self, key: PoolKey, conn: http.client.HTTPConnection) -> None:
        """Keep a connection whose response was read completely, for the next request."""
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if not self._closed and len(idle) < self.max_idle:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections; connections in use are closed when given back."""
        with self._lock:
            self._closed = True
            conns = [conn for idle in self._idle.values() for conn in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()


class _Failure(Exception):
    """A failed exchange, with the per-wiki error kind."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class HttpRun(Run):
    """One POST in a thread; :meth:`terminate` shuts its socket down to end it early."""

    def __init__(
        self,
        request: RunRequest,
        target: _Target,
        pool: ConnectionPool,
        wake: Callable[[], None],
    ) -> None:
        super().__init__(request, target.label)
        self.target = target
        self._pool = pool
        self._wake = wake
        self._conn: http.client.HTTPConnection | None = None
        self._aborted = False
        self._done = threading.Event()
        self._reported = False
        self._outcome: RunOutcome | None = None
        self._thread = threading.Thread(
            target=self._work, name=f"mwjobs-http-{request.domain}", daemon=True
        )
        self._thread.start()

    @property
    def wants_poll(self) -> bool:
        return self._done.is_set() and not self._reported

    def poll(self) -> RunOutcome | None:
        if not self._done.is_set():
            return None
        self._reported = True
        if self._outcome is None:  # the thread died of a BaseException
            died = "the request thread died"
            return RunOutcome("error", False, problem=died, error_kind="protocol")
        return self._outcome

    def _work(self) -> None:
        try:
            self._outcome = self._exchange()
        except _Failure as exc:
            # Cut by the runner at the wall limit: whatever broke, it was a timeout.
            kind = "timeout" if self._aborted else exc.kind
            self._outcome = RunOutcome(kind, False, problem=str(exc), error_kind=kind)
        except Exception as exc:  # a bug must not leave the slot busy forever
            self._outcome = RunOutcome("error", False, problem=repr(exc), error_kind="protocol")
        finally:
            self._done.set()
            self._wake()

    def _exchange(self) -> RunOutcome:
        try:
            status, body = self._post(fresh=False)
        except _Failure as exc:
            if exc.kind != "retry":
                raise
            status, body = self._post(fresh=True)
        if 200 <= status < 300:
            return RunOutcome(f"HTTP {status}", True, body)
        return RunOutcome(
            f"HTTP {status}", False, body, problem=f"HTTP status {status}", error_kind="status"
        )

    def _post(self, *, fresh: bool) -> tuple[int, bytes]:
        """One exchange. A kept-alive connection the server closed meanwhile fails with
        ``retry`` (the usual idle-timeout race) and is tried once on a fresh connection."""
        key, timeout = self.target.key, self.request.limit
        if fresh:
            conn, reused = self._pool.new(key, timeout), False
        else:
            conn, reused = self._pool.get(key, timeout)
        self._conn = conn
        try:
            self._connect(conn)
            status, body = self._send(conn, reused)
        except BaseException:
            conn.close()
            raise
        finally:
            self._conn = None
        if self._aborted:
            conn.close()
            raise _Failure("timeout", "aborted by the runner")
        if conn.sock is not None:  # the server did not close it: reusable
            self._pool.put(self.target.key, conn)
        return status, body

    def _connect(self, conn: http.client.HTTPConnection) -> None:
        if conn.sock is not None:
            return
        try:
            conn.connect()
        except TimeoutError as exc:
            raise _Failure("timeout", f"connecting to {self.target.host}: timed out") from exc
        except OSError as exc:
            raise _Failure("connect", f"connecting to {self.target.host}: {exc}") from exc

    def _send(self, conn: http.client.HTTPConnection, reused: bool) -> tuple[int, bytes]:
        headers = {"User-Agent": USER_AGENT, "Content-Length": "0"}
        if self.target.authorization:
            headers["Authorization"] = self.target.authorization
        try:
            conn.request("POST", self.target.path, body=b"", headers=headers)
            response = conn.getresponse()
            body = response.read()
        except TimeoutError as exc:
            raise _Failure("timeout", f"no answer within {self.request.limit:g} s") from exc
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
            if reused and not self._aborted:
                raise _Failure("retry", str(exc)) from exc
            raise _Failure("protocol", f"connection lost: {exc}") from exc
        except (http.client.HTTPException, OSError) as exc:
            raise _Failure("protocol", f"{type(exc).__name__}: {exc}") from exc
        if response.will_close:
            conn.close()
        return response.status, body

    def _shutdown(self) -> None:
        self._aborted = True
        conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # the blocked recv returns at once

    def terminate(self) -> None:
        self._shutdown()

    def kill(self) -> None:
        self._shutdown()

    def abandon(self) -> None:
        self._shutdown()
        self._thread.join(1.0)  # a thread stuck in DNS resolution cannot be interrupted


class HttpDispatcher(Dispatcher):
    """POSTs each batch; see the module docstring for the two modes."""

    kind = "http"

    def __init__(
        self,
        config: HttpDispatcherConfig,
        secret: str | None = None,
        *,
        wake: Callable[[], None] = _no_wake,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if config.mode == "special" and not secret:
            raise DispatchError("the special HTTP mode needs the wiki secret key")
        self.config = config
        self.timeout = config.timeout
        self._secret = secret
        self._wake = wake  # called from a run's thread when it ends: wakes the loop
        self._clock = clock
        self.pool = ConnectionPool()

    def __repr__(self) -> str:  # never show the secret
        return f"<HttpDispatcher {self.config.mode} {self.config.url}>"

    @classmethod
    def from_config(
        cls,
        config: HttpDispatcherConfig,
        environ: Mapping[str, str] | None = None,
        wake: Callable[[], None] = _no_wake,
    ) -> HttpDispatcher:
        """The dispatcher, with the secret read from ``secret_env`` when the config names
        a variable; a missing or empty variable is a boot failure."""
        secret = config.secret
        if config.mode == "special" and config.secret_env is not None:
            env = os.environ if environ is None else environ
            secret = env.get(config.secret_env)
            if not secret:
                raise DispatchError(
                    f"the environment variable {config.secret_env} (dispatcher.secret_env) "
                    "is not set; export $wgSecretKey under that name for the runner"
                )
        return cls(config, secret, wake=wake)

    def target(self, request: RunRequest) -> _Target:
        url = substitute(self.config.url, request.values())
        if self.config.mode == "rpc":
            return _target(url)
        assert self._secret is not None
        params = special_runjobs_params(request, self.config.maxjobs, self._clock())
        shown = array_to_cgi(params)
        signed = f"{shown}&signature={query_signature(params, self._secret)}"
        return _target(url, signed, shown)

    def describe(self, request: RunRequest) -> str:
        return self.target(request).label

    def start(self, request: RunRequest, selector: selectors.BaseSelector) -> HttpRun:
        try:
            target = self.target(request)
        except (ValueError, KeyError) as exc:
            raise DispatchError(f"bad URL for {request.domain}: {exc}") from exc
        return HttpRun(request, target, self.pool, self._wake)

    def close(self) -> None:
        self.pool.close()
