"""Python job classes, the registry, the queue group and ``mwjobs.push``."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import mwjobs
from mwjobs import group as group_module
from mwjobs.codec.formatjson import format_json
from mwjobs.errors import ConfigError, JobTypeError
from mwjobs.group import JobQueueGroup
from mwjobs.model.data import JobSpec, JobState, QueuedJob
from mwjobs.model.registry import (
    ENTRY_POINT_GROUP,
    JobRegistry,
    default_registry,
    get_job_class,
    import_job_modules,
    is_registered,
    registered_types,
)
from mwjobs.model.runnable import DuplicateJob, Job, NullJob
from mwjobs.queues.memory import MemoryBackend
from mwjobs.queues.redis import RedisBackend
from tests.queues.clock import FakeClock
from tests.servers import RedisServer

DOMAIN = "enwiki"


class Echo(Job):
    def run(self) -> bool:
        return True


class Other(Job):
    def run(self) -> bool:
        return True


@pytest.fixture
def registry() -> JobRegistry:
    reg = JobRegistry(entry_points=False)
    reg.add("echo", Echo)
    return reg


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend(clock=FakeClock())


@pytest.fixture
def group(backend: MemoryBackend, registry: JobRegistry) -> JobQueueGroup:
    return JobQueueGroup(backend, DOMAIN, registry=registry)


def popped(group: JobQueueGroup, job_type: str) -> QueuedJob:
    job = group.pop(job_type)
    assert job is not None
    return job


# -- registry ------------------------------------------------------------------------------


def test_null_is_built_in_and_unknown_types_raise() -> None:
    reg = JobRegistry(entry_points=False)
    assert reg.get("null") is NullJob
    assert reg.types() == ["null"]
    with pytest.raises(JobTypeError, match="Invalid job command 'nope'"):
        reg.get("nope")
    assert "nope" not in reg
    assert "null" in reg


def test_decorator_registers_and_names_the_class(registry: JobRegistry) -> None:
    @registry.register("sendMail")
    class SendMail(Job):
        def run(self) -> bool:
            return True

    assert registry.get("sendMail") is SendMail
    assert SendMail.type == "sendMail"
    assert SendMail({"to": "x"}).to_spec().type == "sendMail"


def test_a_type_cannot_silently_change_class(registry: JobRegistry) -> None:
    registry.add("echo", Echo)  # the same class again (a reload) is fine
    with pytest.raises(JobTypeError, match=r"already registered to tests\.test_jobs\.Echo"):
        registry.add("echo", Other)
    registry.add("echo", Other, replace=True)
    assert registry.get("echo") is Other


def test_only_job_classes_register(registry: JobRegistry) -> None:
    with pytest.raises(JobTypeError, match="not a Job subclass"):
        registry.add("bad", dict)  # type: ignore[arg-type]
    with pytest.raises(JobTypeError, match="non-empty"):
        registry.add("", Echo)


def test_the_global_decorator_uses_the_default_registry() -> None:
    @mwjobs.register("testGlobalDecorator")
    class Global(Job):
        def run(self) -> bool:
            return True

    try:
        assert get_job_class("testGlobalDecorator") is Global
        assert is_registered("testGlobalDecorator")
        assert "testGlobalDecorator" in registered_types()
    finally:
        default_registry.remove("testGlobalDecorator")


@pytest.fixture
def plugin_dist(tmp_path: Path) -> Iterator[Path]:
    """An installed distribution (a dist-info on sys.path) declaring two entry points,
    one good and one whose module does not exist."""
    (tmp_path / "plugin_jobs.py").write_text(
        "from mwjobs.model.runnable import Job\n"
        "class PluginJob(Job):\n"
        "    def run(self) -> bool:\n"
        "        return True\n"
    )
    info = tmp_path / "plugin_jobs-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugin-jobs\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\npluginJob = plugin_jobs:PluginJob\nbroken = no_such_module:X\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("plugin_jobs", None)


@pytest.mark.usefixtures("plugin_dist")
def test_entry_points_load_on_first_miss(caplog: pytest.LogCaptureFixture) -> None:
    reg = JobRegistry()
    cls = reg.get("pluginJob")
    assert cls.__name__ == "PluginJob"
    assert cls.type == "pluginJob"
    assert "pluginJob" in reg.types()
    with pytest.raises(JobTypeError, match="entry point failed to load: ModuleNotFoundError"):
        reg.get("broken")
    assert "Could not load job class broken" in caplog.text


def test_import_job_modules_puts_paths_first(tmp_path: Path) -> None:
    (tmp_path / "imported_jobs_mod.py").write_text(
        "from mwjobs.model.runnable import Job\n"
        "from mwjobs.model.registry import register\n"
        "@register('importedJob')\n"
        "class Imported(Job):\n"
        "    def run(self) -> bool:\n"
        "        return True\n"
    )
    try:
        import_job_modules(["imported_jobs_mod"], [str(tmp_path)])
        assert sys.path[0] == str(tmp_path)
        assert default_registry.get("importedJob").__name__ == "Imported"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("imported_jobs_mod", None)
        default_registry.remove("importedJob")


# -- job classes ---------------------------------------------------------------------------


def test_null_job_defaults_and_the_spec_dedup_vector() -> None:
    job = NullJob({"removeDuplicates": True})
    assert job.params == {"removeDuplicates": True, "lives": 1, "usleep": 0}
    spec = job.to_spec()
    assert spec.type == "null"
    # PHP 8.2: the dedup info of this NullJob hashes to this value.
    assert spec.dedup_hash() == "j66c9icc7d92im135tkwc7xxefhkynh"
    assert NullJob({}).to_spec().dedup_hash() == ""


def test_null_job_with_lives_pushes_a_copy_to_its_group(group: JobQueueGroup) -> None:
    group.push(NullJob({"lives": 3, "removeDuplicates": True}))
    first = popped(group, "null")
    assert NullJob.from_queued(first, group).run() is True
    copy = popped(group, "null")
    assert copy.params["lives"] == 2
    assert copy.sha1  # the copy is de-duplicated too
    assert NullJob.from_queued(copy, group).run() is True
    last = popped(group, "null")
    assert last.params["lives"] == 1
    assert NullJob.from_queued(last, group).run() is True
    assert group.pop("null") is None


def test_null_job_sleeps_usleep_microseconds() -> None:
    start = time.monotonic()
    assert NullJob({"usleep": "20000"}).run() is True  # PHP reads numeric strings too
    assert time.monotonic() - start >= 0.02


def test_null_job_without_a_group_cannot_multiply() -> None:
    with pytest.raises(RuntimeError, match="needs a queue group"):
        NullJob({"lives": 2}).run()


def test_duplicate_job_keeps_type_params_and_claim(group: JobQueueGroup) -> None:
    group.push(JobSpec.create("echo", {"a": 1}))
    queued = popped(group, "echo")
    dup = DuplicateJob.from_queued(queued, group)
    assert dup.job_type == "echo"
    assert dup.params["isDuplicate"] is True
    assert dup.params["a"] == 1
    assert dup.run() is True
    assert dup.queued is queued


def test_job_base_defaults() -> None:
    job = Echo({"x": 1})
    assert job.allow_retries is True
    assert job.work_item_count() == 1
    assert job.last_error is None
    assert job.ignore_duplicates is False
    with pytest.raises(NotImplementedError):
        Job({}).run()


def test_teardown_callbacks_get_the_status() -> None:
    seen: list[bool] = []
    job = Echo({})
    job.add_teardown_callback(seen.append)
    job.add_teardown_callback(lambda status: seen.append(not status))
    job.teardown(True)
    assert seen == [True, False]


def test_to_string_has_page_params_and_metadata(group: JobQueueGroup) -> None:
    long = "y" * 2000
    group.push(
        JobSpec.create(
            "echo",
            {"flag": True, "list": [1, 2], "big": list(range(11)), "long": long, "s": "a  b"},
            namespace=10,
            title="Some page",
            request_id="r1",
        )
    )
    queued = popped(group, "echo")
    text = str(Echo.from_queued(queued))
    assert text.startswith("echo Template:Some_page flag=1 list=[1, 2] big=array(11) ")
    assert "long=string(2000)" in text
    assert "s=a b" in text  # whitespace collapsed
    assert text.endswith(f"(id={queued.id},timestamp={queued.enqueue_timestamp},attempts=1)")


def test_to_string_shows_binary_params() -> None:
    # bytes keys are binary PHP strings; JSON cannot hold one, so that array is summed up.
    text = str(Echo({b"\xff": b"\xfe", "nested": {b"\x80": 1}}))
    assert text == "echo b'\\xff'=b'\\xfe' nested=array(1)"


# -- the queue group -----------------------------------------------------------------------


def test_push_splits_by_type_and_counts_added(group: JobQueueGroup) -> None:
    added = group.push(
        [
            JobSpec.create("echo", {"n": 1}),
            NullJob({"removeDuplicates": True}),
            NullJob({"removeDuplicates": True}),  # dropped as a duplicate within the batch
            JobSpec.create("echo", {"n": 2}),
        ]
    )
    assert added == 3
    assert group.queue("echo").sizes().unclaimed == 2
    assert group.queue("null").sizes().unclaimed == 1
    assert group.push([]) == 0


def test_a_type_can_live_on_another_backend(registry: JobRegistry) -> None:
    main, special = MemoryBackend(), MemoryBackend()
    grp = JobQueueGroup(main, DOMAIN, overrides={"echo": special}, registry=registry)
    grp.push([JobSpec.create("echo", {}), NullJob({})])
    assert special.queue(DOMAIN, "echo").sizes().unclaimed == 1
    assert main.queue(DOMAIN, "echo").sizes().unclaimed == 0
    assert main.queue(DOMAIN, "null").sizes().unclaimed == 1
    echo = popped(grp, "echo")
    assert grp.ack(echo) is True
    assert grp.types_with_jobs() == ["echo", "null"]  # both backends asked


def test_pop_any_default_type(backend: MemoryBackend, registry: JobRegistry) -> None:
    registry.add("hidden", Other)
    grp = JobQueueGroup(backend, DOMAIN, registry=registry, excluded_from_default={"hidden"})
    grp.push([JobSpec.create("hidden", {}), JobSpec.create("unregistered", {})])
    JobQueueGroup(backend, "otherwiki", registry=registry).push(JobSpec.create("echo", {}))
    assert grp.pop() is None  # excluded, unregistered, or another wiki's
    grp.push([JobSpec.create("echo", {}), NullJob({})])
    types = {popped_type(grp.pop()), popped_type(grp.pop())}
    assert types == {"echo", "null"}
    assert grp.pop() is None
    assert popped(grp, "hidden").type == "hidden"  # by name it is still reachable


def test_pop_skips_ignored_types(group: JobQueueGroup) -> None:
    group.push([JobSpec.create("echo", {}), NullJob({})])
    assert group.pop("echo", ignored={"echo"}) is None
    assert popped_type(group.pop(ignored={"echo"})) == "null"
    assert group.pop(ignored={"echo"}) is None
    assert popped_type(group.pop()) == "echo"


def popped_type(job: QueuedJob | None) -> str:
    assert job is not None
    return job.type


def test_pop_many_takes_one_queue_and_ack_many_keeps_order(group: JobQueueGroup) -> None:
    group.push([JobSpec.create("echo", {"n": n}) for n in range(3)] + [NullJob({})])
    echoes = group.pop_many("echo", 5)
    assert [job.params["n"] for job in echoes] == [0, 1, 2]
    null = popped(group, "null")
    assert group.ack_many([echoes[0], null, echoes[1]]) == [True, True, True]
    assert group.ack_many([echoes[0], echoes[2]]) == [False, True]
    assert group.queue("echo").sizes().claimed == 0


# -- mwjobs.push -----------------------------------------------------------------------------


@pytest.fixture
def no_default_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group_module, "_default", None)
    monkeypatch.delenv("MWJOBS_REDIS_URL", raising=False)
    monkeypatch.delenv("MWJOBS_WIKI", raising=False)


@pytest.mark.usefixtures("no_default_group")
def test_push_in_one_call(backend: MemoryBackend) -> None:
    mwjobs.configure(backend, DOMAIN)
    assert mwjobs.push("sendMail", {"to": "a@example.org"}) == 1
    assert mwjobs.push(NullJob({"lives": 2}), wiki="dewiki") == 1
    assert mwjobs.push([JobSpec.create("echo", {}), NullJob({})]) == 2
    q = backend.queue(DOMAIN, "sendMail")
    assert q.sizes().unclaimed == 1
    assert q.list_jobs(JobState.UNCLAIMED)[0].params["to"] == "a@example.org"
    assert backend.queue("dewiki", "null").sizes().unclaimed == 1
    assert backend.queue(DOMAIN, "null").sizes().unclaimed == 1


@pytest.mark.usefixtures("no_default_group")
def test_push_with_a_delay_and_dedup(backend: MemoryBackend) -> None:
    grp = mwjobs.configure(backend, DOMAIN)
    assert mwjobs.push("mail", {"k": 1}, delay=60, remove_duplicates=True) == 1
    assert mwjobs.push("mail", {"k": 1}, delay=60, remove_duplicates=True) == 0
    assert grp.queue("mail").sizes().delayed == 1
    with pytest.raises(TypeError, match="only taken with a job type name"):
        mwjobs.push(NullJob({}), {"x": 1})


@pytest.mark.usefixtures("no_default_group")
def test_push_without_configuration_says_how_to_fix() -> None:
    with pytest.raises(ConfigError, match=r"mwjobs.configure\(backend, wiki\)"):
        mwjobs.push("null")


@pytest.mark.usefixtures("no_default_group")
def test_push_from_the_environment_connects_lazily(
    monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    monkeypatch.setenv("MWJOBS_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    monkeypatch.setenv("MWJOBS_WIKI", DOMAIN)
    grp = group_module.default_group()  # building it does not connect
    assert grp.domain == DOMAIN
    with pytest.raises(mwjobs.QueueError):
        mwjobs.push("null")
    monkeypatch.setattr(group_module, "_default", None)
    monkeypatch.setenv("MWJOBS_REDIS_URL", redis_server.url)
    assert mwjobs.push("null", {"via": "env"}) == 1
    assert group_module.default_group().queue("null").sizes().unclaimed == 1
    group_module.default_group().queue("null").delete()


@pytest.mark.usefixtures("no_default_group")
def test_lazy_push_waits_for_the_end_of_the_deferred_block(backend: MemoryBackend) -> None:
    mwjobs.configure(backend, DOMAIN)
    mail = backend.queue(DOMAIN, "sendMail")
    mwjobs.lazy_push("sendMail", {"n": 0})  # no block: pushed now (MediaWiki's CLI case)
    assert mail.sizes().unclaimed == 1
    with mwjobs.deferred():
        mwjobs.lazy_push("sendMail", {"n": 1})
        with mwjobs.deferred():  # nested: joins the outer block
            mwjobs.lazy_push([JobSpec.create("sendMail", {"n": 2}), NullJob({})])
            mwjobs.lazy_push(NullJob({}), wiki="dewiki")
        assert mail.sizes().unclaimed == 1  # nothing yet, not even after the inner block
    assert [j.params["n"] for j in mail.list_jobs(JobState.UNCLAIMED)] == [0, 1, 2]
    assert backend.queue(DOMAIN, "null").sizes().unclaimed == 1
    assert backend.queue("dewiki", "null").sizes().unclaimed == 1


@pytest.mark.usefixtures("no_default_group")
def test_a_failed_deferred_block_queues_nothing(backend: MemoryBackend) -> None:
    mwjobs.configure(backend, DOMAIN)
    with pytest.raises(RuntimeError, match="request failed"), mwjobs.deferred():
        mwjobs.lazy_push("sendMail", {"n": 1})
        raise RuntimeError("request failed")
    assert backend.queue(DOMAIN, "sendMail").sizes().unclaimed == 0
    with mwjobs.deferred():  # the next block starts empty
        mwjobs.lazy_push("sendMail", {"n": 2})
    assert [j.params["n"] for j in
            backend.queue(DOMAIN, "sendMail").list_jobs(JobState.UNCLAIMED)] == [2]  # fmt: skip


@pytest.mark.usefixtures("no_default_group")
def test_deferred_blocks_are_per_thread(backend: MemoryBackend) -> None:
    mwjobs.configure(backend, DOMAIN)
    mail = backend.queue(DOMAIN, "sendMail")
    with mwjobs.deferred():
        other = threading.Thread(target=lambda: mwjobs.lazy_push("sendMail", {"n": 9}))
        other.start()
        other.join()
        assert mail.sizes().unclaimed == 1  # the other thread had no block: pushed at once
        mwjobs.lazy_push("sendMail", {"n": 1})
    assert mail.sizes().unclaimed == 2


@pytest.mark.usefixtures("no_default_group")
def test_a_failing_deferred_push_still_pushes_the_other_wikis(
    backend: MemoryBackend, redis_server: RedisServer
) -> None:
    mwjobs.configure(backend, DOMAIN)
    down = JobQueueGroup(RedisBackend("redis://127.0.0.1:1/0"), "downwiki")
    with pytest.raises(mwjobs.QueueError), mwjobs.deferred():
        mwjobs.lazy_push("sendMail", {"n": 1}, group=down)
        mwjobs.lazy_push("sendMail", {"n": 2})
    assert backend.queue(DOMAIN, "sendMail").sizes().unclaimed == 1


# -- FormatJson::encode --------------------------------------------------------------------

FORMAT_CASES: list[object] = [
    [1.0, 0.1, 1e25, -0.0, 1.5e-7, 1700000012.3456, 1e15, 1e17, 123456789012345678.0],
    'a/b<>&\x7f\x01\n"\\é😀',
    [[], {}, {"a": []}, {"0": 1, "1": 2}, {"1": 1}, {"05": True, "x": None}],
    {"jobs": [], "reached": "none-possible"},
]


@pytest.mark.parametrize("value", FORMAT_CASES)
def test_format_json_matches_php(value: object) -> None:
    php = subprocess.run(
        [
            "php",
            "-n",
            "-d",
            "serialize_precision=-1",
            "-r",
            "echo json_encode(json_decode(stream_get_contents(STDIN), true), JSON_PRETTY_PRINT"
            " | JSON_UNESCAPED_SLASHES | JSON_HEX_TAG | JSON_HEX_AMP);",
        ],
        input=json.dumps(value),
        capture_output=True,
        text=True,
        check=True,
    )
    assert format_json(value) == php.stdout


def test_format_json_reads_bytes_as_php_strings() -> None:
    assert format_json({b"\xc3\xa9": b"\xc3\xa9", b"5": 1}, pretty=False) == (
        '{"\\u00e9":"\\u00e9","5":1}'
    )
    for bad in ({b"a\xff": 1}, [b"\xff"]):
        with pytest.raises(ValueError, match="UTF-8"):
            format_json(bad)


def test_format_json_reproduces_the_runjobs_fixtures(fixtures_dir: Path) -> None:
    files = sorted((fixtures_dir / "runjobs").glob("*.json"))
    assert len(files) == 6
    for path in files:
        text = path.read_text()
        assert format_json(json.loads(text)) == text, path.name


def test_jobs_pushed_elsewhere_are_seen_after_an_empty_pop(
    backend: MemoryBackend, registry: JobRegistry
) -> None:
    runner = JobQueueGroup(backend, DOMAIN, registry=registry)
    producer = JobQueueGroup(backend, DOMAIN, registry=registry)
    producer.push(JobSpec.create("echo", {}))
    assert popped_type(runner.pop()) == "echo"
    assert runner.pop() is None
    producer.push(JobSpec.create("echo", {}))  # another process: runner's cache is stale
    assert popped_type(runner.pop()) == "echo"
