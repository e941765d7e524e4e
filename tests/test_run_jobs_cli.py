"""``mwjobs run-jobs`` as a real subprocess on a private Redis, against MediaWiki 1.43's
runJobs.php output (``fixtures/mediawiki-1.43/runjobs/*.json``).

The fixtures were made by real MediaWiki with jobs of the same types; ours are Python job
classes with the same behaviour (``clijobs.py`` below). Times differ, so ``time``/``elapsed``
values are compared as whole numbers only; everything else, formatting included, must be
byte-identical, except the exception text, which names Python's class and has no PHP file
and line.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from mwjobs.group import JobQueueGroup
from mwjobs.job import JobSpec
from mwjobs.queues.redis import RedisBackend
from tests.servers import RedisServer, wait_until

WIKI = "testwiki"

JOB_MODULE = """
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
    assert_fixture_shape(run_json(redis_server, jobs_dir), fixtures_dir, "failed-false")
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
        proc = subprocess.Popen(
            argv(redis_server, jobs_dir, "--result=json", "--wait", "--maxjobs=2"),
            stdout=out,
            stderr=subprocess.PIPE,
        )
        try:
            wait_until(lambda: len(documents(out_path.read_text())) == 1, 30, "the first run")
            push(group, "recentChangesUpdate", 1)  # the next run takes it and hits the limit
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            assert proc.stderr is not None
            proc.stderr.close()
    docs = documents(out_path.read_text())
    assert [d["reached"] for d in docs[:1]] == ["none-ready"]
    assert docs[-1]["reached"] == "job-limit"
    assert sum(len(d["jobs"]) for d in docs) == 2
    assert "}{" in out_path.read_text()  # concatenated, as runJobs prints them


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


def test_config_file_names_the_server_and_the_job_modules(
    redis_server: RedisServer, jobs_dir: Path, group: JobQueueGroup, tmp_path: Path
) -> None:
    config = tmp_path / "jobrunner.json"
    config.write_text(
        json.dumps(
            {
                "groups": {"basic": {"runners": 1, "include": ["*"]}},
                "redis": {"aggregators": [redis_server.address], "queues": [redis_server.address]},
                "dispatcher": {"kind": "python", "modules": ["clijobs"], "paths": [str(jobs_dir)]},
            }
        )
    )
    push(group, "refTestFail", 1)
    done = subprocess.run(
        [sys.executable, "-m", "mwjobs", "run-jobs", f"--wiki={WIKI}", "--result=json",
         f"--config-file={config}", f"--backoff-file={tmp_path / 'b.json'}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
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
    assert "no queue server: give --redis" in done.stderr
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
