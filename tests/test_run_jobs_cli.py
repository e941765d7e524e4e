"""``mwjobs run-jobs`` as a real subprocess on a private Redis, against MediaWiki 1.43's
runJobs.php output (``fixtures/mediawiki-1.43/runjobs/*.json``).

The fixtures were made by real MediaWiki with jobs of the same types; ours are Python job
classes with the same behaviour (``clijobs.py`` below). Times differ, so ``time``/``elapsed``
values are compared as whole numbers only; everything else, formatting included, must be
byte-identical, except the exception text, which names Python's class and has no PHP file
and line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import redis

from mwjobs.group import JobQueueGroup
from mwjobs.model.data import JobSpec, new_root_job_params
from mwjobs.queues.redis import RedisBackend
from tests.servers import RedisServer, StatsdListener, statsd_values, wait_until

WIKI = "testwiki"

JOB_MODULE = """
import os
import resource

from mwjobs import Job, register


@register("recentChangesUpdate")
class RecentChangesUpdate(Job):
    def run(self) -> bool:
        return True


@register("refTestFail")
class RefTestFail(Job):
    def run(self) -> bool:
        self.last_error = "refTestFail: deliberate failure"
        return False


@register("refTestThrow")
class RefTestThrow(Job):
    def run(self) -> bool:
        raise RuntimeError("refTestThrow: deliberate exception")


@register("chatty")
class Chatty(Job):
    def run(self) -> bool:
        print("chatty job says hello")
        return True


@register("hardExit")
class HardExit(Job):
    def run(self) -> bool:
        os._exit(int(self.params["code"]))


_HOARD = []


@register("grow")
class Grow(Job):
    def run(self) -> bool:
        # ru_maxrss starts at the peak of the process that spawned this one (Linux copies
        # it through fork and exec): touch 32 MiB more than that peak, whatever it is, and
        # say what ru_maxrss did around it (the kernel may miss part of a peak it never
        # saw resident, e.g. under memory pressure).
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        _HOARD.append(b"x" * (before * 1024 + 32 * 1024 * 1024))
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with open(self.params["report"], "w") as report:
            report.write(f"{before} {after}")
        return True
"""


@pytest.fixture
def jobs_dir(tmp_path: Path) -> Path:
    (tmp_path / "clijobs.py").write_text(JOB_MODULE)
    return tmp_path


@pytest.fixture
def group(redis_server: RedisServer, redis_client: redis.Redis) -> JobQueueGroup:
    return JobQueueGroup(RedisBackend.from_client(redis_client), WIKI)


def argv(redis_server: RedisServer, jobs_dir: Path, *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mwjobs",
        "run-jobs",
        f"--wiki={WIKI}",
        f"--redis={redis_server.url}",
        f"--python-path={jobs_dir}",
        "--module=clijobs",
        f"--backoff-file={jobs_dir / 'backoffs.json'}",
        *options,
    ]


def run_jobs(
    redis_server: RedisServer, jobs_dir: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv(redis_server, jobs_dir, *options),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run_json(redis_server: RedisServer, jobs_dir: Path, *options: str) -> str:
    done = run_jobs(redis_server, jobs_dir, "--result=json", *options)
    assert done.returncode == 0, done.stderr
    return done.stdout


def without_times(text: str) -> str:
    text = re.sub(r'"time": \d+', '"time": N', text)
    return re.sub(r'"elapsed": \d+', '"elapsed": N', text)


def without_error_backoff(text: str, job_type: str) -> str:
    """A failed job sets a 1 s backoff for its type in 1 run of 50 (JobRunner's
    ``mt_rand(0, 49) == 0``, unseeded in a subprocess): when this run drew it, check it is
    exactly that and show the output as the fixture's run, which did not draw it."""
    pattern = r'"backoffs": \{\n        "' + job_type + r'": ([0-9.]+)\n    \},'
    found = re.search(pattern, text)
    if found is None:
        return text
    assert abs(float(found.group(1)) - (time.time() + 1)) < 30
    return text[: found.start()] + '"backoffs": [],' + text[found.end() :]


