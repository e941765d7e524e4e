"""``mwjobs run-jobs``: MediaWiki's ``maintenance/runJobs.php`` for Python jobs.

Same options and the same output: with ``--result=json`` only the JSON response, exactly as
runJobs prints it, so the jobrunner service (PHP or ours) can use it as its dispatcher
command; otherwise the per-job log lines and ``Job queue is empty.``. ``--procs N`` runs the
loop in N forked children (:mod:`mwjobs.execution.forks`); with ``--config-file`` naming a
``statsd``, each job sends MediaWiki's per-job metrics (:class:`mwjobs.metrics.JobStatsd`).
"""

from __future__ import annotations

import logging
import sys

import click

from mwjobs.cli.options import EXIT_CONFIG, config_file_option
from mwjobs.config import PythonDispatcherConfig, RunnerConfig, load_config
from mwjobs.errors import ConfigError, MwJobsError
from mwjobs.execution.backoff import BackoffFile
from mwjobs.execution.executor import JobExecutor, RunOptions, RunResult, parse_memory_limit
from mwjobs.execution.forks import MAX_PROCS, SharedOutput, fork_children
from mwjobs.execution.loop import RunLoop
from mwjobs.group import JobQueueGroup
from mwjobs.metrics import job_metrics_for
from mwjobs.model.registry import import_job_modules
from mwjobs.queues.backends import open_backend
from mwjobs.queues.base import QueueBackend

__all__ = ["run_jobs"]

log = logging.getLogger(__name__)

# runJobs' own default memory limit: 3 x $wgMemoryLimit's default of 50M.
DEFAULT_MEMORY_LIMIT = 150 * 1024 * 1024


def _config_rates(config: RunnerConfig | None) -> dict[str, float]:
    """The python dispatcher's ``throttling`` rates of the config file, if any."""
    if config is None or not isinstance(config.dispatcher, PythonDispatcherConfig):
        return {}
    return dict(config.dispatcher.throttling)


def _throttle(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, float]:
    rates: dict[str, float] = {}
    for value in values:
        job_type, sep, rate = value.rpartition("=")
        try:
            rates[job_type] = float(rate)
        except ValueError:
            job_type = ""
        if not sep or not job_type:
            raise click.BadParameter(f"{value!r}: write TYPE=RATE, e.g. htmlCacheUpdate=15")
    return rates


def _procs(ctx: click.Context, param: click.Parameter, value: str | None) -> int:
    if value is None:
        return 1
    text = value.strip()
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_PROCS):
        # runJobs.php's words; a usage error (exit 2) like click's own
        raise click.UsageError(
            f"Invalid argument to --procs: {value!r} (give a whole number from 1 to {MAX_PROCS})",
            ctx,
        )
    return int(text)


