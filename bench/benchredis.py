"""A throw-away redis-server for the benchmark scripts (``bench/*.py`` import it)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis


@dataclass(frozen=True)
class PrivateRedis:
    """A running private server: how to reach it, and its process (for CPU readings)."""

    port: int
    socket_path: str
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """Start redis-server on a free port and a Unix socket in a temp dir; stop it after."""
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (./scripts/test installs it)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as workdir:
        sock_path = str(Path(workdir) / "redis.sock")
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                "--appendonly", "no", "--dir", workdir, "--unixsocket", sock_path]  # fmt: skip
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            client = redis.Redis(port=port)
            deadline = time.monotonic() + 10
            while True:  # a benchmark, not a test: polling for start-up is fine here
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
            client.close()
            yield PrivateRedis(port, sock_path, process)
        finally:
            process.terminate()
            process.wait(timeout=10)
