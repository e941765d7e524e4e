"""The runner's loop with real child processes (in-process Runner, fixed ready-queue map)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mwjobs.runner.dispatch import DispatchError, RunOutcome
from mwjobs.runner.result import RunSummary, parse_result
from mwjobs.runner.select import PriorityState
from mwjobs.runner.service import Runner
from mwjobs.runner.slots import Slot
from tests.runner.conftest import HOST, Recorder, child_argv, drive, make_config

StartRunner = Callable[..., Runner]
FAST_LIMITS = {"hp_max_time": 1, "lp_max_time": 1}  # limits.real floor = 2 s
Finished = list[tuple[RunOutcome, RunSummary]]


def collect() -> tuple[Finished, Callable[[Slot, RunOutcome, RunSummary, float], None]]:
    done: Finished = []

    def on_finish(slot: Slot, outcome: RunOutcome, result: RunSummary, now: float) -> None:
        done.append((outcome, result))

    return done, on_finish


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def fixture_files(fixtures_dir: Path) -> list[Path]:
    return sorted((fixtures_dir / "runjobs").glob("*.json"))


@pytest.mark.parametrize(
    "name", ["failed-exception", "failed-false", "job-limit", "none-possible", "ok", "time-limit"]
)
def test_each_runjobs_fixture_is_counted(
    start_runner: StartRunner, fixtures_dir: Path, name: str
) -> None:
    path = fixtures_dir / "runjobs" / f"{name}.json"
    expected = json.loads(path.read_text())
    ok = sum(1 for job in expected["jobs"] if job["status"] == "ok")
    done, on_finish = collect()
    metrics = Recorder()
    config = make_config({"kind": "command", "argv": child_argv("file", str(path))})
    runner = start_runner(config, {("refreshLinks", "enwiki"): 1}, on_finish=on_finish,
                          metrics=metrics)  # fmt: skip
    drive(runner, lambda: len(done) >= 1, "a run to finish")
    outcome, result = done[0]
    assert outcome.succeeded and outcome.status == "0"
    assert (result.ok, result.failed, result.reached) == (
        ok,
        len(expected["jobs"]) - ok,
        expected["reached"],
    )
    runs = runner.totals.finished
    assert metrics.total(f"pop.refreshLinks.ok.{HOST}") == ok * runs
    assert metrics.total(f"pop.refreshLinks.failed.{HOST}") == (len(expected["jobs"]) - ok) * runs
    assert metrics.total("runner-status.error") == 0
    assert metrics.total(f"spawn.{HOST}") >= 1


def test_all_fixtures_are_in_the_test(fixtures_dir: Path) -> None:
    names = {path.stem for path in fixture_files(fixtures_dir)}
    assert names == {"failed-exception", "failed-false", "job-limit", "none-possible", "ok",
                     "time-limit"}  # fmt: skip


def test_200_kib_of_output_is_read_to_the_end(start_runner: StartRunner) -> None:
    done, on_finish = collect()
    config = make_config({"kind": "command", "argv": child_argv("big", str(200 * 1024))})
    runner = start_runner(config, {("null", "enwiki"): 1}, on_finish=on_finish)
    drive(runner, lambda: len(done) >= 1, "the big run to finish")
    outcome, result = done[0]
    assert len(outcome.stdout) > 200 * 1024
    assert result.valid, result.error
    assert result.ok == len(json.loads(outcome.stdout)["jobs"]) > 3000
    assert result.reached == "job-limit"


def test_a_run_past_its_limit_gets_sigterm_then_sigkill_and_keeps_its_slot(
    start_runner: StartRunner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "stubborn"
    config = make_config(
        {"kind": "command", "argv": child_argv("stubborn", "60", str(marker))},
        timing={**FAST_LIMITS, "kill_grace": 0.3},
        limits={"real": {"*": 2}},
    )
    metrics = Recorder()
    runner = start_runner(config, {("null", "enwiki"): 1}, metrics=metrics)
    slot = runner.groups[0].slots[0]
    drive(runner, lambda: any(marker.glob("*")), "the stubborn child to start")
    pid, pgid = (int(part) for part in next(marker.glob("*")).read_text().split())
    assert pgid == pid != os.getpgid(0)  # the leader of its own process group
    drive(runner, lambda: runner.totals.timeouts == 1, "the wall limit")
    term_at = time.monotonic()
    assert alive(pid)  # it ignores SIGTERM
    assert slot.busy and runner.totals.spawned == 1  # the slot is not reused meanwhile
    drive(runner, lambda: runner.totals.kills == 1, "SIGKILL")
    assert time.monotonic() - term_at >= 0.25
    drive(runner, lambda: runner.totals.finished == 1, "the killed child to be reaped")
    assert not group_alive(pgid)
    assert metrics.total("runner-status.timeout") == 1
    assert metrics.total("runner-status.kill") == 1
    assert metrics.total("runner-status.error") == 0
    assert "timed out [2s; max: 2s]" in caplog.text
    assert "sent SIGKILL." in caplog.text
    assert "signal 9 (SIGKILL)" in caplog.text
    drive(runner, lambda: runner.totals.spawned == 2, "the slot to be used again")


def test_output_held_open_outside_the_group_frees_the_slot_after_the_kill(
    start_runner: StartRunner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The leader exits at once, but a process it started in a new session keeps the
    output pipe open: the run lasts until its wall limit, then SIGTERM, SIGKILL (to the
    group: the sleeper is outside it) and the runner stops waiting for EOF."""
    pidfile = tmp_path / "sleeper"
    done, on_finish = collect()
    config = make_config(
        {"kind": "command", "argv": child_argv("orphan", str(pidfile))},
        timing={**FAST_LIMITS, "kill_grace": 0.2},
        limits={"real": {"*": 2}},
    )
    spawned: list[int] = []

    def on_finish_counting(slot: Slot, outcome: RunOutcome, result: RunSummary, now: float) -> None:
        spawned.append(runner.totals.spawned)
        on_finish(slot, outcome, result, now)

    runner = start_runner(config, {("null", "enwiki"): 1}, on_finish=on_finish_counting)
    try:
        drive(runner, lambda: len(done) == 1, "the run to be given up")
        outcome, result = done[0]
        assert outcome.status == "0" and result.valid  # its output up to then was kept
        assert outcome.problem == "its output was still held open by a process outside its group"
        assert runner.totals.timeouts == 1 and runner.totals.kills == 1
        assert spawned == [1]  # the slot was not reused before the run was over
    finally:
        for pid in pidfile.read_text().split():
            os.kill(int(pid), 9)