def _memory(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    try:
        return parse_memory_limit(value, DEFAULT_MEMORY_LIMIT)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("run-jobs")
@click.option("--wiki", required=True, envvar="MWJOBS_WIKI", help="The wiki's DB domain.")
@click.option("--type", "job_type", metavar="TYPE", help="Only this job type (default: all).")
@click.option("--maxjobs", type=click.IntRange(min=0), default=0, help="Stop after N jobs.")
@click.option("--maxtime", type=click.FloatRange(min=0), default=0, help="Stop after S seconds.")
@click.option(
    "--memory-limit",
    default="default",
    callback=_memory,
    metavar="SIZE",
    help="150M, 2G, max (none) or default (150M); stops at 95% of it.",
)
@click.option("--nothrottle", is_flag=True, help="Ignore backoff throttling.")
@click.option(
    "--wait",
    is_flag=True,
    help="Keep running, woken by new jobs (at most 1 s idle); another JSON document per run.",
)
@click.option("--result", type=click.Choice(["json"]), help="Print only the JSON response.")
@config_file_option(
    required=False, help="jobrunner.json: its first queue server, python dispatcher modules"
)
@click.option(
    "--queue",
    "--redis",
    "queue_url",
    envvar=["MWJOBS_QUEUE_URL", "MWJOBS_REDIS_URL"],
    metavar="URL",
    help="Where the queues are: a backend URL (redis://host:port/db, memory://name), or a "
    "Redis host:port or socket path. --redis is the older name.",
)
@click.option(
    "--module",
    "modules",
    multiple=True,
    metavar="NAME",
    help="Import this module so its job classes register (repeatable).",
)
@click.option(
    "--python-path",
    "paths",
    multiple=True,
    metavar="DIR",
    help="Put DIR first on sys.path before importing (repeatable).",
)
@click.option(
    "--throttle",
    "throttling",
    multiple=True,
    callback=_throttle,
    metavar="TYPE=RATE",
    help="Back off TYPE to RATE work items per second ($wgJobBackoffThrottling).",
)
@click.option(
    "--backoff-file",
    type=click.Path(dir_okay=False),
    metavar="PATH",
    help="The host's shared backoff file (default: <tmp>/mw-runJobs-backoffs.json).",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=1,
    help="Claim and ack up to N jobs per round trip.",
)
@click.option(
    "--procs",
    callback=_procs,
    metavar="N",
    help=f"Run the loop in N forked processes (1-{MAX_PROCS}); each prints its own result.",
)
@click.pass_context
def run_jobs(
    ctx: click.Context,
    *,
    wiki: str,
    job_type: str | None,
    maxjobs: int,
    maxtime: float,
    memory_limit: int | None,
    nothrottle: bool,
    wait: bool,
    result: str | None,
    config_file: str | None,
    queue_url: str | None,
    modules: tuple[str, ...],
    paths: tuple[str, ...],
    throttling: dict[str, float],
    backoff_file: str | None,
    batch: int,
    procs: int,
) -> None:
    """Run jobs of one wiki as MediaWiki's runJobs.php does."""
    as_json = result == "json"
    _configure_logging(as_json)
    try:
        config = load_config(config_file) if config_file else None
        backend = _backend(queue_url, config)
        _import_jobs(config, modules, paths)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        ctx.exit(EXIT_CONFIG)
    if procs > 1:
        backend.close()  # nothing has connected yet: each child makes its own connection
        forked = fork_children(procs)
        if isinstance(forked, int):
            ctx.exit(forked)  # the parent: every child is done
        _output.shared = forked.output
        backend = _backend(queue_url, config)
    executor = JobExecutor(
        JobQueueGroup(backend, wiki),
        throttling=_config_rates(config) | throttling,  # --throttle wins over the file
        backoffs=BackoffFile(backoff_file),
        metrics=job_metrics_for(config.statsd if config is not None else None),
    )
    options = RunOptions(
        job_type=job_type,
        max_jobs=maxjobs,
        max_time=maxtime,
        memory_limit=memory_limit,
        throttle=not nothrottle,
        batch=batch,
    )
    try:
        waiter = executor.group.waiter(job_type) if wait else None
    except MwJobsError as exc:  # asking the server what it supports failed
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(1)
    try:
        RunLoop(executor, options, waiter, lambda outcome: _print(outcome, as_json),
                quiet_stdout=as_json).run()  # fmt: skip
    finally:
        backend.close()


def _backend(queue_url: str | None, config: RunnerConfig | None) -> QueueBackend:
    if queue_url:
        try:
            return open_backend(queue_url)
        except (ValueError, ConfigError) as exc:
            raise ConfigError(f"--queue {queue_url!r}: {exc}") from None
    if config is not None:
        return open_backend(config.queues.partitions[0])
    raise ConfigError(
        "no queue server: give --queue URL (e.g. redis://127.0.0.1:6379/0), or --config-file"
    )


def _import_jobs(
    config: RunnerConfig | None, modules: tuple[str, ...], paths: tuple[str, ...]
) -> None:
    if config is not None and isinstance(config.dispatcher, PythonDispatcherConfig):
        modules = config.dispatcher.modules + modules
        paths = config.dispatcher.paths + paths
    try:
        import_job_modules(modules, paths)
    except ImportError as exc:
        fix = "check --module, --python-path and dispatcher.modules"
        raise ConfigError(f"cannot import a job module: {exc}; {fix}") from None


def _configure_logging(as_json: bool) -> None:
    """JSON mode: stdout holds only the JSON, warnings and errors go to stderr. Otherwise
    runJobs' debug lines ``<YYYY-MM-DD HH:MM:SS> <message>`` go to stdout."""
    errors = logging.StreamHandler(sys.stderr)
    errors.setLevel(logging.WARNING)
    errors.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(errors)
    root.setLevel(logging.WARNING)
    if not as_json:
        lines = logging.StreamHandler(sys.stdout)
        lines.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        executor_log = logging.getLogger("mwjobs.execution.executor")
        executor_log.setLevel(logging.DEBUG)
        executor_log.addHandler(lines)
        executor_log.propagate = False
        executor_log.addHandler(errors)


class _Output:
    """Where JSON documents go: ``sys.stdout``, or in a ``--procs`` child the output it
    shares with its siblings (whole documents, one sibling at a time)."""

    shared: SharedOutput | None = None


_output = _Output()


def _print(outcome: RunResult, as_json: bool) -> None:
    if as_json:
        document = outcome.to_json()  # no newline: runJobs prints none either
        if _output.shared is not None:
            _output.shared.write(document.encode())
        else:
            sys.stdout.write(document)
            sys.stdout.flush()
    elif not outcome.jobs:
        click.echo("Job queue is empty.")
