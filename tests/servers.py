"""Private server processes for tests: each starts on a free port in its own temp dir.

Tests never touch the machine's shared services (Redis on 6379, ...): a server that
cannot start fails the test session loudly instead of skipping.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

START_TIMEOUT = 20.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it is true; raise with ``what`` when ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.01)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class ServerProcess:
    """A server subprocess owned by the test session; subclasses give argv and readiness."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        binary = self.argv()[0]
        if shutil.which(binary) is None and not Path(binary).exists():
            raise RuntimeError(f"{binary} is not installed; run ./scripts/test as root")
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv(), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
            )

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}: "
                    + self.log_path.read_text(errors="replace")[-2000:]
                )
            return self.is_ready()

        wait_until(ready, START_TIMEOUT, f"{self.name} on port {self.port}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crashed server would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class RedisServer(ServerProcess):
    """``redis-server`` on a free port, no persistence, in a private directory."""

    name = "redis"

    def argv(self) -> list[str]:
        return [
            "redis-server",
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
        ]  # fmt: skip

    @property
    def socket_path(self) -> Path:
        return self.workdir / "redis.sock"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def is_ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


class StatsdListener:
    """A statsd stand-in: a UDP socket on 127.0.0.1 collecting the lines sent to it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def lines(self) -> list[str]:
        return [line for d in self.datagrams for line in d.decode().splitlines()]

    def receive_until(self, check: Callable[[list[str]], bool], timeout: float, what: str) -> None:
        """Receive datagrams until ``check(self.lines)`` holds; TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not check(self.lines):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}: {self.lines}")
            self.sock.settimeout(left)
            try:
                self.datagrams.append(self.sock.recv(65536))
            except TimeoutError:
                continue

    def drain(self) -> None:
        """Take what has arrived (on loopback a datagram is queued before ``sendto`` returns,
        so this sees everything sent so far)."""
        self.sock.setblocking(False)
        try:
            while True:
                self.datagrams.append(self.sock.recv(65536))
        except BlockingIOError:
            pass

    def close(self) -> None:
        self.sock.close()


def statsd_values(lines: list[str], name: str, kind: str) -> list[int]:
    """The values of the statsd lines ``<name>:<value>|<kind>``, in order."""
    values = []
    for line in lines:
        metric, _, rest = line.partition(":")
        value, _, line_kind = rest.partition("|")
        if metric == name and line_kind == kind:
            values.append(int(value))
    return values