def assert_fixture_shape(ours: str, fixtures_dir: Path, name: str) -> dict[str, object]:
    fixture = (fixtures_dir / "runjobs" / f"{name}.json").read_text()
    assert without_times(ours) == without_times(fixture)
    response: dict[str, object] = json.loads(ours)
    return response


def push(group: JobQueueGroup, job_type: str, n: int, usleep: int = 0) -> None:
    group.push([JobSpec.create(job_type, {"usleep": usleep}) for _ in range(n)])


# -- the fixtures ------------------------------------------------------------------------------


def test_ok(
    redis_server: RedisServer, jobs_dir: Path, group: JobQueueGroup, fixtures_dir: Path
) -> None:
    push(group, "recentChangesUpdate", 2)
    out = run_json(redis_server, jobs_dir, "--batch=10")
    assert_fixture_shape(out, fixtures_dir, "ok")
    assert not out.endswith("\n")
    assert group.queue("recentChangesUpdate").sizes().total == 0


def test_failed_false(
    redis_server: RedisServer, jobs_dir: Path, group: JobQueueGroup, fixtures_dir: Path
) -> None:
    push(group, "refTestFail", 1)
    out = without_error_backoff(run_json(redis_server, jobs_dir), "refTestFail")
    assert_fixture_shape(out, fixtures_dir, "failed-false")
    assert group.queue("refTestFail").sizes().claimed == 1  # left for the chron


def test_failed_exception(
    redis_server: RedisServer, jobs_dir: Path, group: JobQueueGroup, fixtures_dir: Path
) -> None:
    push(group, "refTestThrow", 1)
    done = run_jobs(redis_server, jobs_dir, "--result=json")
    assert done.returncode == 0
    ours = done.stdout.replace(
        "RuntimeError: refTestThrow: deliberate exception",
        "RuntimeException: refTestThrow: deliberate exception"
        " in /srv/mediawiki/LocalSettings.php on line 221",
    )
    assert ours != done.stdout  # the Python error text was there
    ours = without_error_backoff(ours, "refTestThrow")
    assert_fixture_shape(ours, fixtures_dir, "failed-exception")
    assert "Traceback (most recent call last)" in done.stderr
    assert 'raise RuntimeError("refTestThrow: deliberate exception")' in done.stderr


def test_job_limit(
    redis_server: RedisServer, jobs_dir: Path, group: JobQueueGroup, fixtures_dir: Path
) -> None:
    push(group, "null", 3, usleep=300_000)
    response = assert_fixture_shape(
        run_json(redis_server, jobs_dir, "--maxjobs=2", "--type=null"), fixtures_dir, "job-limit"
    )
    times = [job["time"] for job in response["jobs"]]  # type: ignore[attr-defined]
    assert all(300 <= t < 1000 for t in times)
    assert response["elapsed"] == sum(times)
    assert group.queue("null").sizes().unclaimed == 1


def test_time_limit(
    redis_server: RedisServer, jobs_dir: Path, group: JobQueueGroup, fixtures_dir: Path
) -> None:
    # 0.26 s jobs: three end well inside the 1 s limit even on a loaded machine, the fourth
    # always crosses it, so the run stops after four jobs as in the fixture.
    push(group, "null", 6, usleep=260_000)
    out = run_json(redis_server, jobs_dir, "--maxtime=1", "--batch=3")
    assert_fixture_shape(out, fixtures_dir, "time-limit")
    sizes = group.queue("null").sizes()
    assert (sizes.unclaimed, sizes.claimed) == (2, 0)  # the prefetched rest was handed back


def test_none_possible(redis_server: RedisServer, jobs_dir: Path, fixtures_dir: Path) -> None:
    out = run_json(redis_server, jobs_dir, "--type=noSuchType")
    assert out == (fixtures_dir / "runjobs" / "none-possible.json").read_text()


