"""mwjobs.config: jobrunner.json loading, defaults, validation messages and check-config."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mwjobs.cli import cli
from mwjobs.config import (
    CommandDispatcherConfig,
    GroupConfig,
    HttpDispatcherConfig,
    LimitMap,
    LimitsConfig,
    PythonDispatcherConfig,
    QueuesConfig,
    RedisConfig,
    RunnerConfig,
    StatsdConfig,
    TimingConfig,
    load_config,
    parse_config,
    schema,
    strip_comments,
)
from mwjobs.config.docs import REGENERATE, render_docs
from mwjobs.config.schema import Key, Kind
from mwjobs.errors import ConfigError
from mwjobs.queues.backends import BackendLocation
from mwjobs.queues.redis.endpoint import RedisEndpoint

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs" / "configuration.md"
MWJOBS_BIN = Path(sys.executable).parent / "mwjobs"

# jobrunner.sample.json's settings, written as the original is: with // comments.
SPEC_SAMPLE = """\
// Configuration file for MediaWiki Jobrunner
// This file is managed by Puppet
{
    "groups": {
        "basic": {
            "runners": 19,
            "include": ["*"],
            "exclude": ["AssembleUploadChunks", "PublishStashedFile", "webVideoTranscode"],
            "low-priority": ["cirrusSearchLinksUpdate", "htmlCacheUpdate", "refreshLinks"]
        },
        "gwt": {"runners": 1, "include": ["gwtoolsetUploadMetadataJob"]},
        "parsoid": {
            "runners": 20,
            "include": ["ParsoidCacheUpdateJobOnEdit"],
            "low-priority": ["ParsoidCacheUpdateJobOnDependencyChange"]
        },
        "transcode": {"runners": 0, "include": ["webVideoTranscode"]},
        "upload": {
            "runners": 7,
            "include": ["AssembleUploadChunks", "PublishStashedFile", "uploadFromUrl"]
        }
    },
    "limits": {
        // How many times to let jobs be recycled before abandoning
        "attempts": {"*": 3},
        // How long jobs can be claimed before being recycled
        "claimTTL": {"*": 3600, "webVideoTranscode": 86400},
        // runJobs.php process time limits
        "real": {"*": 300, "webVideoTranscode": 86400},
        // runJobs.php memory limits
        "memory": {"*": "300M"}
    },
    "redis": {
        // Ready queue trackers
        "aggregators": ["rdb1001.eqiad.wmnet", "rdb1003.eqiad.wmnet"],
        // Main queue servers
        "queues": ["rdb1001.eqiad.wmnet", "rdb1003.eqiad.wmnet"],
        "password": "XXXXX"
    },
    "statsd": "statsd.eqiad.wmnet:8125",
    "dispatcher": "php /srv/mediawiki/multiversion/MWScript.php runJobs.php --wiki=%(db)x \
--type=%(type)x --maxtime=%(maxtime)x --memory-limit=%(maxmem)x --result=json"
}
"""

MINIMAL: dict[str, Any] = {
    "groups": {"basic": {"runners": 2, "include": ["*"]}},
    "redis": {"aggregators": ["127.0.0.1:6379"], "queues": ["127.0.0.1:6379"]},
    "dispatcher": "php runJobs.php --wiki=%(db)x --type=%(type)x",
}

DELETE = object()


def variant(*changes: tuple[str, Any], base: dict[str, Any] | None = None) -> str:
    """MINIMAL (or ``base``) as JSON text, with dotted ``path`` keys set (or DELETEd)."""
    doc = copy.deepcopy(MINIMAL if base is None else base)
    for path, value in changes:
        *parents, last = path.split("/")
        node = doc
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return json.dumps(doc)


def parse(text: str) -> RunnerConfig:
    return parse_config(text, "jobrunner.json")


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return str(info.value)


# --------------------------------------------------------------------------- the spec sample


def test_spec_sample_loads_to_the_expected_objects() -> None:
    cfg = parse(SPEC_SAMPLE)

    assert [g.name for g in cfg.groups] == ["basic", "gwt", "parsoid", "transcode", "upload"]
    assert cfg.groups[0] == GroupConfig(
        name="basic",
        runners=19,
        include=("*",),
        exclude=("AssembleUploadChunks", "PublishStashedFile", "webVideoTranscode"),
        low_priority=("cirrusSearchLinksUpdate", "htmlCacheUpdate", "refreshLinks"),
    )
    assert cfg.groups[3] == GroupConfig("transcode", 0, include=("webVideoTranscode",))
    # The PHP service's loops: runners == 0 groups are skipped, file order kept.
    assert [g.name for g in cfg.enabled_groups] == ["basic", "gwt", "parsoid", "upload"]
    assert [g.runners for g in cfg.enabled_groups] == [19, 1, 20, 7]

    assert dict(cfg.limits.attempts.by_type) == {"*": 3}
    assert dict(cfg.limits.claim_ttl.by_type) == {"*": 3600, "webVideoTranscode": 86400}
    assert dict(cfg.limits.real.by_type) == {"*": 300, "webVideoTranscode": 86400}
    assert dict(cfg.limits.memory.by_type) == {"*": "300M"}

    assert cfg.redis is not None  # the file has a redis section
    assert cfg.redis.aggregators == (
        RedisEndpoint("rdb1001.eqiad.wmnet", 6379, password="XXXXX"),
        RedisEndpoint("rdb1003.eqiad.wmnet", 6379, password="XXXXX"),
    )
    assert cfg.redis.queues == cfg.redis.aggregators
    assert cfg.redis.password == "XXXXX"
    assert cfg.statsd == StatsdConfig("statsd.eqiad.wmnet", 8125)

    assert isinstance(cfg.dispatcher, CommandDispatcherConfig)
    assert cfg.dispatcher.argv == (
        "php",
        "/srv/mediawiki/multiversion/MWScript.php",
        "runJobs.php",
        "--wiki=%(db)x",
        "--type=%(type)x",
        "--maxtime=%(maxtime)x",
        "--memory-limit=%(maxmem)x",
        "--result=json",
    )
    assert cfg.dispatcher.template is not None
    assert cfg.dispatcher.template.startswith("php /srv/mediawiki/multiversion/MWScript.php")
    assert cfg.timing == TimingConfig()
    assert cfg.source == "jobrunner.json"
    assert cfg.warnings == ()


def php_decode(path: Path) -> Any:
    """What the PHP service's loader yields for a file: RedisJobService's comment regex, trim,
    json_decode(assoc) — run by real PHP, re-encoded as JSON (null = refused)."""
    script = (
        "$c = trim(preg_replace('/\\/\\/.*$/m', '', file_get_contents($argv[1])));"
        "echo json_encode(json_decode($c, true));"
    )
    done = subprocess.run(
        ["php", "-r", script, str(path)], capture_output=True, text=True, check=True, timeout=30
    )
    return json.loads(done.stdout)


def test_files_php_accepts_decode_the_same(tmp_path: Path) -> None:
    sample = tmp_path / "sample.json"
    sample.write_text(SPEC_SAMPLE)
    for path in (sample, EXAMPLES / "jobrunner.command.json"):
        ours = json.loads(strip_comments(path.read_text()))
        assert ours == php_decode(path), path
        assert ours["groups"]["basic"]["runners"] == 19


def test_php_cuts_urls_in_strings_but_we_keep_them() -> None:
    path = EXAMPLES / "jobrunner.http.json"
    assert php_decode(path) is None  # PHP's regex breaks the string (docs/compatibility.md)
    cfg = load_config(path)
    assert isinstance(cfg.dispatcher, HttpDispatcherConfig)
    assert cfg.dispatcher.url == (
        "http://mw.example.org/rpc/RunJobs.php"
        "?wiki=%(db)u&type=%(type)u&maxtime=%(maxtime)u&maxmem=%(maxmem)u"
    )
    assert cfg.dispatcher.timeout == 300.0
    assert cfg.redis is not None  # the file has a redis section
    assert cfg.redis.aggregators == (RedisEndpoint("127.0.0.1", 6379, db=0),)


# --------------------------------------------------------------------------- comments


def test_double_slash_inside_strings_is_data() -> None:
    text = """{
      "groups": {"a//b": {"runners": 1, "include": ["x//y"]}}, // a real comment "quoted"
      "redis": {"aggregators": ["redis://h1:6379/2"], "queues": ["rediss://h2:6380"],
                "password": "pa//ss\\"//"},
      "dispatcher": "curl -s -XPOST 'http://mw/rpc/RunJobs.php?wiki=%(db)u'" // "ignored"
    }"""
    cfg = parse(text)
    assert cfg.groups[0].name == "a//b"
    assert cfg.groups[0].include == ("x//y",)
    assert cfg.redis is not None  # the file has a redis section
    assert cfg.redis.password == 'pa//ss"//'
    assert cfg.redis.aggregators[0] == RedisEndpoint("h1", 6379, db=2, password='pa//ss"//')
    assert cfg.redis.queues[0].tls is True
    assert isinstance(cfg.dispatcher, CommandDispatcherConfig)
    assert cfg.dispatcher.argv == (
        "curl",
        "-s",
        "-XPOST",
        "http://mw/rpc/RunJobs.php?wiki=%(db)u",
    )


def test_strip_comments_keeps_offsets() -> None:
    text = '// head\n{"a": "b//c", // tail\n "d": 1}\n'
    stripped = strip_comments(text)
    assert len(stripped) == len(text)
    assert stripped.splitlines()[0] == " " * len("// head")
    assert json.loads(stripped) == {"a": "b//c", "d": 1}


def test_syntax_errors_point_at_the_file_position() -> None:
    # Line 4 is after two comment lines: positions must be those of the original file.
    text = '// one\n// two\n{"redis": {},\n  "x": 1 "y": 2}'
    message = error_of(text)
    assert message.startswith("jobrunner.json: line 4, column 10: invalid JSON")
    assert "add a comma" in message


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('{"statsd": "x",}', ["line 1, column 16", "remove the trailing comma"]),
        ('{"statsd": ["x",]}', ["line 1, column 17", "remove the trailing comma"]),
        ("{'statsd': 1}", ["line 1, column 2", "use double quotes"]),
        ("{statsd: 1}", ["line 1, column 2", 'put the key in double quotes']),
        ('{"statsd": }', ["line 1, column 12", "write a value"]),
        ("", ["line 1, column 1", "the file is empty"]),
        ("  // only a comment\n", ["the file is empty"]),
        ('{"groups": {', ["ends too early"]),
        ('{"statsd": "x\n"}', ["line 1, column 14", "(Invalid control character);"]),
        ('{"statsd": "x', ["line 1, column 12", "(Unterminated string); close the string"]),
        ('{"statsd": "a\\qb"}', ["line 1, column 14", "backslash"]),
        ('{"statsd": "x"} {}', ["line 1, column 17", "remove what follows"]),
        ('{\n  /* no */ "statsd": "x"}', ["line 2, column 3", "block comments /* */"]),
        ('{"statsd": NaN}', ["line 1, column 12", "NaN is not valid JSON"]),
        ('{"statsd": -Infinity}', ["line 1, column 12", "-Infinity is not valid JSON"]),
    ],
)
def test_json_syntax_errors(text: str, fragments: list[str]) -> None:
    message = error_of(text)
    assert message.startswith("jobrunner.json: line ")
    for fragment in fragments:
        assert fragment in message


# --------------------------------------------------------------------------- defaults & limits


def test_defaults() -> None:
    cfg = parse(variant())
    assert cfg.limits.claim_ttl == LimitMap({"*": 3600})
    assert cfg.limits.attempts == LimitMap({"*": 3})
    assert cfg.limits.real == LimitMap({"*": 3600})
    assert cfg.limits.memory == LimitMap({"*": "300M"})
    assert cfg.statsd is None
    assert cfg.redis is not None  # the file has a redis section
    assert cfg.redis.password is None
    assert cfg.groups == (GroupConfig("basic", 2, include=("*",)),)
    assert cfg.timing == TimingConfig(
        hp_max_delay=120,
        lp_max_delay=600,
        hp_max_time=30,
        lp_max_time=60,
        aggregator_cache_ttl=1.0,
        chron_period=1.0,
        abandoned_retention=7 * 86400,
        pool_lock_ttl=300,
        chron_batch=500,
        kill_grace=5.0,
        legacy_maxtime_inversion=False,
    )


def test_limits_for_types_fall_back_to_star() -> None:
    cfg = parse(
        variant(
            ("limits/claimTTL", {"webVideoTranscode": 86400}),
            ("limits/attempts", {"*": 5, "refreshLinks": 1}),
            ("limits/real", {"webVideoTranscode": 86400}),
            ("limits/memory", {"*": "512M", "webVideoTranscode": "-1"}),
        )
    )
    limits = cfg.limits
    assert limits.claim_ttl_for("webVideoTranscode") == 86400
    assert limits.claim_ttl_for("refreshLinks") == 3600  # default "*" kept (PHP's `+`)
    assert limits.attempts_for("refreshLinks") == 1
    assert limits.attempts_for("other") == 5
    assert limits.real_for("webVideoTranscode") == 86400
    assert limits.real_for("other") == 3600
    assert limits.memory_for("webVideoTranscode") == "-1"
    assert limits.memory_for("other") == "512M"
    assert limits.memory.for_type("other") == limits.memory.default == "512M"


def test_real_limits_are_raised_to_twice_the_longest_maxtime() -> None:
    cfg = parse(variant(("limits/real", {"*": 30, "a": 100, "b": 500})))
    assert dict(cfg.limits.real.by_type) == {"*": 120, "a": 120, "b": 500}
    assert cfg.warnings == (
        'limits.real["*"] = 30 is raised to 120 (2 x the longest maxtime)',
        "limits.real.a = 100 is raised to 120 (2 x the longest maxtime)",
    )
    # With longer maxtimes the floor follows, even for the default.
    timing = {"hp_max_time": 2000, "lp_max_time": 50, "lp_max_delay": 3000}
    cfg = parse(variant(("mwjobs/timing", timing)))
    assert cfg.timing.min_real == 4000
    assert dict(cfg.limits.real.by_type) == {"*": 4000}


def test_null_means_unset_as_in_php() -> None:
    text = variant(
        ("groups/basic/exclude", None),
        ("groups/basic/low-priority", None),
        ("limits", {"claimTTL": None, "memory": None}),
        ("statsd", None),
        ("redis/password", None),
        ("mwjobs", None),
    )
    cfg = parse(text)
    assert cfg.groups[0] == GroupConfig("basic", 2, include=("*",))
    assert cfg.limits.claim_ttl_for("x") == 3600
    assert cfg.statsd is None
    assert cfg.timing == TimingConfig()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("statsd.example.org", StatsdConfig("statsd.example.org", 8125)),
        ("10.0.0.1:9125", StatsdConfig("10.0.0.1", 9125)),
        ("[2001:db8::1]:8126", StatsdConfig("2001:db8::1", 8126)),
        ("[::1]", StatsdConfig("::1", 8125)),
    ],
)
def test_statsd_forms(value: str, expected: StatsdConfig) -> None:
    assert parse(variant(("statsd", value))).statsd == expected


def test_timing_overrides_and_maxtime_choice() -> None:
    cfg = parse(variant(("mwjobs/timing", {"hp_max_time": 20, "kill_grace": 0, "chron_batch": 50})))
    assert cfg.timing.hp_max_time == 20
    assert cfg.timing.kill_grace == 0.0
    assert cfg.timing.chron_batch == 50
    assert cfg.timing.lp_max_delay == 600
    # Default: each priority gets its own maxtime (the PHP inversion fixed) ...
    assert (cfg.timing.maxtime_for(True), cfg.timing.maxtime_for(False)) == (20, 60)
    # ... and the legacy option replicates the PHP service's inversion.
    legacy = parse(variant(("mwjobs/timing", {"legacy_maxtime_inversion": True}))).timing
    assert (legacy.maxtime_for(True), legacy.maxtime_for(False)) == (60, 30)


# --------------------------------------------------------------------------- dispatchers


def test_dispatcher_object_forms(tmp_path: Path) -> None:
    argv = ["/usr/bin/php", "runJobs.php", "--wiki=%(db)x", "--maxmem=%(maxmem)u"]
    cfg = parse(variant(("dispatcher", {"kind": "command", "argv": argv})))
    assert cfg.dispatcher == CommandDispatcherConfig(tuple(argv))

    cfg = parse(variant(("dispatcher", {"kind": "http", "url": "https://mw/rpc?w=%(db)u"})))
    assert cfg.dispatcher == HttpDispatcherConfig("https://mw/rpc?w=%(db)u", None)

    spec = {"kind": "python", "modules": ["myjobs.tasks"], "paths": ["lib", "/abs"], "workers": 4}
    cfg = parse(variant(("dispatcher", spec)))
    assert cfg.dispatcher == PythonDispatcherConfig(("myjobs.tasks",), ("lib", "/abs"), 4)
    # From a file, relative paths are anchored at the file's directory.
    path = tmp_path / "jobrunner.json"
    path.write_text(variant(("dispatcher", spec)))
    loaded = load_config(path)
    assert isinstance(loaded.dispatcher, PythonDispatcherConfig)
    assert loaded.dispatcher.paths == (str(tmp_path.resolve() / "lib"), "/abs")
    assert parse(variant(("dispatcher", {"kind": "python"}))).dispatcher == PythonDispatcherConfig()
    spec = {"kind": "python", "batch": 100, "max_batches": 50, "max_memory": "200M"}
    cfg = parse(variant(("dispatcher", spec)))
    assert cfg.dispatcher == PythonDispatcherConfig(batch=100, max_batches=50, max_memory="200M")
    assert cfg.to_dict()["dispatcher"]["max_batches"] == 50
    spec = {"kind": "python", "throttling": {"htmlCacheUpdate": 15, "refreshLinks": 0.5}}
    throttled = parse(variant(("dispatcher", spec))).dispatcher
    assert isinstance(throttled, PythonDispatcherConfig)
    assert throttled.throttling == (("htmlCacheUpdate", 15.0), ("refreshLinks", 0.5))


def test_string_template_becomes_argv_as_sh_would_split_it() -> None:
    template = "php 'my dir/runJobs.php' --wiki=%(db)x \"--type=%(type)x\" --x=a\\ b"
    cfg = parse(variant(("dispatcher", template)))
    assert cfg.dispatcher == CommandDispatcherConfig(
        ("php", "my dir/runJobs.php", "--wiki=%(db)x", "--type=%(type)x", "--x=a b"),
        template=template,
    )
    # Shell characters quoted in single quotes are plain data.
    quoted = "curl -a 'http://mw/r?wiki=%(db)u&type=%(type)u' -H 'X: $1|;'"
    cfg = parse(variant(("dispatcher", quoted)))
    assert isinstance(cfg.dispatcher, CommandDispatcherConfig)
    assert cfg.dispatcher.argv[-1] == "X: $1|;"


# --------------------------------------------------------------------------- validation table

BAD_CONFIGS: list[tuple[str, str, list[str]]] = [
    # (id, config text, fragments: file + key path + found + fix)
    ("runners-string", variant(("groups/basic/runners", "5")),
     ['jobrunner.json: groups.basic.runners must be an integer (got "5"); '
      "write 5 without quotes"]),
    ("runners-float", variant(("groups/basic/runners", 5.0)),
     ["groups.basic.runners must be an integer (got 5.0)", "write 5 without a decimal point"]),
    ("runners-bool", variant(("groups/basic/runners", True)),
     ["groups.basic.runners must be an integer (got true)", "write a whole number"]),
    ("runners-negative", variant(("groups/basic/runners", -1)),
     ["groups.basic.runners must be at least 0 (got -1)", "use 0 or a positive number"]),
    ("runners-missing", variant(("groups/basic/runners", DELETE)),
     ['groups.basic has no "runners"', 'add "runners": 5']),
    ("group-not-object", variant(("groups/basic", 5)),
     ["groups.basic must be an object { ... } (got 5)", "write it as { ... }"]),
    ("groups-list", variant(("groups", ["basic"])),
     ['groups must be an object { ... } (got a list ["basic"])']),
    ("group-unknown-key", variant(("groups/basic/low_priority", ["x"])),
     ['groups.basic.low_priority is not a known key; did you mean "low-priority"?']),
    ("group-empty-name", variant(("groups", {" ": {"runners": 1}})),
     ['groups[" "] has an empty name']),
    ("include-string", variant(("groups/basic/include", "refreshLinks")),
     ['groups.basic.include must be a list (got "refreshLinks")',
      'write a list: ["refreshLinks"]']),
    ("include-object", variant(("groups/basic/include", {"a": "b"})),
     ['groups.basic.include must be a list (got an object {"a": "b"})']),
    ("include-number", variant(("groups/basic/include", [1])),
     ["groups.basic.include[0] must be a string (got 1)", "double quotes"]),
    ("include-empty-string", variant(("groups/basic/include", ["a", ""])),
     ["groups.basic.include[1] is empty"]),
    ("exclude-star", variant(("groups/basic/exclude", ["*"])),
     ['groups.basic.exclude[0] "*" only has a meaning in "include"', "list job types by name"]),
    ("low-priority-star", variant(("groups/basic/low-priority", ["a", "*"])),
     ['groups.basic.low-priority[1] "*" only has a meaning in "include"']),
    ("top-unknown-typo", variant(("dispacher", "x")),
     ['jobrunner.json: dispacher is not a known key; did you mean "dispatcher"?']),
    ("top-unknown-case", variant(("Redis", {})),
     ['Redis is not a known key; did you mean "redis"?']),
    ("top-unknown-other", variant(("colour", "blue")),
     ['colour is not a known key; remove it or use a known key: "groups", "limits"']),
    ("duplicate-key",
     '{"groups": {"basic": {"runners": 1}, "basic": {"runners": 2}}, "redis": {}}',
     ["groups.basic is given more than once", "keep one"]),
    ("redis-missing", variant(("redis", DELETE)),
     ['jobrunner.json: redis is missing; add "redis": {"aggregators"']),
    ("redis-not-object", variant(("redis", "127.0.0.1")),
     ['redis must be an object { ... } (got "127.0.0.1")']),
    ("redis-unknown", variant(("redis/pasword", "x")),
     ['redis.pasword is not a known key; did you mean "password"?']),
    ("aggregators-empty", variant(("redis/aggregators", [])),
     ["redis.aggregators is an empty list", "list at least one Redis server"]),
    ("queues-missing", variant(("redis/queues", DELETE)),
     ['redis.queues is missing; add "queues": ["127.0.0.1:6379"]']),
    ("queues-string", variant(("redis/queues", "127.0.0.1:6379")),
     ['redis.queues must be a list (got "127.0.0.1:6379")', 'write a list: ["127.0.0.1:6379"]']),
    ("queues-bad-port", variant(("redis/queues", ["127.0.0.1:6379", "h:99999"])),
     ["jobrunner.json: redis.queues[1]: bad Redis server 'h:99999'", "1 to 65535"]),
    ("queues-repeated", variant(("redis/queues", ["h:6379", "h"])),
     ["redis.queues[1] repeats h:6379", "list each once"]),
    ("password-number", variant(("redis/password", 123)),
     ["redis.password must be a string (got 123)", "double quotes"]),
    ("password-empty", variant(("redis/password", "")),
     ["redis.password is empty"]),
    ("statsd-number", variant(("statsd", 8125)),
     ["statsd must be a string (got 8125)"]),
    ("statsd-bad", variant(("statsd", "host:port")),
     ['statsd is not host[:port] (got "host:port")', '"statsd.example.org:8125"']),
    ("statsd-v6-bare", variant(("statsd", "2001:db8::1")),
     ["statsd is not host[:port]", '"[::1]:8125"']),
    ("statsd-port-zero", variant(("statsd", "h:0")),
     ["statsd has port 0", "1 to 65535"]),
    ("dispatcher-missing", variant(("dispatcher", DELETE)),
     ["jobrunner.json: dispatcher is missing", "runJobs.php --wiki=%(db)x"]),
    ("dispatcher-empty", variant(("dispatcher", "  ")),
     ["dispatcher is empty"]),
    ("dispatcher-number", variant(("dispatcher", 1)),
     ["dispatcher must be a command string or an object (got 1)"]),
    ("dispatcher-pipe", variant(("dispatcher", "php runJobs.php | logger")),
     ['dispatcher uses the shell syntax "|"', "wrapper script"]),
    ("dispatcher-redirect", variant(("dispatcher", "php runJobs.php 2>&1")),
     ['dispatcher uses the shell syntax ">"']),
    ("dispatcher-variable", variant(("dispatcher", 'php "$MW/runJobs.php"')),
     ['dispatcher uses the shell syntax "$"']),
    ("dispatcher-list", variant(("dispatcher", "php a.php; php b.php")),
     ['dispatcher uses the shell syntax ";"']),
    ("dispatcher-comment", variant(("dispatcher", "php a.php # note")),
     ['dispatcher uses the shell syntax "#"']),
    ("dispatcher-quote", variant(("dispatcher", "php 'runJobs.php")),
     ["dispatcher cannot be split into arguments (No closing quotation); close every quote"]),
    ("dispatcher-backslash", variant(("dispatcher", "php runJobs.php \\")),
     ["dispatcher cannot be split into arguments (No escaped character)"]),
    ("placeholder-unknown", variant(("dispatcher", "php r.php --wiki=%(dbname)x")),
     ["dispatcher uses the unknown placeholder %(dbname)x", 'did you mean "%(db)"?']),
    ("placeholder-suffix", variant(("dispatcher", "php r.php --wiki=%(db)s")),
     ["dispatcher has %(db)s without a u or x ending", "write %(db)x"]),
    ("kind-missing", variant(("dispatcher", {"argv": ["php"]})),
     ['dispatcher.kind is missing; write "command", "http" or "python"']),
    ("kind-typo", variant(("dispatcher", {"kind": "htp", "url": "http://x"})),
     ['dispatcher.kind is not a dispatcher kind (got "htp"); did you mean "http"?']),
    ("kind-number", variant(("dispatcher", {"kind": 1})),
     ["dispatcher.kind is not a dispatcher kind (got 1)"]),
    ("argv-empty", variant(("dispatcher", {"kind": "command", "argv": []})),
     ["dispatcher.argv is missing or empty", '["php", "runJobs.php"]']),
    ("argv-placeholder", variant(("dispatcher", {"kind": "command", "argv": ["a", "%(wiki)x"]})),
     ["dispatcher.argv[1] uses the unknown placeholder %(wiki)x"]),
    ("command-unknown", variant(("dispatcher", {"kind": "command", "argv": ["a"], "arg": 1})),
     ['dispatcher.arg is not a known key; did you mean "argv"?']),
    ("url-ftp", variant(("dispatcher", {"kind": "http", "url": "ftp://mw/x"})),
     ['dispatcher.url is not an http(s) URL (got "ftp://mw/x")', "rpc/RunJobs.php"]),
    ("url-x-placeholder", variant(("dispatcher", {"kind": "http", "url": "http://mw/?w=%(db)x"})),
     ["dispatcher.url uses %(db)x in a URL", "write %(db)u"]),
    ("http-timeout-zero", variant(("dispatcher", {"kind": "http", "url": "http://h",
                                                  "timeout": 0})),
     ["dispatcher.timeout must be greater than 0 (got 0)"]),
    ("http-timeout-text", variant(("dispatcher", {"kind": "http", "url": "http://h",
                                                  "timeout": "9"})),
     ['dispatcher.timeout must be a number (got "9"); write 9 without quotes']),
    ("http-unknown", variant(("dispatcher", {"kind": "http", "url": "http://h", "timout": 9})),
     ['dispatcher.timout is not a known key; did you mean "timeout"?']),
    ("python-module", variant(("dispatcher", {"kind": "python", "modules": ["my-jobs"]})),
     ['dispatcher.modules[0] is not a module name (got "my-jobs")', "myjobs.tasks"]),
    ("python-throttling", variant(("dispatcher", {"kind": "python", "throttling": [15]})),
     ["dispatcher.throttling must be an object of job type -> rate (got a list [15])",
      '{"htmlCacheUpdate": 15}']),
    ("python-throttling-rate",
     variant(("dispatcher", {"kind": "python", "throttling": {"htmlCacheUpdate": -1}})),
     ["dispatcher.throttling.htmlCacheUpdate must be 0 or more (got -1)"]),
    ("python-workers", variant(("dispatcher", {"kind": "python", "workers": 0})),
     ["dispatcher.workers must be at least 1 (got 0)"]),
    ("python-batch", variant(("dispatcher", {"kind": "python", "batch": 0})),
     ["dispatcher.batch must be at least 1 (got 0)"]),
    ("python-max-batches", variant(("dispatcher", {"kind": "python", "max_batches": "9"})),
     ['dispatcher.max_batches must be an integer (got "9")']),
    ("python-max-memory", variant(("dispatcher", {"kind": "python", "max_memory": "1GB"})),
     ['dispatcher.max_memory is not a PHP memory size (got "1GB")']),
    ("claimttl-string", variant(("limits/claimTTL", {"*": "3600"})),
     ['jobrunner.json: limits.claimTTL["*"] must be an integer (got "3600"); '
      "write 3600 without quotes"]),
    ("claimttl-zero", variant(("limits/claimTTL", {"webVideoTranscode": 0})),
     ["limits.claimTTL.webVideoTranscode must be at least 1 (got 0)"]),
    ("claimttl-not-object", variant(("limits/claimTTL", 3600)),
     ["limits.claimTTL must be an object { ... } (got 3600)"]),
    ("attempts-zero", variant(("limits/attempts", {"refreshLinks": 0})),
     ["limits.attempts.refreshLinks must be at least 1 (got 0)", "use 1 or more"]),
    ("real-negative", variant(("limits/real", {"*": -5})),
     ['limits.real["*"] must be at least 1 (got -5)']),
    ("limit-empty-type", variant(("limits/real", {"": 5})),
     ['limits.real[""] has an empty job type']),
    ("memory-int", variant(("limits/memory", {"*": 300})),
     ['limits.memory["*"] must be a PHP memory string (got 300); write "300" in quotes']),
    ("memory-unit", variant(("limits/memory", {"*": "300MB"})),
     ['limits.memory["*"] is not a PHP memory size (got "300MB")', '"300M"']),
    ("limits-unknown", variant(("limits/claimTtl", {})),
     ['limits.claimTtl is not a known key; did you mean "claimTTL"?']),
    ("mwjobs-unknown", variant(("mwjobs/timming", {})),
     ['mwjobs.timming is not a known key; did you mean "timing"?']),
    ("timing-php-name", variant(("mwjobs/timing", {"hpMaxTime": 10})),
     ['mwjobs.timing.hpMaxTime is not a known key; did you mean "hp_max_time"?']),
    ("timing-int-text", variant(("mwjobs/timing", {"hp_max_time": "30"})),
     ['mwjobs.timing.hp_max_time must be an integer (got "30"); write 30 without quotes']),
    ("timing-int-zero", variant(("mwjobs/timing", {"pool_lock_ttl": 0})),
     ["mwjobs.timing.pool_lock_ttl must be at least 1 (got 0)"]),
    ("timing-negative", variant(("mwjobs/timing", {"kill_grace": -1})),
     ["mwjobs.timing.kill_grace must be 0 or more (got -1)"]),
    ("timing-zero-period", variant(("mwjobs/timing", {"chron_period": 0})),
     ["mwjobs.timing.chron_period must be greater than 0 (got 0)"]),
    ("timing-bool", variant(("mwjobs/timing", {"legacy_maxtime_inversion": "yes"})),
     ['mwjobs.timing.legacy_maxtime_inversion must be true or false (got "yes")']),
    ("top-level-list", "[1, 2]",
     ["jobrunner.json: the top level must be a JSON object (got a list [1, 2])"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "fragments"), [case[1:] for case in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_validation_errors_name_file_key_and_fix(text: str, fragments: list[str]) -> None:
    message = error_of(text)
    assert message.startswith("jobrunner.json: ")
    assert "; " in message  # every message carries a fix after the problem
    for fragment in fragments:
        assert fragment in message


# --------------------------------------------------------------------------- warnings


def test_warnings() -> None:
    doc = copy.deepcopy(MINIMAL)
    doc["wrapper"] = "php /srv/mediawiki/multiversion/MWScript.php"
    doc["groups"]["idle"] = {"runners": 3, "exclude": ["a"]}
    doc["mwjobs"] = {"timing": {"lp_max_time": 2000}}
    cfg = parse(json.dumps(doc))
    assert cfg.warnings == (
        "wrapper is ignored (an old PHP service key); the dispatcher is used",
        "mwjobs.timing.lp_max_time should be lower than hp_max_delay",
        'groups.idle includes no job types; add "include": ["*"] or a list of types',
        'limits.real["*"] = 3600 is raised to 4000 (2 x the longest maxtime)',
    )
    chron_only = parse(variant(("groups", DELETE)))
    assert chron_only.groups == ()
    assert chron_only.warnings == (
        "groups has no group with runners > 0; the runner will start no slots",
    )


# --------------------------------------------------------------------------- objects


def test_objects_are_frozen() -> None:
    cfg = parse(SPEC_SAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.groups[0].runners = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.limits.claim_ttl.by_type["*"] = 1  # type: ignore[index]
    assert cfg.limits.claim_ttl_for("x") == 3600
    with pytest.raises(ConfigError, match='needs a "\\*" default'):
        LimitMap({"a": 1})


def test_to_dict_masks_secrets() -> None:
    text = variant(
        ("redis/password", "s3cret"),
        ("redis/queues", ["redis://u:urlpass@q1:6380/3"]),
        ("dispatcher", {"kind": "http", "url": "https://bot:httppass@mw/rpc?w=%(db)u"}),
    )
    cfg = parse(text)
    data = cfg.to_dict()
    dumped = json.dumps(data) + cfg.summary()
    for secret in ("s3cret", "urlpass", "httppass"):
        assert secret not in dumped
    assert data["redis"] == {
        "aggregators": ["127.0.0.1:6379"],
        "queues": ["q1:6380/3"],
        "password": "***",
    }
    assert data["dispatcher"] == {
        "kind": "http",
        "url": "https://bot:***@mw/rpc?w=%(db)u",
        "timeout": None,
    }
    assert cfg.redis is not None  # the file has a redis section
    assert cfg.redis.queues[0].password == "urlpass"  # the object itself keeps it for use
    assert "s3cret" not in repr(cfg)


def test_to_dict_shape() -> None:
    data = parse(SPEC_SAMPLE).to_dict()
    assert data["groups"][0] == {
        "name": "basic",
        "runners": 19,
        "include": ["*"],
        "exclude": ["AssembleUploadChunks", "PublishStashedFile", "webVideoTranscode"],
        "low-priority": ["cirrusSearchLinksUpdate", "htmlCacheUpdate", "refreshLinks"],
    }
    assert data["limits"]["real"] == {"*": 300, "webVideoTranscode": 86400}
    assert data["statsd"] == "statsd.eqiad.wmnet:8125"
    assert data["dispatcher"]["kind"] == "command"
    assert data["dispatcher"]["argv"][3] == "--wiki=%(db)x"
    assert data["mwjobs"]["timing"]["chron_batch"] == 500
    assert data["warnings"] == []


# --------------------------------------------------------------------------- files


def test_examples_load() -> None:
    command = load_config(EXAMPLES / "jobrunner.command.json")
    assert [g.name for g in command.enabled_groups] == ["basic", "upload"]
    assert isinstance(command.dispatcher, CommandDispatcherConfig)
    assert command.dispatcher.argv[:2] == ("php", "/srv/mediawiki/maintenance/runJobs.php")
    assert command.limits.claim_ttl_for("webVideoTranscode") == 86400
    assert command.statsd == StatsdConfig("127.0.0.1", 8125)
    assert command.warnings == ()
    http = load_config(EXAMPLES / "jobrunner.http.json")
    assert isinstance(http.dispatcher, HttpDispatcherConfig)
    assert http.dispatcher.url.startswith("http://mw.example.org/rpc/RunJobs.php?")
    assert http.warnings == ()


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert str(info.value).startswith(f"{missing}: cannot read the configuration file")
    assert "No such file or directory" in str(info.value)
    assert "--config-file" in str(info.value)

    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path}: cannot read")) as info:
        load_config(tmp_path)
    assert "Is a directory" in str(info.value)

    binary = tmp_path / "latin1.json"
    binary.write_bytes(b'{\n  "statsd": "h\xe9"}')
    with pytest.raises(ConfigError) as info:
        load_config(binary)
    assert str(info.value) == (
        f"{binary}: line 2, column 15: the file is not UTF-8 text (byte 0xe9); save it as UTF-8"
    )


def load_error_as_nobody(path: Path) -> str:
    """``load_config(path)``'s error message from a forked child running as uid/gid 65534
    (root reads any file, so the check needs an unprivileged process)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges, try, report through the pipe, never return
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                load_config(path)
                message = "loaded"
            except ConfigError as exc:
                message = str(exc)
            os.write(write_fd, message.encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return data.decode()


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    path.write_text(variant())
    path.chmod(0)
    if os.geteuid() == 0:
        message = load_error_as_nobody(path)
    else:
        with pytest.raises(ConfigError) as info:
            load_config(path)
        message = str(info.value)
    assert message.startswith(f"{path}: cannot read the configuration file (Permission denied)")


def test_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + variant().encode())
    assert load_config(path).groups[0].name == "basic"


def test_docs_cover_every_key() -> None:
    """Every declared key (the loader accepts exactly those, see the schema tests) has its
    table row, or its heading, in the committed docs."""
    docs = DOCS.read_text()
    # The list this test used to keep by hand: every name in it is still declared.
    listed = [
        "groups", "runners", "include", "exclude", "low-priority", "limits", "claimTTL",
        "attempts", "real", "memory", "redis", "aggregators", "queues", "password", "statsd",
        "dispatcher", "wrapper", "mwjobs", "timing", "kind", "argv", "url", "timeout",
        "modules", "paths", "workers", "batch", "max_batches", "max_memory",
    ]  # fmt: skip
    listed += [f.name for f in dataclasses.fields(TimingConfig)]
    assert set(listed) <= {k.name for k in schema.KEYS}
    missing = []
    for k in schema.KEYS:
        if k.kind in (Kind.OBJECT, Kind.NAMED) or not k.parent:
            shown = f"`{k.name if not k.parent else k.path}` ("
        elif k.path == "dispatcher.kind":
            shown = '#### `"kind": "command"`'
        else:
            shown = f"| `{k.name}` | "
        if shown not in docs:
            missing.append(k.path)
    assert missing == []


def test_docs_are_generated() -> None:
    assert DOCS.read_text() == render_docs(), f"docs/configuration.md is stale; run: {REGENERATE}"
    done = subprocess.run(
        [sys.executable, "-m", "mwjobs.config.docs"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert done.stdout == render_docs()


# --------------------------------------------------------------------------- the CLI


def test_check_config_cli_ok() -> None:
    result = CliRunner().invoke(
        cli, ["check-config", "--config-file", str(EXAMPLES / "jobrunner.command.json")]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{EXAMPLES / 'jobrunner.command.json'}: OK"
    assert "groups: 2 enabled of 3" in lines
    assert "  basic: 19 runner(s)" in lines
    assert "  transcode: disabled (runners: 0)" in lines
    assert "  claimTTL: *=3600, webVideoTranscode=86400" in lines
    assert "  aggregators: 127.0.0.1:6379" in lines
    assert "dispatcher: command" in lines
    assert result.stderr == ""


def test_check_config_cli_json_hides_the_password(tmp_path: Path) -> None:
    path = tmp_path / "jobrunner.json"
    path.write_text(SPEC_SAMPLE)
    result = CliRunner().invoke(cli, ["check-config", "--json", "--config-file", str(path)])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["redis"]["password"] == "***"
    assert "XXXXX" not in result.stdout
    assert [g["name"] for g in data["groups"]] == ["basic", "gwt", "parsoid", "transcode", "upload"]


def test_check_config_cli_error(tmp_path: Path) -> None:
    path = tmp_path / "jobrunner.json"
    path.write_text(variant(("groups/basic/runners", "5")))
    result = CliRunner().invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f'{path}: groups.basic.runners must be an integer (got "5"); write 5 without quotes\n'
    )


def test_check_config_cli_reads_the_env(tmp_path: Path) -> None:
    path = tmp_path / "jobrunner.json"
    path.write_text(variant())
    result = CliRunner().invoke(cli, ["check-config"], env={"MWJOBS_CONFIG_FILE": str(path)})
    assert result.exit_code == 0
    assert result.stdout.startswith(f"{path}: OK\n")


def test_check_config_real_process(tmp_path: Path) -> None:
    ok = subprocess.run(
        [str(MWJOBS_BIN), "check-config", "--config-file", str(EXAMPLES / "jobrunner.http.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "dispatcher: http" in ok.stdout.splitlines()
    assert "  url: http://mw.example.org/rpc/RunJobs.php?wiki=%(db)u" in ok.stdout
    assert ok.stderr == ""

    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "groups": {},\n  "redis": {"aggregators": []}\n}\n')
    failed = subprocess.run(
        [str(MWJOBS_BIN), "check-config", "--config-file", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr == (
        f"{bad}: redis.aggregators is an empty list; "
        'list at least one Redis server, e.g. ["127.0.0.1:6379"]\n'
    )


# --------------------------------------------------------------------------- where the queues are


def with_queues(queues: Any) -> str:
    """MINIMAL with ``"mwjobs": {"queues": queues}`` instead of its redis section."""
    return variant(("redis", DELETE), ("mwjobs/queues", queues))


def test_redis_section_maps_onto_queues() -> None:
    cfg = parse(SPEC_SAMPLE)
    assert cfg.queues == QueuesConfig(
        partitions=(
            BackendLocation("redis://rdb1001.eqiad.wmnet:6379/0", "XXXXX"),
            BackendLocation("redis://rdb1003.eqiad.wmnet:6379/0", "XXXXX"),
        ),
        aggregators=(
            BackendLocation("redis://rdb1001.eqiad.wmnet:6379/0", "XXXXX"),
            BackendLocation("redis://rdb1003.eqiad.wmnet:6379/0", "XXXXX"),
        ),
    )
    # A URL's own password wins over redis.password (as for the endpoints); forms that
    # are no URL become one.
    servers = ["redis://u:urlpass@q1:6380/3", "/run/redis.sock", "[::1]:6390", "rediss://h"]
    cfg = parse(variant(("redis/password", "s3cret"), ("redis/queues", servers)))
    assert cfg.queues.partitions == (
        BackendLocation("redis://u@q1:6380/3", "urlpass"),
        BackendLocation("unix:///run/redis.sock", "s3cret"),
        BackendLocation("redis://[::1]:6390/0", "s3cret"),
        BackendLocation("rediss://h:6379/0", "s3cret"),
    )
    assert cfg.queues.aggregators == (BackendLocation("redis://127.0.0.1:6379/0", "s3cret"),)
    assert cfg.redis is not None


def test_mwjobs_queues_form() -> None:
    queues = {
        "partitions": [
            "redis://127.0.0.1:6379/0",
            "rediss://:pw@h2:6380/1",
            "unix:///run/redis.sock?db=2",
            "memory://tests",
            "memory://u:mempass@other",
        ],
        "aggregators": ["redis://127.0.0.1:6379"],
    }
    cfg = parse(with_queues(queues))
    assert cfg.redis is None
    assert cfg.queues.partitions == (
        BackendLocation("redis://127.0.0.1:6379/0"),
        BackendLocation("rediss://h2:6380/1", "pw"),
        BackendLocation("unix:///run/redis.sock?db=2"),
        BackendLocation("memory://tests"),
        BackendLocation("memory://u@other", "mempass"),
    )
    assert cfg.queues.aggregators == (BackendLocation("redis://127.0.0.1:6379/0"),)
    only = parse(with_queues({"partitions": ["memory://x"], "aggregators": None}))
    assert only.queues == QueuesConfig((BackendLocation("memory://x"),), ())


def test_queue_passwords_are_masked_everywhere(tmp_path: Path) -> None:
    queues = {"partitions": ["redis://:pw1secret@h1:6379/0", "memory://u:pw2secret@m"],
              "aggregators": ["rediss://user:pw3secret@h3:6380/2"]}  # fmt: skip
    cfg = parse(with_queues(queues))
    data = cfg.to_dict()
    assert data["redis"] is None
    assert data["queues"] == {
        "partitions": [
            {"url": "redis://h1:6379/0", "password": "***"},
            {"url": "memory://u@m", "password": "***"},
        ],
        "aggregators": [{"url": "rediss://user@h3:6380/2", "password": "***"}],
    }
    summary = cfg.summary().splitlines()
    assert "queues (from mwjobs.queues):" in summary
    assert "  partitions: redis://h1:6379/0 (password ***), memory://u@m (password ***)" in summary
    assert not any(line.startswith("redis:") for line in summary)
    path = tmp_path / "jobrunner.json"
    path.write_text(with_queues(queues))
    shown = CliRunner().invoke(cli, ["check-config", str(path)]).stdout
    shown += CliRunner().invoke(cli, ["check-config", "--json", str(path)]).stdout
    for secret in ("pw1secret", "pw2secret", "pw3secret"):
        assert secret not in json.dumps(data) + cfg.summary() + repr(cfg) + shown


def test_check_config_shows_where_the_queues_are() -> None:
    cfg = parse(SPEC_SAMPLE)
    lines = cfg.summary().splitlines()
    at = lines.index("queues (from redis):")
    assert lines[at + 1] == (
        "  partitions: redis://rdb1001.eqiad.wmnet:6379/0 (password ***), "
        "redis://rdb1003.eqiad.wmnet:6379/0 (password ***)"
    )
    assert lines[at + 3] == "redis:"
    assert parse(variant()).to_dict()["queues"] == {
        "partitions": [{"url": "redis://127.0.0.1:6379/0", "password": None}],
        "aggregators": [{"url": "redis://127.0.0.1:6379/0", "password": None}],
    }


QUEUE_ERRORS: list[tuple[str, str, list[str]]] = [
    ("neither", variant(("redis", DELETE)),
     ['jobrunner.json: redis is missing; add "redis": {"aggregators": ["127.0.0.1:6379"], '
      '"queues": ["127.0.0.1:6379"]}, or "mwjobs": {"queues": {"partitions": '
      '["redis://127.0.0.1:6379/0"]}}']),
    ("both", variant(("mwjobs/queues", {"partitions": ["redis://h"]})),
     ["jobrunner.json: mwjobs.queues is given together with redis; keep one of them"]),
    ("unknown-scheme", with_queues({"partitions": ["ftp://u:hunter2@h/x"]}),
     ['mwjobs.queues.partitions[0] is not a queue backend URL (got "ftp://u:***@h/x"); '
      "use one of memory://, redis://, rediss://, unix://"]),
    ("no-scheme", with_queues({"partitions": ["127.0.0.1:6379"]}),
     ['mwjobs.queues.partitions[0] is not a queue backend URL (got "127.0.0.1:6379")',
      'e.g. "redis://127.0.0.1:6379/0"']),
    ("bad-redis-url", with_queues({"partitions": ["redis://:hunter2@h:99999/0"]}),
     ["jobrunner.json: mwjobs.queues.partitions[0]: bad Redis server", "1 to 65535"]),
    ("repeated", with_queues({"partitions": ["redis://h", "redis://h:6379/0"]}),
     ["mwjobs.queues.partitions[1] repeats redis://h:6379/0; list each once"]),
    ("partitions-missing", with_queues({"aggregators": ["redis://h"]}),
     ['mwjobs.queues.partitions is missing; add "partitions": ["redis://127.0.0.1:6379/0"]']),
    ("partitions-empty", with_queues({"partitions": []}),
     ["mwjobs.queues.partitions is an empty list; list at least one queue backend URL"]),
    ("partitions-string", with_queues({"partitions": "redis://h"}),
     ['mwjobs.queues.partitions must be a list (got "redis://h")']),
    ("queues-unknown", with_queues({"partitions": ["redis://h"], "aggregator": []}),
     ['mwjobs.queues.aggregator is not a known key; did you mean "aggregators"?']),
    ("aggregators-number", with_queues({"partitions": ["redis://h"], "aggregators": [1]}),
     ["mwjobs.queues.aggregators[0] must be a string (got 1)"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "fragments"), [case[1:] for case in QUEUE_ERRORS], ids=[c[0] for c in QUEUE_ERRORS]
)
def test_queue_errors(text: str, fragments: list[str]) -> None:
    message = error_of(text)
    assert message.startswith("jobrunner.json: ")
    for fragment in fragments:
        assert fragment in message
    assert "hunter2" not in message  # the password in some of the URLs


# --------------------------------------------------------------------------- the schema

# The model class of each declared section (and form of the dispatcher).
MODELS: dict[tuple[str, str | None], type[Any]] = {
    ("groups.*", None): GroupConfig,
    ("limits", None): LimitsConfig,
    ("redis", None): RedisConfig,
    ("dispatcher", "command"): CommandDispatcherConfig,
    ("dispatcher", "http"): HttpDispatcherConfig,
    ("dispatcher", "python"): PythonDispatcherConfig,
    ("mwjobs.timing", None): TimingConfig,
    ("mwjobs.queues", None): QueuesConfig,
}
# Model fields that are no key: a group's name is its key in "groups"; a command's
# template is the string form or the "shell" command line.
UNDECLARED_FIELDS = {"name", "template"}
# The file's "shell" is a command line; the model keeps it as template, with shell=True.
NOT_MIRRORED = {"dispatcher.shell"}
SECTIONS = sorted({(k.parent, k.variant) for k in schema.KEYS if k.path != "dispatcher.kind"},
                  key=lambda s: (s[0], s[1] or ""))  # fmt: skip
LEAVES = [k for k in schema.KEYS if k.kind not in (Kind.OBJECT, Kind.NAMED)]


def example_of(key: Key) -> Any:
    value = key.default if key.example is None else key.example
    return list(value) if isinstance(value, tuple) else value


def doc_with(key: Key) -> dict[str, Any]:
    """MINIMAL with ``key`` set to its example, among the keys it needs to be valid."""
    doc = copy.deepcopy(MINIMAL)
    variant = key.variant or (str(key.example) if key.path == "dispatcher.kind" else None)
    if variant is not None:
        disp = {k.name: example_of(k) for k in schema.children("dispatcher", variant)
                if k.required and key.name not in ("shell",)}  # fmt: skip
        disp["kind"] = variant
        if key.only_with is not None:
            disp[key.only_with[0]] = key.only_with[1]
            if key.name not in ("secret", "secret_env"):
                disp["secret_env"] = "MW_SECRET_KEY"
        doc["dispatcher"] = disp
    if key.path.startswith("mwjobs.queues."):  # instead of redis, never with it
        del doc["redis"]
        doc["mwjobs"] = {"queues": {"partitions": ["redis://127.0.0.1:6379/0"]}}
    *parents, name = key.path.replace("*", "basic").split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    node[name] = example_of(key)
    return doc


def outcome(doc: dict[str, Any]) -> RunnerConfig | str:
    try:
        return parse(json.dumps(doc))
    except ConfigError as exc:
        return str(exc)


@pytest.mark.parametrize("key", LEAVES, ids=[f"{k.path}/{k.variant}" for k in LEAVES])
def test_every_declared_key_loads_and_counts(key: Key) -> None:
    """The loader accepts each declared key with its example, and reads it: a value other
    than the default changes the outcome."""
    doc = doc_with(key)
    loaded = outcome(doc)
    assert isinstance(loaded, RunnerConfig), loaded
    if key.example is not None and not key.required:
        *parents, name = key.path.replace("*", "basic").split(".")
        node = doc
        for part in parents:
            node = node[part]
        del node[name]
        assert outcome(doc) != loaded


@pytest.mark.parametrize(("parent", "variant"), SECTIONS)
def test_each_object_accepts_exactly_its_declared_keys(parent: str, variant: str | None) -> None:
    first = schema.children(parent, variant)[-1]
    doc = doc_with(first)
    node = doc
    for part in parent.replace("*", "basic").split(".") if parent else ():
        node = node[part]
    node["zzzz_unknown"] = 1
    message = error_of(json.dumps(doc))
    path = f"{parent.replace('*', 'basic')}.zzzz_unknown".lstrip(".")
    prefix = f"jobrunner.json: {path} is not a known key; remove it or use a known key: "
    assert message.startswith(prefix), message
    listed = re.findall(r'"([^"]+)"', message[len(prefix) :])
    assert listed == list(schema.names(parent, variant))


@pytest.mark.parametrize(("parent", "variant"), MODELS)
def test_model_fields_are_the_declared_keys_with_their_defaults(
    parent: str, variant: str | None
) -> None:
    fields = {f.name: f for f in dataclasses.fields(MODELS[parent, variant])}
    keys = {k.attr: k for k in schema.children(parent, variant) if k.name != "kind"}
    assert set(fields) - set(keys) <= UNDECLARED_FIELDS
    assert set(keys) <= set(fields)
    for attr, key in keys.items():
        f = fields[attr]
        assert f.repr is not key.secret, f"{key.path}: secrets stay out of repr()"
        if key.required or key.path in NOT_MIRRORED:
            continue
        model_default = f.default_factory() if callable(f.default_factory) else f.default
        declared = LimitMap({"*": key.default}) if key.per_type else key.default
        assert model_default == declared, key.path


def test_schema_lookups() -> None:
    assert schema.names("") == (
        "groups", "limits", "redis", "statsd", "dispatcher", "wrapper", "mwjobs"
    )  # fmt: skip
    assert schema.variants("dispatcher") == ("command", "http", "python")
    assert schema.key("dispatcher.url", "http").required
    assert schema.key("limits.claimTTL").attr == "claim_ttl"
    assert schema.key("groups.*.low-priority").attr == "low_priority"
    assert schema.key("limits.memory").item_example == "300M"
    assert schema.default_of("mwjobs.timing.kill_grace", float) == 5.0
    with pytest.raises(TypeError, match="is not a str"):
        schema.default_of("mwjobs.timing.kill_grace", str)
    with pytest.raises(KeyError, match="no config key"):
        schema.key("limits.claimTtl")


# --------------------------------------------------------------------------- layering


def test_config_imports_no_service() -> None:
    """config/ sits below the services (design.md, layers): importing it loads none."""
    code = (
        "import sys, mwjobs.config;"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('mwjobs'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = done.stdout.split()
    services = ("mwjobs.runner", "mwjobs.chron", "mwjobs.execute", "mwjobs.run_jobs",
                "mwjobs.run_loop", "mwjobs.cli", "mwjobs.metrics", "mwjobs.aggregator")  # fmt: skip
    assert [m for m in loaded if m.startswith(services)] == []
    assert "mwjobs.config.render" in loaded
