"""Identifiers and key names as MediaWiki builds them (DatabaseDomain, WikiMap, JobQueueRedis),
PHP json_encode/rawurlencode."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mwjobs.codec import (
    aggregator_field,
    chron_lock_key,
    domain_to_wiki_id,
    make_domain,
    mw_timestamp,
    new_job_id,
    new_request_id,
    parse_aggregator_field,
    parse_domain,
    parse_queue_id,
    queue_id_json,
    queue_key,
    queue_keys,
    rawurldecode,
    rawurlencode,
    root_job_key,
    unix_from_mw_timestamp,
)
from mwjobs.errors import RecordError
from tests.codec.conftest import PhpOracle


def test_queue_id_vectors() -> None:
    assert queue_id_json("null", "enwiki") == '["null","enwiki"]'
    assert queue_id_json("foo/bar", "my-wiki_é") == '["foo\\/bar","my-wiki_\\u00e9"]'
    assert parse_queue_id('["foo\\/bar","my-wiki_\\u00e9"]') == ("foo/bar", "my-wiki_é")


@pytest.mark.parametrize("bad", ["", "[]", '["a"]', '["a", 1]', "{}", '["a","b","c"]', "nope"])
def test_bad_queue_ids(bad: str) -> None:
    with pytest.raises(RecordError):
        parse_queue_id(bad)


@pytest.mark.parametrize(
    ("db", "schema", "prefix", "domain", "wiki_id"),
    [
        ("enwiki", None, "", "enwiki", "enwiki"),
        ("enwiki", None, "mw_", "enwiki-mw_", "enwiki-mw_"),
        ("my-wiki", None, "", "my?hwiki", "my-wiki"),
        ("a?b", None, "", "a??b", "a?b"),
        ("wiki", "mediawiki", "", "wiki-mediawiki-", "wiki"),
        ("wiki", "other", "p_", "wiki-other-p_", "wiki-other-p_"),
    ],
)
def test_domains_and_wiki_ids(
    db: str, schema: str | None, prefix: str, domain: str, wiki_id: str
) -> None:
    assert make_domain(db, schema, prefix) == domain
    assert parse_domain(domain) == (db, schema, prefix)
    assert domain_to_wiki_id(domain) == wiki_id


def test_domain_with_too_many_parts() -> None:
    with pytest.raises(RecordError):
        parse_domain("a-b-c-d")


def test_queue_keys_use_rawurlencoded_wiki_id() -> None:
    assert queue_key("enwiki", "refreshLinks", "h-data") == "enwiki:jobqueue:refreshLinks:h-data"
    assert queue_key("my?hwiki", "a b", "l-unclaimed") == "my-wiki:jobqueue:a%20b:l-unclaimed"
    assert len(queue_keys("enwiki", "null")) == 8
    with pytest.raises(ValueError):
        queue_key("enwiki", "null", "h-bogus")


def test_root_job_key_matches_fixture_form() -> None:
    sig = "f628445490e657a3bbd1d4d62a6447bcc215899c"
    assert root_job_key("testwiki", "refreshLinks", sig) == (
        f"global:jobqueue:testwiki:refreshLinks:rootjob:{sig}"
    )
    assert root_job_key("a:b", "t%", "s") == "global:jobqueue:a%3Ab:t%25:rootjob:s"


def test_aggregator_fields() -> None:
    assert aggregator_field("refreshLinks", "enwiki") == "refreshLinks/enwiki"
    assert aggregator_field("a/b", "my?hwiki") == "a%2Fb/my%3Fhwiki"
    assert parse_aggregator_field("a%2Fb/my%3Fhwiki") == ("a/b", "my?hwiki")
    with pytest.raises(RecordError):
        parse_aggregator_field("_epoch")
    assert chron_lock_key(2) == "RedisJobChronService::executePeriodicTasks:lock:2"


def test_ids_have_mediawiki_shapes() -> None:
    job_id = new_job_id()
    assert re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", job_id)
    assert re.fullmatch(r"[0-9a-f]{24}", new_request_id())
    assert new_job_id() != job_id


def test_timestamps() -> None:
    assert mw_timestamp(1700000000) == "20231114221320"
    assert unix_from_mw_timestamp("20231114221320") == 1700000000
    assert unix_from_mw_timestamp("1700000000") == 1700000000
    assert unix_from_mw_timestamp(1700000000) == 1700000000
    assert unix_from_mw_timestamp("2023-11-14T22:13:20Z") == 1700000000
    assert unix_from_mw_timestamp("2023-11-14 22:13:20") == 1700000000
    for bad in ("yesterday", "20231314221320", ""):
        with pytest.raises(RecordError):
            unix_from_mw_timestamp(bad)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=12), st.text(max_size=12))
def test_queue_id_and_rawurlencode_match_php(php: PhpOracle, job_type: str, domain: str) -> None:
    assert queue_id_json(job_type, domain) == php.queue_id(job_type, domain)
    assert rawurlencode(job_type) == php.rawurlencode(job_type)
    assert rawurldecode(rawurlencode(domain)) == domain
