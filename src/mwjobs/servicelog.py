"""Log output of the daemons in the PHP services' shape (jobrunner ``RedisJobService``), set up
by the CLI only.

``<ISO-8601 date> NOTICE: <message>`` (and ``DEBUG:`` with ``--verbose``) on stdout;
``WARNING:`` and ``ERROR:`` on stderr. Dates are PHP's ``DATE_ATOM``
(``2026-11-23T14:27:30+00:00``, local time with its offset). Library modules only name their
loggers (``mwjobs.*``); this module is the one place that attaches handlers.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from typing import TextIO

__all__ = ["PhpStyleFormatter", "configure_service_logging"]

# PHP's services had DEBUG, NOTICE and ERROR; Python's INFO is their NOTICE.
_LEVEL_NAMES = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "NOTICE",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


class PhpStyleFormatter(logging.Formatter):
    """``<DATE_ATOM> <LEVEL>: <message>``, then the traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="seconds")
        level = _LEVEL_NAMES.get(record.levelno, record.levelname)
        text = f"{stamp} {level}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _below_warning(record: logging.LogRecord) -> bool:
    return record.levelno < logging.WARNING


def configure_service_logging(
    verbose: bool, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> None:
    """Route the ``mwjobs`` loggers: notices (and debug when ``verbose``) to stdout, warnings
    and errors to stderr. Replaces handlers a previous call attached."""
    formatter = PhpStyleFormatter()
    out = logging.StreamHandler(stdout or sys.stdout)
    out.addFilter(_below_warning)
    err = logging.StreamHandler(stderr or sys.stderr)
    err.setLevel(logging.WARNING)
    for handler in (out, err):
        handler.setFormatter(formatter)
    root = logging.getLogger("mwjobs")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(out)
    root.addHandler(err)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