# -- beyond the fixtures -------------------------------------------------------------------------


def test_memory_limit(redis_server: RedisServer, jobs_dir: Path, group: JobQueueGroup) -> None:
    push(group, "recentChangesUpdate", 2)
    response = json.loads(run_json(redis_server, jobs_dir, "--memory-limit=1M"))
    assert response["reached"] == "memory-limit"
    assert len(response["jobs"]) == 1


def test_backoffs_in_the_output(
    redis_server: RedisServer, jobs_dir: Path, group: JobQueueGroup
) -> None:
    push(group, "recentChangesUpdate", 2)
    before = time.time()
    out = run_json(redis_server, jobs_dir, "--throttle=recentChangesUpdate=0.5")
    response = json.loads(out)
    assert len(response["jobs"]) == 1  # the second is throttled
    expiry = response["backoffs"]["recentChangesUpdate"]
    assert before + 2 <= expiry <= time.time() + 2
    assert re.search(r'"backoffs": \{\n        "recentChangesUpdate": [0-9.]+\n    \},\n', out)


def test_plain_output(redis_server: RedisServer, jobs_dir: Path, group: JobQueueGroup) -> None:
    push(group, "recentChangesUpdate", 1)
    done = run_jobs(redis_server, jobs_dir)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
    assert re.fullmatch(stamp + r"recentChangesUpdate .*STARTING", lines[0])
    assert re.fullmatch(stamp + r"recentChangesUpdate .* t=\d+ good", lines[1])
    assert len(lines) == 2
    empty = run_jobs(redis_server, jobs_dir)
    assert empty.stdout == "Job queue is empty.\n"


def test_wait_prints_one_document_per_run(
    redis_server: RedisServer, jobs_dir: Path, group: JobQueueGroup
) -> None:
    push(group, "recentChangesUpdate", 1)
    out_path = jobs_dir / "out.json"
    with out_path.open("w") as out:
        args = argv(redis_server, jobs_dir, "--result=json", "--wait", "--maxjobs=2")
        with started(args, out) as proc:
            wait_until(lambda: len(documents(out_path.read_text())) == 1, 30, "the first run")
            push(group, "recentChangesUpdate", 1)  # the next run takes it and hits the limit
            assert proc.wait(timeout=30) == 0
    docs = documents(out_path.read_text())
    assert [d["reached"] for d in docs[:1]] == ["none-ready"]
    assert docs[-1]["reached"] == "job-limit"
    assert sum(len(d["jobs"]) for d in docs) == 2
    assert "}{" in out_path.read_text()  # concatenated, as runJobs prints them


@contextlib.contextmanager
def started(args: list[str], out: IO[str]) -> Iterator[subprocess.Popen[bytes]]:
    """``args`` as a process writing to ``out``, killed on the way out if still running."""
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def documents(text: str) -> list[dict[str, Any]]:
    """The JSON documents written back to back (runJobs --wait's output)."""
    decoder = json.JSONDecoder()
    docs: list[dict[str, Any]] = []
    pos = 0
    while pos < len(text):
        try:
            doc, pos = decoder.raw_decode(text, pos)
        except ValueError:
            break  # a document still being written
        docs.append(doc)
    return docs


