"""Job classes by type name: MediaWiki's ``$wgJobClasses`` for Python jobs.

Classes register with the :func:`register` decorator when their module is imported, or
through the ``mwjobs.jobs`` entry-point group of an installed distribution (entry-point
name = job type, object = the class), loaded the first time a type is looked up and not
found. The registry knows nothing about queues: registering a class connects to nothing.

``null`` (:class:`~mwjobs.model.runnable.NullJob`) is built in, as in MediaWiki.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

from mwjobs.errors import JobTypeError
from mwjobs.model.runnable import Job, NullJob

__all__ = [
    "ENTRY_POINT_GROUP",
    "JobRegistry",
    "default_registry",
    "get_job_class",
    "import_job_modules",
    "is_registered",
    "register",
    "registered_types",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "mwjobs.jobs"
J = TypeVar("J", bound=type[Job])


class JobRegistry:
    """A map of job type -> job class. Thread-safe; entry points load once, on demand."""

    def __init__(self, *, builtins: bool = True, entry_points: bool = True) -> None:
        self._classes: dict[str, type[Job]] = {}
        self._lock = threading.RLock()
        self._entry_points_loaded = not entry_points
        self._entry_point_errors: dict[str, str] = {}
        if builtins:
            self.add("null", NullJob)

    def register(self, job_type: str, *, replace: bool = False) -> Callable[[J], J]:
        """Class decorator: register the class under ``job_type``."""

        def decorate(cls: J) -> J:
            self.add(job_type, cls, replace=replace)
            return cls

        return decorate

    def add(self, job_type: str, cls: type[Job], *, replace: bool = False) -> None:
        """Register ``cls`` for ``job_type``; a different class already there is an error
        unless ``replace`` (re-registering the same class, e.g. on reload, is fine)."""
        if not job_type:
            raise JobTypeError("a job type name must be a non-empty string")
        if not (isinstance(cls, type) and issubclass(cls, Job)):
            raise JobTypeError(f"{cls!r} registered for {job_type!r} is not a Job subclass")
        with self._lock:
            old = self._classes.get(job_type)
            if old is not None and old is not cls and not replace:
                raise JobTypeError(
                    f"job type {job_type!r} is already registered to {_name(old)}; "
                    f"pass replace=True to register {_name(cls)} instead"
                )
            if "type" not in vars(cls):
                cls.type = job_type  # the class's own pushes use its (first) registered name
            self._classes[job_type] = cls

    def remove(self, job_type: str) -> None:
        """Forget ``job_type`` (tests, plugins being unloaded)."""
        with self._lock:
            self._classes.pop(job_type, None)

    def get(self, job_type: str) -> type[Job]:
        """The class for ``job_type``; :class:`JobTypeError` if there is none."""
        cls = self._classes.get(job_type)
        if cls is not None:
            return cls
        self.load_entry_points()
        with self._lock:
            cls = self._classes.get(job_type)
            if cls is not None:
                return cls
            why = self._entry_point_errors.get(job_type)
        hint = f" (its entry point failed to load: {why})" if why else ""
        raise JobTypeError(f"Invalid job command '{job_type}'{hint}")

    def __contains__(self, job_type: object) -> bool:
        if not isinstance(job_type, str):
            return False
        try:
            self.get(job_type)
        except JobTypeError:
            return False
        return True

    def types(self) -> list[str]:
        """Every registered type, sorted (entry points included)."""
        self.load_entry_points()
        with self._lock:
            return sorted(self._classes)

    def load_entry_points(self) -> None:
        """Register the ``mwjobs.jobs`` entry points of installed distributions (once).

        One that fails to import is logged and remembered; the others still load."""
        with self._lock:
            if self._entry_points_loaded:
                return
            self._entry_points_loaded = True
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                if ep.name in self._classes:
                    continue  # an explicit registration wins
                try:
                    self.add(ep.name, ep.load())
                except Exception as exc:  # a broken plugin must not hide the others
                    self._entry_point_errors[ep.name] = f"{type(exc).__name__}: {exc}"
                    log.error("Could not load job class %s = %s: %s", ep.name, ep.value, exc)


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


default_registry = JobRegistry()


def register(job_type: str, *, replace: bool = False) -> Callable[[J], J]:
    """Class decorator registering a :class:`~mwjobs.model.runnable.Job` subclass in the default
    registry under ``job_type``."""
    return default_registry.register(job_type, replace=replace)


def get_job_class(job_type: str) -> type[Job]:
    """The default registry's class for ``job_type``; :class:`JobTypeError` if unknown."""
    return default_registry.get(job_type)


def is_registered(job_type: str) -> bool:
    return job_type in default_registry


def registered_types() -> list[str]:
    return default_registry.types()


def import_job_modules(modules: Iterable[str], paths: Iterable[str] = ()) -> None:
    """Put ``paths`` first on ``sys.path`` and import ``modules`` so their job classes
    register (what a worker does with the python dispatcher's ``modules``/``paths``)."""
    for path in reversed(list(paths)):
        if path not in sys.path:
            sys.path.insert(0, path)
    for module in modules:
        importlib.import_module(module)
