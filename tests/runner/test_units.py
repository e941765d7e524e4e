"""Pure parts of the runner: result parsing, slot rules, placeholder substitution (checked
against real PHP), the command dispatcher's argv, the child guard, and the config keys."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mwjobs.config import (
    CommandDispatcherConfig,
    GroupConfig,
    HttpDispatcherConfig,
    parse_config,
)
from mwjobs.errors import ConfigError
from mwjobs.runner.dispatch import RunRequest, escapeshellarg, substitute
from mwjobs.runner.dispatch.command import CommandDispatcher
from mwjobs.runner.dispatch.http import array_to_cgi, query_signature
from mwjobs.runner.guard import ChildGuard
from mwjobs.runner.result import parse_result
from mwjobs.runner.select import PriorityState
from mwjobs.runner.slots import Action, Slot, SlotGroup, StopReason, next_deadline, overdue_action
from tests.runner.conftest import config_doc
from tests.servers import wait_until

PHP = shutil.which("php")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=20)


def php(code: str, *args: str) -> str:
    """Run a PHP snippet with ``args`` as $argv[1..] and return its output."""
    if PHP is None:
        raise RuntimeError("php is not installed; run ./scripts/test as root")
    done = subprocess.run([PHP, "-r", code, "--", *args], capture_output=True, check=True)
    return done.stdout.decode("utf-8")  # no newline translation: "\r" must stay


# --------------------------------------------------------------------------- results


def test_result_counts_statuses_and_reads_reached_and_backoffs() -> None:
    text = (
        '{"jobs": [{"status": "ok"}, {"status": "failed"}, {"status": "ok"}, "junk", {}],'
        ' "reached": "time-limit", "elapsed": 12,'
        ' "backoffs": {"refreshLinks": 1700000000.5, "bad": "soon", "inf": 1e999}}'
    )
    result = parse_result(text.encode())
    assert (result.ok, result.failed, result.jobs) == (2, 3, 5)
    assert result.reached == "time-limit"
    assert dict(result.backoffs) == {"refreshLinks": 1700000000.5}
    assert result.elapsed_ms == 12 and result.valid


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "the output is empty"),
        (" \n\t", "the output is empty"),
        ("null", "not an object (NoneType)"),
        ("[]", "not an object (list)"),
        ('{"jobs": {}}', 'has a non-list "jobs"'),
        ('{"reached": "x"}', 'has no "jobs"'),
        ('{"jobs": [], "x": NaN}', "json_decode() error"),
        ('{"jobs": []}{"jobs": []}', "json_decode() error"),  # runJobs --wait output
        ("\xff\xfe", "json_decode() error"),
    ],
)
def test_unusable_output_is_an_error_result(text: str, error: str) -> None:
    result = parse_result(text.encode("latin-1"))
    assert not result.valid
    assert result.error is not None and error in result.error
    assert (result.ok, result.failed) == (0, 0)


def test_php_trim_and_empty_backoffs_array() -> None:
    result = parse_result(b'\0 {"jobs": [], "reached": "none-ready", "backoffs": []}\n\x0b')
    assert result.valid and dict(result.backoffs) == {} and result.elapsed_ms is None


@given(st.binary(max_size=200))
def test_parse_result_never_raises(data: bytes) -> None:
    parse_result(data)


# --------------------------------------------------------------------------- slots


class FakeRun:
    """Just enough of a Run for the slot rules."""

    def __init__(self, limit: float) -> None:
        self.request = RunRequest("null", "enwiki", 30, "300M", limit)


def busy_slot(limit: float, started: float) -> Slot:
    slot = Slot(0)
    slot.assign(FakeRun(limit), started, True)  # type: ignore[arg-type]
    return slot


def test_overdue_action_terms_once_then_kills_once() -> None:
    slot = busy_slot(limit=10, started=100)
    assert overdue_action(slot, 109.9) is None
    assert next_deadline(slot) == 110
    assert overdue_action(slot, 110) is Action.TERMINATE
    slot.terminated(110, 115, StopReason.TIMEOUT)
    assert overdue_action(slot, 114.9) is None and next_deadline(slot) == 115
    assert overdue_action(slot, 115) is Action.KILL
    slot.killed = True
    assert overdue_action(slot, 999) is None and next_deadline(slot) is None
    assert slot.busy  # busy until the run is reaped: never reused while it may live


def test_a_shutdown_keeps_the_earlier_kill_deadline_and_the_first_reason() -> None:
    slot = busy_slot(limit=10, started=0)
    slot.terminated(10, 15, StopReason.TIMEOUT)
    slot.terminated(11, 20, StopReason.SHUTDOWN)
    assert (slot.kill_at, slot.reason) == (15, StopReason.TIMEOUT)
    slot.terminated(12, 12, StopReason.SHUTDOWN)
    assert slot.kill_at == 12


@settings(max_examples=200)
@given(st.integers(0, 6), st.lists(st.tuples(st.integers(0, 6), st.sets(st.integers(0, 8)))))
def test_resize_never_drops_a_busy_slot(start: int, steps: list[tuple[int, set[int]]]) -> None:
    group = SlotGroup(GroupConfig("g", start, include=("*",)), PriorityState(True, 0.0))
    for target, to_busy in steps:
        for slot in group.free_slots():
            if slot.index in to_busy:
                slot.assign(FakeRun(10), 0.0, True)  # type: ignore[arg-type]
        busy_before = {id(slot) for slot in group.busy_slots()}
        group.resize(target)
        assert busy_before <= {id(slot) for slot in group.slots}
        active = [slot for slot in group.slots if not slot.retired]
        assert len(active) == target
        assert all(slot.busy for slot in group.slots if slot.retired)
        assert len({slot.index for slot in group.slots}) == len(group.slots)
        for slot in list(group.busy_slots()):  # some runs end
            if slot.index % 2:
                group.release(slot)
        assert all(slot.busy for slot in group.slots if slot.retired)


# --------------------------------------------------------------------------- placeholders


@settings(max_examples=50, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=8))
def test_escapeshellarg_and_rawurlencode_match_php(values: list[str]) -> None:
    ours = [[escapeshellarg(v), substitute("%(db)u", {"db": v})] for v in values]
    code = (
        "$out = []; foreach (json_decode($argv[1]) as $v) "
        "$out[] = [escapeshellarg($v), rawurlencode($v)]; echo json_encode($out);"
    )
    assert json.loads(php(code, json.dumps(values))) == ours


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.sampled_from(["type", "title", "maxtime", "a b", "x~"]), TEXT,
                       min_size=1))  # fmt: skip
def test_signature_matches_mediawiki_in_php(params: dict[str, str]) -> None:
    code = (
        '$q = json_decode($argv[1], true); ksort($q); $p = [];'
        "foreach ($q as $k => $v) { $p[] = urlencode($k) . '=' . urlencode($v); }"
        "echo hash_hmac('sha1', implode('&', $p), $argv[2]);"
    )
    assert query_signature(params, "key~ with space") == php(code, json.dumps(params),
                                                             "key~ with space")  # fmt: skip
    assert "&" not in array_to_cgi({"k": "a&b"}).replace("k=a%26b", "")


def test_substitution_is_one_pass() -> None:
    values = {"db": "%(type)x", "type": "t", "maxtime": "30", "maxmem": "1G"}
    assert substitute("%(db)x/%(type)x/%(maxtime)u%(maxmem)x", values) == "%(type)x/t/301G"
    assert substitute("%(db)u", {"db": "a b/ü~"}) == "a%20b%2F%C3%BC~"
    assert substitute("%(other)x %(db)s", values) == "%(other)x %(db)s"


def test_the_php_template_becomes_one_argument_per_placeholder() -> None:
    cfg = parse_config(json.dumps(config_doc(
        "php /srv/mw/maintenance/runJobs.php --wiki=%(db)x --type=%(type)x "
        "--maxtime=%(maxtime)x --memory-limit=%(maxmem)x --result=json"
    )))  # fmt: skip
    assert isinstance(cfg.dispatcher, CommandDispatcherConfig)
    request = RunRequest("a b;c", "en'wiki $(x)", 30, "300M", 60.0)
    assert CommandDispatcher(cfg.dispatcher).argv_for(request) == [
        "php", "/srv/mw/maintenance/runJobs.php", "--wiki=en'wiki $(x)", "--type=a b;c",
        "--maxtime=30", "--memory-limit=300M", "--result=json",
    ]  # fmt: skip


def test_the_shell_opt_in_quotes_each_value_as_php_did(tmp_path: Path) -> None:
    out = tmp_path / "args"
    cfg = parse_config(json.dumps(config_doc(
        {"kind": "command", "shell": f"printf '%s\\n' %(db)x %(type)x > {out}"}
    )))  # fmt: skip
    disp = cfg.dispatcher
    assert isinstance(disp, CommandDispatcherConfig) and disp.shell
    request = RunRequest("t'; touch pwned #", "en wiki", 30, "300M", 60.0)
    dispatcher = CommandDispatcher(disp)
    assert dispatcher.describe(request).startswith("printf '%s\\n' 'en wiki' 't'\\''; touch")
    with selectors.DefaultSelector() as selector:
        run = dispatcher.start(request, selector)
        deadline = time.monotonic() + 10
        while (outcome := run.poll()) is None and time.monotonic() < deadline:
            for key, _ in selector.select(0.05):
                key.data()
    assert outcome is not None and outcome.succeeded
    assert out.read_text().splitlines() == ["en wiki", "t'; touch pwned #"]
    assert not Path("pwned").exists()


# --------------------------------------------------------------------------- config keys


def parse(dispatcher: object, **timing: object) -> object:
    doc = config_doc(dispatcher, timing=timing or None)
    return parse_config(json.dumps(doc), "t.json")


def test_http_special_mode_keys() -> None:
    cfg = parse({"kind": "http", "url": "https://%(db)u.example.org/w/index.php",
                 "mode": "special", "secret_env": "MW_KEY", "maxjobs": 20})  # fmt: skip
    assert cfg.dispatcher == HttpDispatcherConfig(  # type: ignore[attr-defined]
        "https://%(db)u.example.org/w/index.php", None, "special", None, "MW_KEY", 20
    )
    inline = parse({"kind": "http", "url": "http://h/w/index.php", "mode": "special",
                    "secret": "abc"})  # fmt: skip
    assert "abc" not in repr(inline)
    assert inline.to_dict()["dispatcher"]["secret"] == "***"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("dispatcher", "message"),
    [
        ({"kind": "http", "url": "http://h/", "mode": "special"}, "needs one of secret"),
        ({"kind": "http", "url": "http://h/", "mode": "special", "secret": "a",
          "secret_env": "B"}, "needs one of secret"),
        ({"kind": "http", "url": "http://h/", "mode": "special", "secret_env": "1X"},
         "not an environment variable name"),
        ({"kind": "http", "url": "http://h/", "secret": "a"}, "only used in mode special"),
        ({"kind": "http", "url": "http://h/", "mode": "signed"}, "is not an HTTP mode"),
        ({"kind": "command", "argv": ["php"], "shell": "php"}, "together with argv"),
        ({"kind": "command", "shell": "php %(wiki)x"}, "unknown placeholder %(wiki)x"),
        ("php runJobs.php 2>&1", '{"kind": "command", "shell": "..."}'),
    ],
)  # fmt: skip
def test_bad_dispatcher_keys(dispatcher: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(dispatcher)
    assert message in str(info.value)


def test_stop_grace_and_docs() -> None:
    assert parse("php x", stop_grace=0).timing.stop_grace == 0.0  # type: ignore[attr-defined]
    docs = DOCS.read_text()
    for key in ("shell", "mode", "secret", "secret_env", "maxjobs", "stop_grace"):
        assert f"`{key}`" in docs


def test_examples_load_and_give_the_documented_commands() -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    command = parse_config((examples / "jobrunner.command.json").read_text(), "c.json")
    assert isinstance(command.dispatcher, CommandDispatcherConfig)
    argv = CommandDispatcher(command.dispatcher).argv_for(
        RunRequest("refreshLinks", "enwiki", 30, "300M", 300.0)
    )
    assert argv == ["php", "/srv/mediawiki/maintenance/runJobs.php", "--wiki=enwiki",
                    "--type=refreshLinks", "--maxtime=30", "--memory-limit=300M",
                    "--result=json"]  # fmt: skip
    http = parse_config((examples / "jobrunner.http.json").read_text(), "h.json")
    assert isinstance(http.dispatcher, HttpDispatcherConfig)


# --------------------------------------------------------------------------- guard


def test_the_guard_kills_listed_groups_when_its_pipe_closes() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             process_group=0)  # fmt: skip
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             process_group=0)  # fmt: skip
    guard = ChildGuard()
    guard.start()
    try:
        assert guard.active
        guard.watch(child.pid)
        guard.watch(other.pid)
        guard.forget(other.pid)
        guard.close()  # as the kernel does when the runner dies
        wait_until(lambda: child.poll() is not None, 10, "the guarded child to die")
        assert child.returncode == -signal.SIGKILL
        assert other.poll() is None  # forgotten: left alone
    finally:
        for process in (child, other):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
