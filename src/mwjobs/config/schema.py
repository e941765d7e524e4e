"""Every key of ``jobrunner.json``, declared once: :data:`KEYS`.

A :class:`Key` says where the key is (its JSON path), what its value is, its default,
whether it may be zero, whether it is secret, an example and a paragraph of documentation.
Everything else is derived from these declarations: the known keys of each object (unknown
keys are refused with a suggestion), the generic reading of simple sections such as
``mwjobs.timing``, the defaults of the model's dataclasses, which values ``check-config``
masks, and docs/configuration.md (``python -m mwjobs.config.docs``).

A new section is a :class:`Key` of kind ``OBJECT`` plus one :class:`Key` per member. A
section of plain values (numbers, strings, booleans) is then accepted, checked and
documented as declared; what is left to write is its model dataclass with a field on
``RunnerConfig``, and one line each in ``Builder.build`` (``self.section(path, raw)``) and
``render.config_dict`` (``section_dict(path, obj)``).

Paths are dotted; ``*`` stands for a name the file chooses (``groups.*.runners``). Keys that
exist only in one form of an object (the dispatcher's ``kind``) name it as ``variant``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final, TypeVar

__all__ = [
    "KEYS",
    "REQUIRED",
    "Key",
    "Kind",
    "children",
    "default_of",
    "key",
    "names",
    "variants",
]

T = TypeVar("T")


class Kind(enum.Enum):
    """What a key's value is. The value is the wording of the docs' type column."""

    INT = "integer"
    SECONDS = "integer seconds"
    DURATION = "seconds"
    BOOL = "`true`/`false`"
    STRING = "non-empty string"
    ENV_NAME = "environment variable name"
    MEMORY = "PHP memory string"
    CHOICE = "one of"
    JOB_TYPES = "list of job types"
    STRINGS = "non-empty list of strings"
    MODULES = "list of dotted module names"
    PATHS = "list of directories"
    SERVERS = "non-empty list of servers"
    URL = "http(s) URL with placeholders"
    LOCATIONS = "list of queue backend URLs"
    RATES = "object: job type → work items per second ≥ 0"
    HOST_PORT = "`host[:port]` string"
    COMMAND = "command string or object"
    OBJECT = "object"
    NAMED = "object: name → object"
    IGNORED = "anything"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()
"""The default of a key that the file must give."""


@dataclass(frozen=True)
class Key:
    """One key of the file.

    ``default`` is the value the model holds when the key is absent (``None``: nothing,
    :data:`REQUIRED`: the file must give it); for a ``per_type`` key it is the ``"*"``
    entry. ``example`` is a value as written in the file (by default the default); error
    messages quote one item of it. ``only_with`` names a sibling key and the value it needs
    (``("mode", "special")``). ``choices`` pairs each accepted value with its meaning.
    ``alternative`` names a key the file may give instead (exactly one of the two).
    ``default_doc`` replaces the docs' rendering of the default; ``shown_at_default=False``
    leaves the key out of check-config while it has its default.
    """

    path: str
    kind: Kind
    doc: str
    default: object = None
    example: object = None
    zero_ok: bool = False
    secret: bool = False
    per_type: bool = False
    variant: str | None = None
    only_with: tuple[str, str] | None = None
    choices: tuple[tuple[str, str], ...] = ()
    alternative: str = ""
    default_doc: str = ""
    shown_at_default: bool = True

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2]

    @property
    def parent(self) -> str:
        return self.path.rpartition(".")[0]

    @property
    def attr(self) -> str:
        """The model's attribute for this key: ``claimTTL`` -> ``claim_ttl``,
        ``low-priority`` -> ``low_priority``."""
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|-", "_", self.name).lower()

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def minimum(self) -> int:
        """The least integer accepted: 0 if the key may be zero, else 1."""
        return 0 if self.zero_ok else 1

    @property
    def item_example(self) -> object:
        """The example of one value, as error messages quote it: the first item of a list
        or of a per-type object."""
        example = self.default if self.example is None else self.example
        if isinstance(example, list | tuple) and example:
            return example[0]
        if isinstance(example, dict) and example:
            return next(iter(example.values()))
        return example

    @property
    def choice_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.choices)


_ENDPOINT_URL = (
    "http://mw.example.org/rpc/RunJobs.php"
    "?wiki=%(db)u&type=%(type)u&maxtime=%(maxtime)u&maxmem=%(maxmem)u"
)

KEYS: tuple[Key, ...] = (
    # ----------------------------------------------------------------------- groups
    Key(
        "groups",
        Kind.NAMED,
        "Maps a group name to a group. The runner runs one \"loop\" for each group that has "
        "`runners > 0`, in file order. A file that only the chron reads may leave `groups` "
        "out. The check then warns that the runner would start no slots.",
        default_doc="none",
    ),
    Key(
        "groups.*.runners",
        Kind.INT,
        "Number of concurrent runs in this group. `0` disables the group, as in PHP. Must be "
        'a JSON integer: `"5"` and `5.0` are errors.',
        default=REQUIRED,
        example=5,
        zero_ok=True,
    ),
    Key(
        "groups.*.include",
        Kind.JOB_TYPES,
        'The types this group runs. `"*"` means every type that has jobs.',
        default=(),
        example=["refreshLinks"],
    ),
    Key(
        "groups.*.exclude",
        Kind.JOB_TYPES,
        'Types never run by this group, even when `"*"` includes them.',
        default=(),
        example=["refreshLinks"],
    ),
    Key(
        "groups.*.low-priority",
        Kind.JOB_TYPES,
        "In high priority these types are excluded. In low priority they are added to "
        "`include`. The PHP runner's `JobRunnerPipeline` time-shares them 600 s / 120 s.",
        default=(),
        example=["refreshLinks"],
    ),
    # ----------------------------------------------------------------------- limits
    Key(
        "limits",
        Kind.OBJECT,
        'Each entry maps a job type, or `"*"` for the default, to a value. Entries from the '
        "file replace the defaults key by key. A file that sets only "
        '`{"webVideoTranscode": 86400}` keeps `"*": 3600`.',
    ),
    Key(
        "limits.claimTTL",
        Kind.SECONDS,
        "Read by the chron. How long a popped job may stay claimed before it is recycled.",
        default=3600,
        example={"*": 3600, "webVideoTranscode": 86400},
        per_type=True,
    ),
    Key(
        "limits.attempts",
        Kind.INT,
        "Read by the chron. How many runs a job gets. A claim that expires after this many "
        "is abandoned.",
        default=3,
        example={"*": 3, "refreshLinks": 1},
        per_type=True,
    ),
    Key(
        "limits.real",
        Kind.SECONDS,
        "Read by the runner. Wall-clock limit for one dispatched run. The runner then sends "
        "SIGTERM, and SIGKILL `kill_grace` seconds later. Every value, `\"*\"` included, is "
        "raised to at least twice max(`hp_max_time`, `lp_max_time`), which is 120 by default. "
        "The check warns about each value it raises.",
        default=3600,
        example={"*": 3600, "webVideoTranscode": 86400},
        per_type=True,
    ),
    Key(
        "limits.memory",
        Kind.MEMORY,
        "Read by the runner. Replaces `%(maxmem)`: bytes or a number with `K`, `M` or `G`; "
        '`"-1"` means no limit. The value must be a string: `300` is an error, so write '
        '`"300M"`.',
        default="300M",
        example={"*": "300M", "webVideoTranscode": "-1"},
        per_type=True,
    ),
    # ----------------------------------------------------------------------- redis
    Key(
        "redis",
        Kind.OBJECT,
        "The Redis servers of the queues, as the PHP service reads them. mwjobs maps them "
        "onto `mwjobs.queues`: each server becomes a `redis://` URL, with "
        "`password` as its password.",
        alternative="mwjobs.queues",
    ),
    Key(
        "redis.aggregators",
        Kind.SERVERS,
        "Servers for the ready-queue map and the chron pool locks. The first one that "
        "answers is used (failover, not replication).",
        default=REQUIRED,
        example=["127.0.0.1:6379"],
    ),
    Key(
        "redis.queues",
        Kind.SERVERS,
        "Queue partition servers. Only the chron scans them.",
        default=REQUIRED,
        example=["127.0.0.1:6379"],
    ),
    Key(
        "redis.password",
        Kind.STRING,
        "AUTH password for every server. A password inside a `redis://` URL takes precedence "
        "for that server.",
        example="secret",
        secret=True,
    ),
    # ----------------------------------------------------------------------- statsd
    Key(
        "statsd",
        Kind.HOST_PORT,
        "A string `host`, `host:port` or `[v6addr]:port`. The default port is `8125`. "
        "Counters use the PHP service's metric names (the PHP services'). The python dispatcher's "
        "workers and `mwjobs run-jobs --config-file` also send MediaWiki's per-job "
        "`jobqueue.*` metrics there (operators.md, section 6).",
        example="statsd.example.org:8125",
        default_doc="off",
    ),
    # ----------------------------------------------------------------------- dispatcher
    Key(
        "dispatcher",
        Kind.COMMAND,
        "Tells the runner how to run one batch of jobs from one (type, wiki) queue. The "
        "value is either the original command string or one of the object forms.",
        default=REQUIRED,
        example="php runJobs.php --wiki=%(db)x",
    ),
    Key(
        "dispatcher.kind",
        Kind.CHOICE,
        "Which object form this is.",
        default=REQUIRED,
        example="command",
        choices=(
            (
                "command",
                "`argv` is the argument list itself; each element may contain placeholders. "
                "`shell` is the explicit opt-in to a shell (see below).",
            ),
            (
                "http",
                "The runner POSTs and expects the runJobs JSON result. Placeholders in the "
                'URL must be the `u` (URL-encoded) form. See "HTTP modes" below.',
            ),
            (
                "python",
                "Jobs run in persistent Python worker processes.",
            ),
        ),
    ),
    Key(
        "dispatcher.argv",
        Kind.STRINGS,
        "The program and its arguments, run without a shell; each element may contain "
        "placeholders. Required unless `shell` is given; the two cannot be given together.",
        default=REQUIRED,
        example=["php", "runJobs.php"],
        variant="command",
    ),
    Key(
        "dispatcher.shell",
        Kind.STRING,
        "A command line for `/bin/sh -c`: the explicit opt-in to a shell (see \"Shell "
        'opt-in" below).',
        example="php runJobs.php --wiki=%(db)x 2>&1",
        variant="command",
    ),
    Key(
        "dispatcher.url",
        Kind.URL,
        "Where the runner POSTs. In mode `rpc` the whole request, in mode `special` the "
        "wiki's `index.php`. A password in the URL is masked in check-config's output.",
        default=REQUIRED,
        example=_ENDPOINT_URL,
        variant="http",
    ),
    Key(
        "dispatcher.timeout",
        Kind.DURATION,
        "How long the runner waits for the answer.",
        example=300,
        variant="http",
        default_doc="the job type's `limits.real`",
    ),
    Key(
        "dispatcher.mode",
        Kind.CHOICE,
        'What the URL is; see "HTTP modes" below.',
        default="rpc",
        variant="http",
        choices=(
            ("rpc", "`url` is the whole request, WMF style (`rpc/RunJobs.php`)."),
            ("special", "MediaWiki's own signed `Special:RunJobs`."),
        ),
        shown_at_default=False,
    ),
    Key(
        "dispatcher.maxjobs",
        Kind.INT,
        "The most jobs of one request (Special:RunJobs runs only 1 job without it).",
        default=5000,
        variant="http",
        only_with=("mode", "special"),
    ),
    Key(
        "dispatcher.secret_env",
        Kind.ENV_NAME,
        "The name of the environment variable that holds the wiki's `$wgSecretKey`, read "
        "when the runner starts and on reload; a missing variable stops the start. Give "
        "this or `secret`.",
        example="MW_SECRET_KEY",
        variant="http",
        only_with=("mode", "special"),
    ),
    Key(
        "dispatcher.secret",
        Kind.STRING,
        "The wiki's `$wgSecretKey` itself (keep the file private then). Never logged; "
        'check-config shows `"***"`.',
        example="$wgSecretKey value",
        secret=True,
        variant="http",
        only_with=("mode", "special"),
    ),
    Key(
        "dispatcher.modules",
        Kind.MODULES,
        "Imported once in each worker, so that their job classes register "
        "(`@mwjobs.register`). The `mwjobs.jobs` entry points of installed packages load "
        "too. A module that does not import stops the runner at start (exit 1) with the "
        "import error.",
        default=(),
        example=["myjobs.tasks"],
        variant="python",
    ),
    Key(
        "dispatcher.paths",
        Kind.PATHS,
        "Put first on each worker's `sys.path`. A relative path is resolved against the "
        "directory of the config file.",
        default=(),
        example=["/srv/jobs"],
        variant="python",
    ),
    Key(
        "dispatcher.workers",
        Kind.INT,
        "How many worker processes. The default is one per runner slot (the sum of the "
        "enabled groups' `runners`). With fewer workers than slots, a slot waits for a free "
        "worker; its `limits.real` counts from the start.",
        example=4,
        variant="python",
        default_doc="one per runner slot",
    ),
    Key(
        "dispatcher.batch",
        Kind.INT,
        "Jobs a worker claims per round trip (`pop_many`) and acks per round trip. Jobs "
        "claimed but not run when a batch stops (maxtime, memory, a stop) are pushed back "
        "at once. If a worker dies, up to `batch` claimed jobs wait for the chron to recycle "
        "them after their `limits.claimTTL`.",
        default=10,
        variant="python",
    ),
    Key(
        "dispatcher.max_batches",
        Kind.INT,
        "A worker is replaced after this many batches.",
        default=1000,
        variant="python",
    ),
    Key(
        "dispatcher.max_memory",
        Kind.MEMORY,
        "A worker whose resident memory exceeds this after a batch is replaced (`\"-1\"` or "
        "absent: no such limit). A worker is also replaced after any batch that stopped at "
        "its `limits.memory` (`reached: memory-limit`).",
        example="1G",
        variant="python",
    ),
    Key(
        "dispatcher.throttling",
        Kind.RATES,
        "MediaWiki's `$wgJobBackoffThrottling`: `{\"htmlCacheUpdate\": 15}` lets the workers "
        "of a host run at most about 15 work items per second of that type (randomized "
        "rounding of `workItemCount()/rate` seconds of backoff per job, shared through the "
        "host's backoff file). `0` or absent: no limit. `mwjobs run-jobs --config-file` "
        "uses the same rates; its `--throttle TYPE=RATE` overrides one.",
        default=(),
        example={"htmlCacheUpdate": 15},
        zero_ok=True,
        variant="python",
    ),
    # ----------------------------------------------------------------------- wrapper
    Key(
        "wrapper",
        Kind.IGNORED,
        "A key from the service's 2014 sample. mwjobs accepts it so that old files still "
        "load, ignores it, and warns about it. Use `dispatcher`.",
        example="php /srv/mediawiki/multiversion/MWScript.php",
        default_doc="ignored",
    ),
    # ----------------------------------------------------------------------- mwjobs
    Key(
        "mwjobs",
        Kind.OBJECT,
        "Extensions. The PHP service ignores unknown top-level keys, so a file with an "
        "`mwjobs` block still works there.",
    ),
    Key(
        "mwjobs.queues",
        Kind.OBJECT,
        "Where the queues live, whatever the backend: URLs instead of the `redis` section. "
        "Give this or `redis`, not both. The PHP service cannot use a file that has only "
        "this (it finds no `redis`).",
        alternative="redis",
    ),
    Key(
        "mwjobs.queues.partitions",
        Kind.LOCATIONS,
        "Where the jobs are, one URL per partition. The chron walks each; `mwjobs run-jobs "
        "--config-file` and the python dispatcher's workers use the first. Listing the "
        "same URL twice is an error.",
        default=REQUIRED,
        example=["redis://127.0.0.1:6379/0"],
    ),
    Key(
        "mwjobs.queues.aggregators",
        Kind.LOCATIONS,
        "Where the ready-queue map and the chron pool lock are; the first one that answers "
        "is used. May be left out for a backend that needs none.",
        default=(),
        example=["redis://127.0.0.1:6379/0"],
    ),
    Key(
        "mwjobs.timing",
        Kind.OBJECT,
        "These values are hard-coded in the PHP service. The keys use Python names (the PHP "
        "property names are suggested if you type them).",
    ),
    Key(
        "mwjobs.timing.hp_max_delay",
        Kind.SECONDS,
        "The longest time a group stays in low priority before it switches back to high.",
        default=120,
    ),
    Key(
        "mwjobs.timing.lp_max_delay",
        Kind.SECONDS,
        "The longest time a group stays in high priority before it gives low priority a "
        "turn.",
        default=600,
    ),
    Key(
        "mwjobs.timing.hp_max_time",
        Kind.SECONDS,
        "`%(maxtime)` for runs started in high priority.",
        default=30,
    ),
    Key(
        "mwjobs.timing.lp_max_time",
        Kind.SECONDS,
        "`%(maxtime)` for runs started in low priority.",
        default=60,
    ),
    Key(
        "mwjobs.timing.aggregator_cache_ttl",
        Kind.DURATION,
        "How long the runner reuses the ready-queue map it has read (PHP "
        "`AGGR_CACHE_TTL_SEC`).",
        default=1.0,
        zero_ok=True,
    ),
    Key(
        "mwjobs.timing.chron_period",
        Kind.DURATION,
        "Pause between chron passes (PHP `PERIOD_WAIT_US`).",
        default=1.0,
    ),
    Key(
        "mwjobs.timing.abandoned_retention",
        Kind.SECONDS,
        "How long abandoned jobs are kept before they are pruned.",
        default=7 * 86400,
        default_doc="`604800` (7 days)",
    ),
    Key(
        "mwjobs.timing.pool_lock_ttl",
        Kind.SECONDS,
        "Age after which a chron pool lock counts as stale.",
        default=300,
    ),
    Key(
        "mwjobs.timing.chron_batch",
        Kind.INT,
        "The most jobs the chron script moves per queue per call (PHP `LUA_MAX_JOBS`).",
        default=500,
    ),
    Key(
        "mwjobs.timing.kill_grace",
        Kind.DURATION,
        "Time between SIGTERM and SIGKILL for a run that exceeds `limits.real`.",
        default=5.0,
        zero_ok=True,
    ),
    Key(
        "mwjobs.timing.legacy_maxtime_inversion",
        Kind.BOOL,
        "`true` reproduces the PHP runner's maxtime inversion: high-priority runs get "
        "`lp_max_time` (60) and low-priority runs get `hp_max_time` (30).",
        default=False,
    ),
    Key(
        "mwjobs.timing.stop_grace",
        Kind.DURATION,
        "At shutdown (SIGTERM/SIGINT) the runner sends SIGTERM to every running dispatch "
        "process group, waits this long for them to exit, then sends SIGKILL.",
        default=5.0,
        zero_ok=True,
    ),
    Key(
        "mwjobs.timing.wake_on_push",
        Kind.BOOL,
        "The runner subscribes to the wake-up channel of each `redis.queues` server, on "
        "which mwjobs pushes name the queue that got ready jobs, and treats that queue as "
        "ready at once instead of after the chron's next pass. MediaWiki's own pushes "
        "publish nothing and are found through the ready-queue map, as before. See "
        'compatibility.md, "Push wake-ups".',
        default=True,
    ),
)


def _index(keys: tuple[Key, ...]) -> dict[tuple[str, str | None], Key]:
    index: dict[tuple[str, str | None], Key] = {}
    for k in keys:
        if (k.path, k.variant) in index:
            raise ValueError(f"config key {k.path} ({k.variant}) is declared twice")
        index[k.path, k.variant] = k
    return index


_BY_PATH: Final = _index(KEYS)


def key(path: str, variant: str | None = None) -> Key:
    """The declaration of ``path`` (in ``variant`` when it belongs to one form only)."""
    found = _BY_PATH.get((path, variant)) or _BY_PATH.get((path, None))
    if found is None:
        raise KeyError(f"no config key {path!r} is declared (variant {variant!r})")
    return found


def children(parent: str, variant: str | None = None) -> tuple[Key, ...]:
    """The keys of the object at ``parent`` in declaration order: those of every form,
    then, with a ``variant``, that form's own."""
    return tuple(k for k in KEYS if k.parent == parent and k.variant in (None, variant))


def names(parent: str, variant: str | None = None) -> tuple[str, ...]:
    """The key names the object at ``parent`` accepts."""
    return tuple(k.name for k in children(parent, variant))


def variants(parent: str) -> tuple[str, ...]:
    """The forms of the object at ``parent``: the choices of its ``kind`` key."""
    return key(f"{parent}.kind").choice_names


def default_of(path: str, kind: type[T], variant: str | None = None) -> T:
    """The declared default of ``path``, checked to be a ``kind`` (for the model)."""
    value = key(path, variant).default
    if not isinstance(value, kind):
        raise TypeError(f"config key {path}: default {value!r} is not a {kind.__name__}")
    return value