def test_a_failing_run_is_logged_with_its_stderr_and_the_runner_goes_on(
    start_runner: StartRunner, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Recorder()
    config = make_config({"kind": "command", "argv": child_argv("fail")})
    runner = start_runner(config, {("null", "enwiki"): 1}, metrics=metrics)
    drive(runner, lambda: runner.totals.errors >= 2, "two failed runs")
    assert metrics.total("runner-status.error") >= 2
    line = next(r for r in caplog.records if "gave status" in r.getMessage())
    assert line.levelno == logging.ERROR
    text = line.getMessage()
    assert text.startswith("Runner loop 0 process in slot 0 gave status '1':")
    assert "child.py fail STDERR:" in text
    assert "PHP Fatal error: deliberate failure for the test" in text


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ('{"reached": "none-ready"}', 'the result has no "jobs" entry'),
        ('[{"status": "ok"}]', "the output is JSON but not an object"),
        ("Job queue is empty.", "json_decode() error"),
        ("", "the output is empty"),
    ],
)
def test_output_without_a_result_is_an_error_never_a_crash(
    start_runner: StartRunner,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    output: str,
    problem: str,
) -> None:
    path = tmp_path / "out.txt"
    path.write_text(output)
    metrics = Recorder()
    config = make_config({"kind": "command", "argv": child_argv("file", str(path))})
    runner = start_runner(config, {("null", "enwiki"): 1}, metrics=metrics)
    drive(runner, lambda: runner.totals.errors >= 2, "two runs")
    assert metrics.total("runner-status.error") >= 2
    assert problem in caplog.text
    assert "gave status '0'" in caplog.text


