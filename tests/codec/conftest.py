"""The PHP oracle: one persistent ``php`` process per session answering codec questions."""

from __future__ import annotations

import base64
import json
import math
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from mwjobs.codec import PhpValue

ORACLE = Path(__file__).with_name("php_oracle.php")


def _b64(raw: str | bytes) -> str:
    return base64.b64encode(raw.encode("utf-8") if isinstance(raw, str) else raw).decode()


def tag(value: PhpValue) -> dict[str, Any]:  # noqa: PLR0911 - one return per PHP type
    """The tagged tree php_oracle.php builds a PHP value from."""
    if value is None:
        return {"t": "n"}
    if isinstance(value, bool):
        return {"t": "b", "v": value}
    if isinstance(value, int):
        return {"t": "i", "v": str(value)}
    if isinstance(value, float):
        if math.isnan(value):
            return {"t": "d", "v": "NAN"}
        if math.isinf(value):
            return {"t": "d", "v": "INF" if value > 0 else "-INF"}
        return {"t": "d", "v": repr(value)}
    if isinstance(value, str | bytes):
        return {"t": "s", "v": _b64(value)}
    if isinstance(value, list | tuple):
        items = enumerate(value)
        return {"t": "a", "v": [[{"t": "i", "v": str(i)}, tag(item)] for i, item in items]}
    if isinstance(value, Mapping):
        pairs = []
        for key, item in value.items():
            if isinstance(key, int):
                key_tag = {"t": "i", "v": str(key)}
            else:
                key_tag = {"t": "s", "v": _b64(key)}
            pairs.append([key_tag, tag(item)])
        return {"t": "a", "v": pairs}
    raise TypeError(f"cannot tag {type(value).__name__}")


class PhpOracle:
    """Ask real PHP 8 (Debian's php-cli) what it does."""

    def __init__(self, php: str) -> None:
        self._proc = subprocess.Popen(
            [php, "-n", "-d", "serialize_precision=-1", str(ORACLE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, **request: Any) -> Any:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the PHP oracle exited")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"PHP: {reply['error']}")
        return reply

    def serialize(self, value: PhpValue) -> bytes:
        return base64.b64decode(self.ask(op="serialize", value=tag(value))["out"])

    def job_dedup(self, job_type: str, params: Mapping[Any, PhpValue]) -> tuple[str, bytes]:
        reply = self.ask(op="job_dedup", type=_b64(job_type), params=tag(params))
        return reply["out"], base64.b64decode(reply["blob"])

    def spec_dedup(
        self, job_type: str, params: Mapping[Any, PhpValue], ignore: Iterable[str] = ()
    ) -> tuple[str, bytes]:
        reply = self.ask(
            op="spec_dedup",
            type=_b64(job_type),
            params=tag(params),
            ignore=[_b64(name) for name in ignore],
        )
        return reply["out"], base64.b64decode(reply["blob"])

    def reserialize(self, data: bytes) -> bytes | None:
        """``serialize(unserialize($data))`` by PHP, or None when PHP cannot read it."""
        out: str | None = self.ask(op="reserialize", data=_b64(data))["out"]
        return None if out is None else base64.b64decode(out)

    def queue_id(self, job_type: str, domain: str) -> str:
        out: str = self.ask(op="json_queue_id", type=_b64(job_type), domain=_b64(domain))["out"]
        return out

    def rawurlencode(self, text: str) -> str:
        out: str = self.ask(op="rawurlencode", text=_b64(text))["out"]
        return out

    def gzdeflate(self, data: bytes) -> bytes:
        return base64.b64decode(self.ask(op="gzdeflate", data=_b64(data))["out"])

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


@pytest.fixture(scope="session")
def php() -> Iterator[PhpOracle]:
    """A persistent PHP process; fails loudly when php-cli is missing (./scripts/test
    installs it)."""
    binary = shutil.which("php")
    if binary is None:
        pytest.fail("php-cli is missing: run ./scripts/test as root, or apt-get install php-cli")
    oracle = PhpOracle(binary)
    yield oracle
    oracle.close()
