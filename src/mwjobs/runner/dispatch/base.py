"""The dispatcher interface: what every dispatch strategy provides to the runner's loop.

A :class:`Dispatcher` starts a :class:`Run` for a :class:`RunRequest`; the runner's loop
waits on the run's file descriptors (registered in the loop's selector with a callback as
their data), polls it when :attr:`Run.wants_poll` says something changed (or on SIGCHLD),
and gets a :class:`RunOutcome` once the run is completely over: a process reaped and its
output read to EOF, or an HTTP exchange finished. Runs never block the loop.

Kinds (``dispatcher.kind`` in the config): ``command`` (:mod:`.command`, a process per
batch, no shell unless the config opts in), ``http`` (:mod:`.http`, a POST per batch to
``rpc/RunJobs.php`` or the signed ``Special:RunJobs``) and ``python`` (:mod:`.python`, a
batch per assignment to a pool of long-lived Python worker processes).
"""

from __future__ import annotations

import abc
import re
import selectors
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from mwjobs.errors import MwJobsError

__all__ = [
    "DispatchError",
    "DispatchHalt",
    "Dispatcher",
    "Run",
    "RunOutcome",
    "RunRequest",
    "Watch",
    "escapeshellarg",
    "substitute",
]

# The loop's selector stores one of these as each key's data: called when the fd is ready.
Watch = Callable[[], None]

_PLACEHOLDER = re.compile(r"%\((db|type|maxtime|maxmem)\)([ux])")


class DispatchError(MwJobsError):
    """A run could not be started, or a dispatcher can never work (a boot failure)."""


class DispatchHalt(DispatchError):
    """The dispatcher found, after start, that it can never work again (python workers that
    no longer boot): the runner stops instead of failing every run forever."""


@dataclass(frozen=True)
class RunRequest:
    """One batch to run: the queue, the values of the placeholders, and the wall limit."""

    job_type: str
    domain: str
    maxtime: int
    maxmem: str
    limit: float  # seconds of wall time before SIGTERM (limits.real or the HTTP timeout)

    def values(self) -> dict[str, str]:
        """The placeholder values: ``%(db)``, ``%(type)``, ``%(maxtime)``, ``%(maxmem)``."""
        return {
            "db": self.domain,
            "type": self.job_type,
            "maxtime": str(self.maxtime),
            "maxmem": self.maxmem,
        }


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended. ``status`` is what the logs show (PHP: the exit code; here also
    ``signal 9`` or ``HTTP 500``); ``succeeded`` is True for exit 0 / HTTP 2xx. ``problem``
    names a transport failure (``error_kind``: ``timeout``, ``connect``, ``status``,
    ``protocol``, or ``none`` for a process whose status was lost)."""

    status: str
    succeeded: bool
    stdout: bytes = b""
    stderr: bytes = b""
    problem: str | None = None
    error_kind: str | None = None


class Run(abc.ABC):
    """A batch in flight. Created by :meth:`Dispatcher.start`; owned by one runner slot."""

    def __init__(self, request: RunRequest, label: str) -> None:
        self.request = request
        self.label = label  # the command or URL for log lines; never holds a secret
        self.pid: int | None = None  # the process group leader, if the run is a process

    @property
    @abc.abstractmethod
    def wants_poll(self) -> bool:
        """Something happened since the last poll (EOF on a pipe, a request finished)."""

    @abc.abstractmethod
    def poll(self) -> RunOutcome | None:
        """The outcome once the run is completely over, else None. Never blocks."""

    @abc.abstractmethod
    def terminate(self) -> None:
        """Ask the run to stop (SIGTERM to its process group; close an HTTP connection)."""

    @abc.abstractmethod
    def kill(self) -> None:
        """Stop it now (SIGKILL to its process group)."""

    @abc.abstractmethod
    def abandon(self) -> None:
        """Runner exit: kill what is left and release every resource, waiting only briefly."""


class Dispatcher(abc.ABC):
    """Starts runs. ``timeout`` (None: the type's ``limits.real``) is the wall limit it wants."""

    kind: str = ""
    timeout: float | None = None

    def check(self) -> None:  # noqa: B027 - optional hook
        """Boot check: raise :class:`DispatchError` if no run could ever start."""

    @abc.abstractmethod
    def start(self, request: RunRequest, selector: selectors.BaseSelector) -> Run:
        """Start a run; raise :class:`DispatchError` when it cannot start."""

    @abc.abstractmethod
    def describe(self, request: RunRequest) -> str:
        """What :meth:`start` would run, for log lines (no secrets)."""

    def reap(self) -> None:  # noqa: B027 - optional hook
        """A child exited (SIGCHLD): collect processes the dispatcher owns outside runs."""

    def close(self) -> None:  # noqa: B027
        """Release pooled resources; runs in flight finish on their own."""


def _rawurlencode(text: str) -> str:
    # PHP rawurlencode; surrogateescape keeps undecodable bytes of a domain intact.
    return quote(text.encode("utf-8", "surrogateescape"), safe="")


def escapeshellarg(value: str) -> str:
    """PHP ``escapeshellarg``: always single-quoted, ``'`` written as ``'\\''``."""
    return "'" + value.replace("'", "'\\''") + "'"


def substitute(
    template: str, values: Mapping[str, str], quote_x: Callable[[str], str] = str
) -> str:
    """Replace every ``%(name)u`` with ``rawurlencode(value)`` and every ``%(name)x`` with
    ``quote_x(value)`` in one pass (PHP's ``strtr``): a value is never scanned again, so a
    value holding ``%(db)x`` stays literal."""

    def one(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        return _rawurlencode(value) if match.group(2) == "u" else quote_x(value)

    return _PLACEHOLDER.sub(one, template)
