"""The ``http`` dispatcher against a real local HTTP server that checks requests the way
MediaWiki does: ``Special:RunJobs`` (SpecialRunJobs::execute) and WMF's
``rpc/RunJobs.php`` (operations-mediawiki-config)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from mwjobs.config import HttpDispatcherConfig
from mwjobs.runner.dispatch import DispatchError, RunRequest
from mwjobs.runner.dispatch.http import (
    HttpDispatcher,
    array_to_cgi,
    php_urlencode,
    query_signature,
)
from mwjobs.runner.service import Runner
from tests.runner.conftest import HOST, Recorder, drive, make_config
from tests.runner.mwstub import SECRET, Wiki, mw_signature, mw_urlencode, php_get
from tests.servers import free_port

StartRunner = Callable[..., Runner]


def special(port: int, **extra: Any) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/%(db)u/w/index.php"
    return {"kind": "http", "url": url, "mode": "special", "secret_env": "MW_SECRET", **extra}


def test_php_urlencode_and_signature_match_mediawiki() -> None:
    for text in ["a b", "~x", "ä/€", "a+b&c=d", "Special:RunJobs", "%(db)u"]:
        assert php_urlencode(text) == mw_urlencode(text)
    params = {"type": "a b~c", "title": "Special:RunJobs", "maxtime": "30", "async": "0"}
    assert array_to_cgi({"b": "1 2", "a": "~"}) == "b=1+2&a=%7E"
    assert query_signature(params, SECRET) == mw_signature(params, SECRET)


def test_signed_special_runjobs_is_accepted_and_its_json_counted(
    start_runner: StartRunner, wiki: tuple[Wiki, int], caplog: pytest.LogCaptureFixture
) -> None:
    state, port = wiki
    metrics = Recorder()
    config = make_config(special(port, maxjobs=50), runners=2)
    runner = start_runner(config, {("refresh Links~", "en wiki"): 1}, metrics=metrics,
                          environ={"MW_SECRET": SECRET})  # fmt: skip
    drive(runner, lambda: runner.totals.finished >= 4, "four HTTP runs")
    assert runner.totals.errors == 0
    assert metrics.total(f"pop.refresh Links~.ok.{HOST}") == 2 * runner.totals.finished
    request = state.requests[0]
    assert request["path"] == "/en%20wiki/w/index.php"
    values = request["values"]
    assert {k: values[k] for k in ("title", "tasks", "type", "maxjobs", "async", "stats")} == {
        "title": "Special:RunJobs",
        "tasks": "jobs",
        "type": "refresh Links~",
        "maxjobs": "50",
        "async": "0",
        "stats": "1",
    }
    assert values["maxtime"] in ("30", "60")
    assert int(values["sigexpiry"]) > time.time()
    assert len(state.connections) <= 2  # kept alive and reused by the two slots
    assert SECRET not in caplog.text
    assert values["signature"] not in caplog.text


def test_a_wrong_secret_is_refused_and_counted_per_wiki(
    start_runner: StartRunner, wiki: tuple[Wiki, int], caplog: pytest.LogCaptureFixture
) -> None:
    state, port = wiki
    state.secret = "the wiki's real key"
    metrics = Recorder()
    config = make_config(special(port))
    runner = start_runner(config, {("null", "enwiki"): 1}, metrics=metrics,
                          environ={"MW_SECRET": SECRET})  # fmt: skip
    drive(runner, lambda: runner.totals.errors >= 2, "two refused runs")
    assert runner.http_errors[("enwiki", "status")] >= 2
    assert metrics.total("http-error.status.enwiki") >= 2
    assert "gave status 'HTTP 400'" in caplog.text
    assert "Invalid or stale signature provided." in caplog.text


def test_rpc_mode_substitutes_the_url_encoded_values(
    start_runner: StartRunner, wiki: tuple[Wiki, int]
) -> None:
    state, port = wiki
    url = (f"http://127.0.0.1:{port}/rpc/RunJobs.php?wiki=%(db)u&type=%(type)u"
           "&maxtime=%(maxtime)u&maxmem=%(maxmem)u")  # fmt: skip
    metrics = Recorder()
    config = make_config({"kind": "http", "url": url})
    domain = "de wiki&x=1"
    runner = start_runner(config, {("a/b c", domain): 1}, metrics=metrics)
    drive(runner, lambda: runner.totals.finished >= 1, "an rpc run")
    values = state.requests[0]["values"]
    assert (values["wiki"], values["type"], values["maxmem"]) == (domain, "a/b c", "300M")
    assert "x" not in values  # the & in the domain stayed inside the value
    assert metrics.total(f"pop.a/b c.ok.{HOST}") >= 1


def test_a_slow_wiki_times_out_and_is_counted(
    start_runner: StartRunner, wiki: tuple[Wiki, int], caplog: pytest.LogCaptureFixture
) -> None:
    state, port = wiki
    state.delay = 5
    url = f"http://127.0.0.1:{port}/rpc/RunJobs.php?wiki=%(db)u&type=%(type)u"
    config = make_config({"kind": "http", "url": url, "timeout": 0.3})
    runner = start_runner(config, {("null", "slowwiki"): 1})
    drive(runner, lambda: runner.totals.finished >= 1, "the timed-out run")
    assert runner.http_errors[("slowwiki", "timeout")] >= 1
    assert "slowwiki" in caplog.text


def test_an_unreachable_wiki_is_a_connect_error(
    start_runner: StartRunner, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{free_port()}/rpc/RunJobs.php?wiki=%(db)u"
    config = make_config({"kind": "http", "url": url})
    runner = start_runner(config, {("null", "downwiki"): 1})
    drive(runner, lambda: runner.totals.errors >= 2, "two failed runs")
    assert runner.http_errors[("downwiki", "connect")] >= 2
    assert "HTTP connect errors for downwiki so far" in caplog.text


def test_a_missing_secret_variable_stops_the_start() -> None:
    config = make_config(special(1))
    with pytest.raises(DispatchError, match=r"MW_SECRET .* is not set"):
        Runner(config, metrics=Recorder(), guard=False, environ={})


def test_the_label_never_shows_the_signature() -> None:
    disp = make_config(special(80)).dispatcher
    assert isinstance(disp, HttpDispatcherConfig)
    dispatcher = HttpDispatcher(disp, SECRET, clock=lambda: 1000.0)
    request = RunRequest("null", "enwiki", 30, "300M", 60.0)
    label = dispatcher.describe(request)
    assert label.startswith("POST http://127.0.0.1:80/enwiki/w/index.php?title=Special%3ARunJobs")
    assert "signature" not in label
    assert "sigexpiry=1060" in label
    target = dispatcher.target(request)
    values = php_get(target.path.partition("?")[2])
    signature = values.pop("signature")
    assert signature == mw_signature(values, SECRET)
    dispatcher.close()
