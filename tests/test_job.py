"""The job model: JobSpec as MediaWiki's JobSpecification/Job builds it, QueuedJob as a queue
reads it back (``JobQueueRedis``'s record)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from types import MappingProxyType

import pytest

from mwjobs.codec import JobRecord, PhpKey, PhpValue, encode_record, mw_timestamp
from mwjobs.model.data import (
    DedupStyle,
    JobSpec,
    JobState,
    QueuedJob,
    RootJobParams,
    current_request_id,
    new_root_job_params,
    set_request_id,
)

T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC
T0_MW = "20231114221320"
JOB_ID = "3f2a9c4e1b7d4c0e9a8b7c6d5e4f3a2b"


@pytest.fixture
def request_id() -> Iterator[str]:
    set_request_id("feedfacefeedfacefeedface")
    yield "feedfacefeedfacefeedface"
    set_request_id(None)


def record(params: dict[PhpKey, PhpValue], **fields: object) -> JobRecord:
    base: dict[str, object] = {
        "type": "null",
        "namespace": -1,
        "title": "",
        "params": params,
        "rtimestamp": 0,
        "uuid": JOB_ID,
        "sha1": "",
        "timestamp": T0,
    }
    base.update(fields)
    return JobRecord(**base)  # type: ignore[arg-type]


# -- JobSpec.create ---------------------------------------------------------------------------


def test_create_appends_the_request_id_after_the_callers_params() -> None:
    spec = JobSpec.create("null", {"b": 1, "a": 2}, request_id="abc")
    assert list(spec.params.items()) == [("b", 1), ("a", 2), ("requestId", "abc")]


def test_create_uses_the_current_request_id(request_id: str) -> None:
    assert current_request_id() == request_id
    assert JobSpec.create("null").params["requestId"] == request_id


def test_create_keeps_a_given_request_id(request_id: str) -> None:
    spec = JobSpec.create("null", {"requestId": "mine"}, request_id="other")
    assert spec.params["requestId"] == "mine"


def test_process_request_id_is_stable_and_mediawiki_shaped() -> None:
    set_request_id(None)
    first = current_request_id()
    assert re.fullmatch(r"[0-9a-f]{24}", first)
    assert current_request_id() == first
    assert JobSpec.create("null").params["requestId"] == first


def test_create_does_not_touch_the_callers_dict() -> None:
    params: dict[PhpKey, PhpValue] = {"a": 1}
    spec = JobSpec.create("null", params, delay=5, now=T0, title="X")
    assert params == {"a": 1}
    assert isinstance(spec.params, MappingProxyType)
    with pytest.raises(TypeError):
        spec.params["a"] = 2  # type: ignore[index]


def test_delay_sets_the_release_param() -> None:
    spec = JobSpec.create("null", {}, delay=30, now=T0, request_id="r")
    assert spec.params["jobReleaseTimestamp"] == T0 + 30
    assert spec.release_timestamp == T0 + 30


def test_release_at_sets_the_release_param_in_whole_seconds() -> None:
    spec = JobSpec.create("null", {}, release_at=T0 + 10.9, request_id="r")
    assert spec.params["jobReleaseTimestamp"] == T0 + 10
    assert spec.release_timestamp == T0 + 10


def test_delay_and_release_at_exclude_each_other() -> None:
    with pytest.raises(ValueError, match="either"):
        JobSpec.create("null", {}, delay=1, release_at=T0)


def test_no_delay_means_no_release_param() -> None:
    spec = JobSpec.create("null", {}, request_id="r")
    assert "jobReleaseTimestamp" not in spec.params
    assert spec.release_timestamp is None


def test_title_adds_namespace_and_title_after_the_request_id() -> None:
    spec = JobSpec.create("null", {"x": 1}, namespace=4, title="Sandbox", request_id="r")
    assert list(spec.params) == ["x", "requestId", "namespace", "title"]
    assert (spec.namespace, spec.title) == (4, "Sandbox")


def test_title_without_namespace_is_in_the_main_namespace() -> None:
    spec = JobSpec.create("null", {}, title="Main_Page", request_id="r")
    assert (spec.params["namespace"], spec.params["title"]) == (0, "Main_Page")


def test_page_params_already_given_are_kept() -> None:
    spec = JobSpec.create("null", {"namespace": 2, "title": "U"}, namespace=4, title="S")
    assert (spec.namespace, spec.title) == (2, "U")


def test_without_a_page_the_record_uses_special_and_empty_title() -> None:
    spec = JobSpec.create("null", {}, namespace=4, request_id="r")
    assert "namespace" not in spec.params and "title" not in spec.params
    assert (spec.namespace, spec.title) == (-1, "")


def test_empty_type_is_refused() -> None:
    with pytest.raises(ValueError, match="type"):
        JobSpec("", {})


# -- release timestamps -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (T0, T0),
        (str(T0), T0),
        (T0_MW, T0),
        ("2023-11-14T22:13:20Z", T0),
        ("2023-11-14 22:13:20", T0),
        (float(T0) + 0.7, T0),
        (0, None),
        ("0", None),
        ("", None),
        (None, None),
        (False, None),
        (True, None),
        ("soon", None),
        ("20231399000000", None),  # month 13
        ([T0], None),
    ],
)
def test_release_timestamp_parsing(raw: PhpValue, expected: int | None) -> None:
    assert JobSpec("null", {"jobReleaseTimestamp": raw}).release_timestamp == expected


# -- root jobs --------------------------------------------------------------------------------


def test_new_root_job_params_shape() -> None:
    params = new_root_job_params("refreshlinks:Template:X", now=T0)
    assert params == {
        "rootJobIsSelf": True,
        "rootJobSignature": hashlib.sha1(b"refreshlinks:Template:X").hexdigest(),
        "rootJobTimestamp": T0_MW,
    }
    assert re.fullmatch(r"[0-9a-f]{40}", str(params["rootJobSignature"]))


def test_new_root_job_params_default_to_now() -> None:
    stamp = new_root_job_params("k")["rootJobTimestamp"]
    assert isinstance(stamp, str) and re.fullmatch(r"20[0-9]{12}", stamp)


def test_is_root_job_needs_signature_timestamp_and_self() -> None:
    root = new_root_job_params("k", now=T0)
    assert JobSpec("null", root).is_root_job is True
    child = {k: v for k, v in root.items() if k != "rootJobIsSelf"}
    assert JobSpec("null", child).is_root_job is False
    assert JobSpec("null", child).root_job == RootJobParams(str(root["rootJobSignature"]), T0_MW)
    assert JobSpec("null", {**root, "rootJobTimestamp": ""}).is_root_job is False
    assert JobSpec("null", {**root, "rootJobIsSelf": False}).is_root_job is False
    assert JobSpec("null", {}).root_job is None


def test_root_timestamps_compare_as_numbers() -> None:
    assert RootJobParams("s", T0_MW).timestamp_int == 20231114221320
    assert RootJobParams("s", "garbage").timestamp_int == 0


# -- records ----------------------------------------------------------------------------------


def test_spec_record_carries_release_time_as_a_numeric_string() -> None:
    spec = JobSpec.create("null", {}, release_at=T0 + 60, request_id="r")
    rec = spec.to_record(JOB_ID, T0)
    assert rec.rtimestamp == str(T0 + 60)
    assert rec.release_timestamp == T0 + 60
    assert encode_record(rec).count(b's:10:"1700000060"') == 1


def test_job_style_record_carries_release_time_as_an_int() -> None:
    spec = JobSpec.create("null", {}, release_at=T0 + 60, request_id="r", dedup_style="job")
    assert spec.to_record(JOB_ID, T0).rtimestamp == T0 + 60


@pytest.mark.parametrize("style", ["specification", "job"])
def test_undelayed_record_has_int_zero_release(style: DedupStyle) -> None:
    spec = JobSpec.create("null", {}, request_id="r", dedup_style=style)
    rtimestamp = spec.to_record(JOB_ID, T0).rtimestamp
    assert rtimestamp == 0 and isinstance(rtimestamp, int)


def test_record_fields() -> None:
    spec = JobSpec.create("null", {"x": 1}, title="Foo", namespace=2, request_id="r")
    rec = spec.to_record(JOB_ID, T0)
    assert (rec.type, rec.namespace, rec.title) == ("null", 2, "Foo")
    assert rec.params == {"x": 1, "requestId": "r", "namespace": 2, "title": "Foo"}
    assert (rec.uuid, rec.sha1, rec.timestamp) == (JOB_ID, "", T0)


def test_spec_worked_example_record_bytes() -> None:
    # A NullJob with removeDuplicates, pushed as a Job object: PHP 8.2's bytes.
    spec = JobSpec(
        "null",
        {
            "removeDuplicates": True,
            "requestId": "8f0e2c1d6a7b4e3fa1b2c3d4",
            "lives": 1,
            "usleep": 0,
        },
        remove_duplicates=True,
        dedup_style="job",
    )
    assert spec.dedup_hash() == "j66c9icc7d92im135tkwc7xxefhkynh"
    assert encode_record(spec.to_record(JOB_ID, T0)) == (
        b'a:8:{s:4:"type";s:4:"null";s:9:"namespace";i:-1;s:5:"title";s:0:"";'
        b's:6:"params";a:4:{s:16:"removeDuplicates";b:1;s:9:"requestId";'
        b's:24:"8f0e2c1d6a7b4e3fa1b2c3d4";s:5:"lives";i:1;s:6:"usleep";i:0;}'
        b's:10:"rtimestamp";i:0;s:4:"uuid";s:32:"3f2a9c4e1b7d4c0e9a8b7c6d5e4f3a2b";'
        b's:4:"sha1";s:31:"j66c9icc7d92im135tkwc7xxefhkynh";s:9:"timestamp";i:1700000000;}'
    )


def test_dedup_hash_only_when_asked() -> None:
    assert JobSpec("null", {"a": 1}).dedup_hash() == ""
    wanted = JobSpec("null", {"a": 1}, remove_duplicates=True).dedup_hash()
    assert re.fullmatch(r"[0-9a-z]{31}", wanted)


def test_dedup_hash_ignores_volatile_params() -> None:
    plain = JobSpec("null", {"a": 1}, remove_duplicates=True)
    noisy = JobSpec.create("null", {"a": 1}, remove_duplicates=True, delay=5, request_id="x")
    assert plain.dedup_hash() == noisy.dedup_hash()


def test_dedup_hash_order_sensitivity_depends_on_style() -> None:
    # JobSpecification::getDeduplicationInfo does not ksort, Job's does.
    def hashes(style: DedupStyle) -> set[str]:
        orders: list[dict[PhpKey, PhpValue]] = [{"a": 1, "b": 2}, {"b": 2, "a": 1}]
        return {
            JobSpec("null", params, remove_duplicates=True, dedup_style=style).dedup_hash()
            for params in orders
        }

    assert len(hashes("specification")) == 2
    assert len(hashes("job")) == 1


def test_dedup_hash_ignore_params() -> None:
    def spec(n: int) -> JobSpec:
        return JobSpec.create(
            "null", {"k": 1, "n": n}, remove_duplicates=True, ignore_params=("n",)
        )

    assert spec(1).dedup_hash() == spec(2).dedup_hash()
    assert JobSpec("null", {"k": 1, "n": 1}, remove_duplicates=True).dedup_hash() != (
        JobSpec("null", {"k": 1, "n": 2}, remove_duplicates=True).dedup_hash()
    )


# -- QueuedJob --------------------------------------------------------------------------------


def test_from_record_adds_missing_namespace_and_title() -> None:
    job = QueuedJob.from_record(
        record({"x": 1}, namespace=4, title="Sandbox"), "enwiki", attempts=2
    )
    assert dict(job.params) == {"x": 1, "namespace": 4, "title": "Sandbox"}
    assert (job.namespace, job.title) == (4, "Sandbox")
    assert (job.type, job.domain, job.id, job.attempts) == ("null", "enwiki", JOB_ID, 2)
    assert (job.enqueue_timestamp, job.state, job.is_duplicate) == (T0, JobState.CLAIMED, False)


def test_from_record_keeps_page_params_already_present() -> None:
    job = QueuedJob.from_record(
        record({"namespace": 2, "title": "U"}, namespace=4, title="Sandbox"),
        "enwiki",
        attempts=0,
        state=JobState.DELAYED,
    )
    assert dict(job.params) == {"namespace": 2, "title": "U"}
    assert job.state is JobState.DELAYED


def test_from_record_adds_only_the_missing_one() -> None:
    job = QueuedJob.from_record(record({"title": "U"}, namespace=4, title="S"), "w", attempts=1)
    assert list(job.params.items()) == [("title", "U"), ("namespace", 4)]


@pytest.mark.parametrize(
    ("rtimestamp", "release", "ready"),
    [(0, None, T0), (T0 + 60, T0 + 60, T0 + 60), (str(T0 + 60), T0 + 60, T0 + 60), ("0", None, T0)],
)
def test_ready_timestamp_is_release_else_enqueue(
    rtimestamp: int | str, release: int | None, ready: int
) -> None:
    job = QueuedJob.from_record(record({}, rtimestamp=rtimestamp), "w", attempts=1)
    assert job.release_timestamp == release
    assert job.ready_timestamp == ready


def test_queued_job_metadata_helpers() -> None:
    root = new_root_job_params("k", now=T0)
    job = QueuedJob.from_record(record({"requestId": "r1", **root}), "w", attempts=1)
    assert job.request_id == "r1"
    assert job.root_job == RootJobParams(str(root["rootJobSignature"]), T0_MW)
    duplicate = job.as_duplicate()
    assert duplicate.is_duplicate is True and job.is_duplicate is False
    assert (duplicate.id, duplicate.params) == (job.id, job.params)


def test_to_spec_round_trip_keeps_params_and_dedup() -> None:
    original = JobSpec(
        "null", {"a": 1, "requestId": "r"}, remove_duplicates=True, dedup_style="job"
    )
    rec = original.to_record(JOB_ID, T0)
    again = QueuedJob.from_record(rec, "w", attempts=1).to_spec()
    assert again.type == "null"
    assert dict(again.params) == {"a": 1, "requestId": "r", "namespace": -1, "title": ""}
    assert again.remove_duplicates is True
    assert QueuedJob.from_record(record({}), "w", attempts=1).to_spec().remove_duplicates is False


def test_mw_timestamp_vector() -> None:
    assert mw_timestamp(T0) == T0_MW
