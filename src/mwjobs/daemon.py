"""Daemon plumbing shared by ``mwjobs runner``, ``mwjobs chron`` and ``run-jobs``: which
signals stop a service, how a loop receives signals without doing work in a handler, and
the exit statuses.

Exit statuses (every subcommand): 0 stopped normally (SIGTERM/SIGINT included, as the PHP
services since T168044); 1 a bad configuration or a service that cannot boot (a missing
dispatcher program, a module that does not import); click's 2 for a wrong command line.
"""

from __future__ import annotations

import select
import signal
import socket
from collections.abc import Sequence
from types import FrameType, TracebackType
from typing import Any

__all__ = ["EXIT_CONFIG", "EXIT_OK", "STOP_SIGNALS", "SignalInbox"]

EXIT_OK = 0
EXIT_CONFIG = 1

# The signals that end a service's loop (after the current pass or run).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _ignore(signum: int, frame: FrameType | None) -> None:
    """Installed for the signals we wait on: the wakeup socket carries the signal number, so
    the handler itself does nothing (no work ever runs inside a handler)."""


class SignalInbox:
    """Signals as bytes on a socket the main loop waits on (``signal.set_wakeup_fd``):
    gunicorn's queued signals without any code in the handler. Main thread only."""

    def __init__(self, signals: Sequence[signal.Signals]) -> None:
        self.signals = tuple(signals)
        self._previous: dict[signal.Signals, Any] = {}  # handlers as signal.signal returned them
        self._previous_fd = -1

    def __enter__(self) -> SignalInbox:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, _ignore)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._previous.clear()
        self._reader.close()
        self._writer.close()

    def fileno(self) -> int:
        """The socket that becomes readable when a signal arrives, for a caller that waits
        on several file descriptors (the runner's selector); drain it with ``wait(0)``."""
        return self._reader.fileno()

    def wait(self, timeout: float) -> list[int]:
        """The signals received so far, waiting up to ``timeout`` seconds for one."""
        if timeout > 0:
            select.select([self._reader], [], [], timeout)
        try:
            data = self._reader.recv(4096)
        except BlockingIOError:
            return []
        return [signum for signum in data if signum in self.signals]