def run_with_config(
    redis_server: RedisServer, jobs_dir: Path, tmp_path: Path, *options: str, **extra: object
) -> subprocess.CompletedProcess[str]:
    """``run-jobs --result=json`` with only a jobrunner.json naming the server and the job
    modules (plus ``extra`` top-level keys) and a backoff file."""
    config = tmp_path / "jobrunner.json"
    config.write_text(
        json.dumps(
            {
                "groups": {"basic": {"runners": 1, "include": ["*"]}},
                "redis": {"aggregators": [redis_server.address], "queues": [redis_server.address]},
                "dispatcher": {"kind": "python", "modules": ["clijobs"], "paths": [str(jobs_dir)]},
                **extra,
            }
        )
    )
    return subprocess.run(
        [sys.executable, "-m", "mwjobs", "run-jobs", f"--wiki={WIKI}", "--result=json",
         f"--config-file={config}", f"--backoff-file={tmp_path / 'b.json'}", *options],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_config_file_names_the_server_and_the_job_modules(
    redis_server: RedisServer, jobs_dir: Path, group: JobQueueGroup, tmp_path: Path
) -> None:
    push(group, "refTestFail", 1)
    done = run_with_config(redis_server, jobs_dir, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["jobs"][0]["type"] == "refTestFail"


def test_what_a_job_prints_goes_to_stderr_in_json_mode(
    redis_server: RedisServer, jobs_dir: Path, group: JobQueueGroup
) -> None:
    push(group, "chatty", 2)
    done = run_jobs(redis_server, jobs_dir, "--result=json")
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout)  # stdout is the result document alone
    assert [job["status"] for job in response["jobs"]] == ["ok", "ok"]
    assert done.stderr.count("chatty job says hello") == 2


def test_config_file_throttling_rates_apply(
    redis_server: RedisServer, jobs_dir: Path, group: JobQueueGroup, tmp_path: Path
) -> None:
    config = tmp_path / "jobrunner.json"
    dispatcher = {"kind": "python", "modules": ["clijobs"], "paths": [str(jobs_dir)],
                  "throttling": {"recentChangesUpdate": 0.5}}  # fmt: skip
    config.write_text(
        json.dumps(
            {
                "groups": {"basic": {"runners": 1, "include": ["*"]}},
                "redis": {"aggregators": [redis_server.address], "queues": [redis_server.address]},
                "dispatcher": dispatcher,
            }
        )
    )
    push(group, "recentChangesUpdate", 2)
    done = subprocess.run(
        [sys.executable, "-m", "mwjobs", "run-jobs", f"--wiki={WIKI}", "--result=json",
         f"--config-file={config}", f"--backoff-file={tmp_path / 'b.json'}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout)
    assert len(response["jobs"]) == 1  # the second waits out the 2 s backoff
    assert "recentChangesUpdate" in response["backoffs"]


def test_without_a_server_or_with_a_bad_module_it_exits_1(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "mwjobs", "run-jobs", "--wiki=x", "--result=json"]
    env_free = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        base, capture_output=True, text=True, timeout=60, check=False, env=env_free
    )
    assert done.returncode == 1
    assert "no queue server: give --queue URL" in done.stderr
    done = subprocess.run(
        [*base, "--redis=redis://127.0.0.1:1/0", "--module=no_such_jobs_module"],
        capture_output=True, text=True, timeout=60, check=False, env=env_free,
    )  # fmt: skip
    assert done.returncode == 1
    assert "No module named 'no_such_jobs_module'" in done.stderr
    assert done.stdout == ""


def test_two_processes_share_the_backoff_file_without_losing_entries(
    redis_server: RedisServer, jobs_dir: Path, group: JobQueueGroup
) -> None:
    """Every job adds 100 s to its type's backoff (0.01 items/s) and syncs at once, while
    the other process does the same for its type. MediaWiki's truncating writer would
    leave only one type, or lose deltas; here each expiry is its first sync + 200 x 100 s."""
    jobs = 200
    for job_type in ("thrA", "thrB"):
        group.push([JobSpec.create(job_type, {}) for _ in range(jobs)])
    (jobs_dir / "thrjobs.py").write_text(
        "from mwjobs import Job, register\n"
        "@register('thrA')\n"
        "class A(Job):\n"
        "    def run(self) -> bool:\n"
        "        return True\n"
        "@register('thrB')\n"
        "class B(A):\n"
        "    pass\n"
    )
    before = time.time()
    procs = [
        subprocess.Popen(
            argv(
                redis_server,
                jobs_dir,
                "--result=json",
                "--module=thrjobs",
                "--nothrottle",
                f"--type={job_type}",
                f"--throttle={job_type}=0.01",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for job_type in ("thrA", "thrB")
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    after = time.time()
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert len(json.loads(out)["jobs"]) == jobs
    stored = json.loads((jobs_dir / "backoffs.json").read_text())
    assert set(stored) == {"thrA", "thrB"}
    for expiry in stored.values():
        assert before + jobs * 100 <= expiry <= after + jobs * 100


# -- --procs ------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
RECORD = "e2eRecord"  # tests/runner/pyjobs.py: records each run on the Redis server
RECORD_MODULE = (f"--python-path={ROOT}", "--module=tests.runner.pyjobs")


def strict_documents(text: str) -> list[dict[str, Any]]:
    """JSON documents back to back, with nothing else around or between them."""
    decoder = json.JSONDecoder()
    docs: list[dict[str, Any]] = []
    pos = 0
    while pos < len(text):
        doc, pos = decoder.raw_decode(text, pos)  # raises on a torn or interleaved document
        docs.append(doc)
    return docs


def children_of(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry.name))
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (an orphan's reaper may be slow)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_procs_runs_every_job_once_in_as_many_children(
    redis_server: RedisServer, jobs_dir: Path, group: JobQueueGroup, redis_client: redis.Redis
) -> None:
    # 10 ms each: about a second of work, so every child gets a share.
    group.push([JobSpec.create(RECORD, {"n": i, "sleep": 0.01}) for i in range(300)])
    proc = subprocess.Popen(
        argv(redis_server, jobs_dir, "--result=json", "--procs=3", *RECORD_MODULE),
        stdout=subprocess.PIPE,  # a pipe: documents over 4 KiB could interleave without the lock
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    docs = strict_documents(out)
    assert len(docs) == 3
    assert sum(len(doc["jobs"]) for doc in docs) == 300
    assert {doc["reached"] for doc in docs} == {"none-ready"}
    assert max(len(json.dumps(doc)) for doc in docs) > 4096  # longer than PIPE_BUF
    assert redis_client.scard("e2e:runs") == 300
    assert redis_client.llen("e2e:repeats") == 0  # none ran twice
    pids = {int(pid) for pid in redis_client.smembers("e2e:pids")}
    assert len(pids) == 3 and proc.pid not in pids  # three children, not the parent


@pytest.mark.parametrize("value", ["0", "1001", "abc", "-2", "1.5", ""])
def test_procs_refuses_values_outside_1_to_1000(tmp_path: Path, value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mwjobs", "run-jobs", "--wiki=x", "--redis=redis://127.0.0.1:1/0",
         f"--procs={value}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2  # a usage error, as click's own
    assert f"Error: Invalid argument to --procs: '{value}'" in done.stderr
    assert done.stdout == ""


def test_procs_exits_with_the_first_failing_childs_status(
    redis_server: RedisServer, jobs_dir: Path, group: JobQueueGroup
) -> None:
    group.push([JobSpec.create("hardExit", {"code": 7})])
    done = run_jobs(redis_server, jobs_dir, "--result=json", "--procs=2")
    assert done.returncode == 7, done.stderr
    [doc] = strict_documents(done.stdout)  # the other child's; the first died in its job
    assert doc["jobs"] == []
    assert run_jobs(redis_server, jobs_dir, "--result=json", "--procs=2").returncode == 0


def _start_waiting_children(
    redis_server: RedisServer, jobs_dir: Path, n: int
) -> tuple[subprocess.Popen[bytes], set[int]]:
    with (jobs_dir / "stderr.log").open("wb") as log:
        proc = subprocess.Popen(
            argv(redis_server, jobs_dir, "--result=json", "--wait", f"--procs={n}"),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        wait_until(lambda: len(children_of(proc.pid)) == n, 30, f"{n} children")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, children_of(proc.pid)


def live_waiters(client: redis.Redis) -> list[bytes]:
    """The handoff registrations of consumers idle right now."""
    return list(client.scan_iter(match="mwjobs:jobqueue:handoff:*:live"))


def test_a_sigkilled_parent_leaves_no_child_behind(
    redis_server: RedisServer, jobs_dir: Path, redis_client: redis.Redis
) -> None:
    proc, children = _start_waiting_children(redis_server, jobs_dir, 3)
    try:
        proc.kill()
        proc.wait()
        wait_until(lambda: not any(running(pid) for pid in children), 10, "orphans to die")
    finally:
        for pid in children:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_sigterm_to_the_parent_reaches_every_child(
    redis_server: RedisServer, jobs_dir: Path, redis_client: redis.Redis
) -> None:
    proc, children = _start_waiting_children(redis_server, jobs_dir, 2)
    try:
        # Both idle in their wait (registered for handoffs), then stopped: each child leaves
        # its wait and exits 0 (run_loop's SIGTERM), so the parent does too.
        wait_until(lambda: len(live_waiters(redis_client)) == 2, 30, "both children idle")
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        assert not any(running(pid) for pid in children)  # reaped by the parent
        assert live_waiters(redis_client) == []  # they left their registrations
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- per-job statsd metrics ------------------------------------------------------------------------


def test_per_job_metrics_go_to_the_config_files_statsd(
    redis_server: RedisServer, jobs_dir: Path, redis_client: redis.Redis, tmp_path: Path,
    statsd_listener: StatsdListener,
) -> None:  # fmt: skip
    # Enqueued 30 s ago: every pickup delay is at least that.
    backend = RedisBackend.from_client(redis_client, clock=lambda: time.time() - 30)
    past = JobQueueGroup(backend, WIKI)
    past.push([JobSpec.create("null", {"usleep": 20_000}) for _ in range(2)])
    root = new_root_job_params("k", now=time.time() - 100)
    past.push([JobSpec.create("recentChangesUpdate", root)])
    past.push([JobSpec.create("grow", {"report": str(tmp_path / "grow.txt")})])
    done = run_with_config(redis_server, jobs_dir, tmp_path, "--memory-limit=max",
                           statsd=statsd_listener.address)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["jobs"]) == 4
    statsd_listener.receive_until(
        lambda lines: sum(".rss_delta." in line for line in lines) == 4,  # each job's last
        10, "four jobs' metrics",
    )  # fmt: skip
    lines = statsd_listener.lines
    assert all(ms >= 30_000 for ms in statsd_values(lines, "jobqueue.pickup_delay.all", "ms"))
    assert all(ms >= 30_000 for ms in statsd_values(lines, "jobqueue.pickup_delay.null", "ms"))
    assert len(statsd_values(lines, "jobqueue.pickup_delay.null", "ms")) == 2
    [age] = statsd_values(lines, "jobqueue.pickup_root_age.recentChangesUpdate", "ms")
    assert age >= 100_000
    assert statsd_values(lines, "jobqueue.pickup_root_age.null", "ms") == []
    runs = statsd_values(lines, "jobqueue.run.null", "ms")
    assert len(runs) == 2 and all(20 <= ms < 5000 for ms in runs)  # usleep 20 ms
    [grown] = statsd_values(lines, "jobqueue.rss_delta.grow", "c")
    job_before, job_after = map(int, (tmp_path / "grow.txt").read_text().split())
    # The executor's window holds the job's: its delta is at least what the job saw grow
    # (32 MiB and more unless the kernel missed the peak), and never negative.
    assert grown >= job_after - job_before >= 0
    assert grown > 0 or job_after == job_before
    assert len(statsd_values(lines, "jobqueue.rss_delta.null", "c")) == 2


def test_no_metrics_without_a_statsd_target(
    redis_server: RedisServer, jobs_dir: Path, group: JobQueueGroup,
    statsd_listener: StatsdListener,
) -> None:  # fmt: skip
    push(group, "recentChangesUpdate", 1)
    run_json(redis_server, jobs_dir)
    statsd_listener.drain()
    assert statsd_listener.lines == []