def test_output_shown_in_errors_is_cut_at_4_kib(
    start_runner: StartRunner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "out.txt"
    path.write_text("x" * 10000)
    config = make_config({"kind": "command", "argv": child_argv("file", str(path))})
    runner = start_runner(config, {("null", "enwiki"): 1})
    drive(runner, lambda: runner.totals.errors >= 1, "a run")
    assert "STDOUT:\n\t" + "x" * 4096 + "...\n" in caplog.text + "\n"


def test_each_placeholder_value_is_exactly_one_argument(
    start_runner: StartRunner, tmp_path: Path
) -> None:
    argv = child_argv("record", str(tmp_path), "--wiki=%(db)x", "%(type)x", "%(maxtime)x",
                      "%(maxmem)x", "u=%(db)u")  # fmt: skip
    domain = "en wiki';rm -rf $HOME `id` \"q\"; %(type)x"
    job_type = "a b|c&d"
    config = make_config({"kind": "command", "argv": argv}, limits={"memory": {"*": "1G"}})
    runner = start_runner(config, {(job_type, domain): 1})
    runner.groups[0].priority = PriorityState(high=True, since=runner.monotonic())
    drive(runner, lambda: any(tmp_path.glob("*.json")), "the recording child")
    record = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert record["argv"] == [
        f"--wiki={domain}",
        job_type,
        "30",  # high priority: hp_max_time (the PHP runner passed 60: docs/compatibility.md)
        "1G",
        "u=en%20wiki%27%3Brm%20-rf%20%24HOME%20%60id%60%20%22q%22%3B%20%25%28type%29x",
    ]


@pytest.mark.parametrize(("legacy", "high", "maxtime"),
                         [(False, True, "30"), (False, False, "60"), (True, True, "60"),
                          (True, False, "30")])  # fmt: skip
def test_maxtime_follows_the_priority(
    start_runner: StartRunner, tmp_path: Path, legacy: bool, high: bool, maxtime: str
) -> None:
    argv = child_argv("record", str(tmp_path), "%(maxtime)x")
    config = make_config(
        {"kind": "command", "argv": argv}, timing={"legacy_maxtime_inversion": legacy}
    )
    runner = start_runner(config, {("null", "enwiki"): 1})
    runner.groups[0].priority = PriorityState(high=high, since=runner.monotonic())
    drive(runner, lambda: any(tmp_path.glob("*.json")), "the recording child")
    record = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert record["argv"] == [maxtime]


def test_a_group_with_only_low_priority_work_flips_to_low_at_once(
    start_runner: StartRunner, tmp_path: Path
) -> None:
    argv = child_argv("record", str(tmp_path), "%(type)x", "%(maxtime)x")
    groups = {"basic": {"runners": 1, "include": ["a"], "low-priority": ["b"]}}
    config = make_config({"kind": "command", "argv": argv}, groups=groups)
    metrics = Recorder()
    runner = start_runner(config, {("b", "enwiki"): 1}, metrics=metrics)
    runner.groups[0].priority = PriorityState(high=True, since=runner.monotonic())
    drive(runner, lambda: any(tmp_path.glob("*.json")), "a run of the low-priority type")
    record = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert record["argv"] == ["b", "60"]
    assert metrics.total(f"prioritychange.{HOST}") >= 1
    assert metrics.total(f"some-full.{HOST}") >= 1  # the step that found nothing to start


def test_the_loop_wakes_on_a_childs_exit_not_on_a_timer(start_runner: StartRunner) -> None:
    """With the only slot busy, the next deadline is the run's 120 s limit: only the exit
    itself can wake the loop. Ten runs back to back must take far less than that."""
    config = make_config({"kind": "command", "argv": ["true"]})
    spawns: list[float] = []
    finishes: list[float] = []
    runner = start_runner(
        config,
        {("null", "enwiki"): 1},
        on_spawn=lambda slot, now: spawns.append(now),
        on_finish=lambda slot, outcome, result, now: finishes.append(now),
    )
    started = time.monotonic()
    drive(runner, lambda: runner.totals.finished >= 10, "ten runs", timeout=30)
    assert time.monotonic() - started < 10
    gaps = [spawn - finish for finish, spawn in zip(finishes, spawns[1:], strict=False)]
    assert max(gaps) < 0.05  # the slot is refilled in the same turn of the loop


def test_an_early_finish_lays_off_the_queue_until_the_next_map_read(
    start_runner: StartRunner, tmp_path: Path
) -> None:
    argv = child_argv("record", str(tmp_path), "%(db)x")
    config = make_config({"kind": "command", "argv": argv},
                         timing={"aggregator_cache_ttl": 60})  # fmt: skip
    runner = start_runner(config, {("null", "enwiki"): 1, ("null", "dewiki"): 1})
    drive(runner, lambda: runner.totals.finished == 2, "two runs")
    for _ in range(5):
        runner.step(max_wait=0.02)
    assert runner.totals.spawned == 2  # both queues laid off until the map is read again
    wikis = sorted(json.loads(p.read_text())["argv"][0] for p in tmp_path.glob("*.json"))
    assert wikis == ["dewiki", "enwiki"]


def test_backoffs_keep_a_throttled_type_from_starting(
    start_runner: StartRunner, tmp_path: Path
) -> None:
    result = {"jobs": [], "reached": "throttled", "backoffs": {"slow": time.time() + 60}}
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result))
    types: list[str] = []
    config = make_config({"kind": "command", "argv": child_argv("file", str(path))})
    runner = start_runner(
        config,
        {("slow", "enwiki"): 1, ("fast", "enwiki"): 1},
        on_spawn=lambda slot, now: types.append(slot.run.request.job_type if slot.run else ""),
    )
    drive(runner, lambda: len(types) >= 6, "six runs")
    first_slow = types.index("slow") if "slow" in types else len(types)
    assert "slow" not in types[first_slow + 1 :]


