"""Run ``mwjobs`` service subcommands as real child processes in tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

MWJOBS = Path(sys.executable).with_name("mwjobs")
DEADLINE = 20.0


class Daemon:
    """A ``mwjobs <command>`` child with its output in files (no pipe can fill up and block)."""

    def __init__(self, tmp_path: Path, command: str, config: Path, *args: str) -> None:
        self.out_path = tmp_path / f"{command}.out"
        self.err_path = tmp_path / f"{command}.err"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.process = subprocess.Popen(
                [str(MWJOBS), command, "--config-file", str(config), *args],
                stdout=out,
                stderr=err,
            )

    @property
    def out(self) -> str:
        return self.out_path.read_text("utf-8")

    @property
    def err(self) -> str:
        return self.err_path.read_text("utf-8")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self) -> int:
        return self.process.wait(DEADLINE)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def spawner(tmp_path: Path, command: str) -> Iterator[Callable[..., Daemon]]:
    """Body of a ``spawn`` fixture: start daemons of ``command``, kill leftovers at the end."""
    started: list[Daemon] = []

    def spawn(config: Path, *args: str) -> Daemon:
        daemon = Daemon(tmp_path, command, config, *args)
        started.append(daemon)
        return daemon

    yield spawn
    for daemon in started:
        daemon.stop()