def test_a_run_that_cannot_start_is_counted_and_retried_after_a_pause(
    start_runner: StartRunner, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Recorder()
    config = make_config({"kind": "command", "argv": ["%(type)x"]})  # a program per queue
    runner = start_runner(config, {("no-such-program-xyz", "enwiki"): 1}, metrics=metrics)
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        runner.step(max_wait=0.05)
    assert 2 <= runner.totals.errors <= 4  # 0.1 s, then 0.2 s pauses: not a tight loop
    assert metrics.total("runner-status.error") == runner.totals.errors
    assert "Could not spawn process in loop 0" in caplog.text


def test_a_dispatcher_program_that_does_not_exist_stops_the_start() -> None:
    config = make_config("/nonexistent/php runJobs.php --wiki=%(db)x")
    with pytest.raises(DispatchError, match="'/nonexistent/php' is not found"):
        Runner(config, ready=None, metrics=Recorder(), guard=False)


def test_stop_terms_then_kills_and_reaps_everything(
    start_runner: StartRunner, tmp_path: Path
) -> None:
    marker = tmp_path / "stubborn"
    config = make_config(
        {"kind": "command", "argv": child_argv("stubborn", "60", str(marker))},
        runners=2,
        timing={"stop_grace": 0.3},
    )
    runner = start_runner(config, {("null", "enwiki"): 1})
    drive(runner, lambda: len(list(marker.glob("*"))) == 2, "two stubborn runs")
    pgids = [slot.run.pid for slot in runner.groups[0].slots if slot.run and slot.run.pid]
    runner.request_stop()
    drive(runner, lambda: runner.finished, "the stop")
    assert runner.totals.kills == 2 and runner.totals.spawned == 2
    assert not any(group_alive(pgid) for pgid in pgids)


def test_parse_result_keeps_what_the_runner_uses(fixtures_dir: Path) -> None:
    for path in fixture_files(fixtures_dir):
        assert parse_result(path.read_bytes()).valid


def test_a_pushed_queue_runs_before_the_map_knows_it_and_outlives_an_older_run(
    start_runner: StartRunner, tmp_path: Path
) -> None:
    # aggregator_cache_ttl 0: the (empty) map replaces the runner's copy at every turn.
    config = make_config({"kind": "command", "argv": child_argv("hold", str(tmp_path))})
    queue = ("null", "enwiki")
    runner = start_runner(config, {})
    runner.step(max_wait=0)
    runner.pushed({queue})
    drive(runner, lambda: runner.totals.spawned == 1, "the pushed queue's run")
    runner.pushed({queue})  # while that run holds: it may have popped before this push
    (tmp_path / "release").touch()
    drive(runner, lambda: runner.totals.spawned == 2, "a run for the second push")
    drive(runner, lambda: runner.totals.finished == 2, "both runs to end")
    for _ in range(5):  # no push since: the early end lays the queue off, no third run
        runner.step(max_wait=0.01)
    assert runner.totals.spawned == 2
