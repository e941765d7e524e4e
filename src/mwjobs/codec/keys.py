"""Redis key names, exactly as MediaWiki 1.43 and the jobrunner service spell them.

Per-queue keys are built from the *wiki ID* and the type, each ``rawurlencode``d — the rule
MediaWiki uses. The PHP chron (jobrunner ``src/PeriodicScriptParamsIterator.php``) built them
from the raw DB domain instead, so queues of wikis whose domain differs from their wiki ID
were never maintained; mwjobs uses MediaWiki's rule on both sides.
"""

from __future__ import annotations

import functools
from typing import Final

from mwjobs.codec.ids import domain_to_wiki_id, rawurldecode, rawurlencode
from mwjobs.errors import RecordError

__all__ = [
    "AGGREGATOR_EPOCH_FIELD",
    "AGGREGATOR_READY_KEY",
    "AGGREGATOR_READY_TEMP_KEY",
    "QUEUES_WITH_JOBS_KEY",
    "QUEUE_PROPS",
    "ROOT_JOB_TTL",
    "aggregator_field",
    "chron_lock_key",
    "parse_aggregator_field",
    "queue_key",
    "queue_keys",
    "root_job_key",
]

QUEUES_WITH_JOBS_KEY: Final = "global:jobqueue:s-queuesWithJobs"
AGGREGATOR_READY_KEY: Final = "jobqueue:aggregator:h-ready-queues:v2"
AGGREGATOR_READY_TEMP_KEY: Final = "jobqueue:aggregator:h-ready-queues:v2:temp"
# Dummy field the chron always writes: proves it is alive and keeps the hash non-empty.
AGGREGATOR_EPOCH_FIELD: Final = "_epoch"
CHRON_LOCK_PREFIX: Final = "RedisJobChronService::executePeriodicTasks:lock:"

# The eight per-queue keys, in the order MediaWiki's delete() lists them.
QUEUE_PROPS: Final = (
    "l-unclaimed",
    "z-claimed",
    "z-abandoned",
    "z-delayed",
    "h-idBySha1",
    "h-sha1ById",
    "h-attempts",
    "h-data",
)
# mwjobs' own per-queue key (consumers blocked on the queue, see queues/redis/lua/push.lua): named
# like MediaWiki's so it lives beside them; MediaWiki never reads or writes it.
MWJOBS_QUEUE_PROPS: Final = ("z-mwjobsWaiters",)

ROOT_JOB_TTL: Final = 28 * 86400


# Large on purpose: the chron walks every queue each pass in a shuffled order, so a small
# cache would never hit; 64k prefixes are a few MiB.
@functools.lru_cache(maxsize=65536)
def _queue_key_prefix(domain: str, job_type: str) -> str:
    wiki_id = domain_to_wiki_id(domain)
    return f"{rawurlencode(wiki_id)}:jobqueue:{rawurlencode(job_type)}:"


def queue_key(domain: str, job_type: str, prop: str) -> str:
    """``JobQueueRedis::getQueueKey``: ``{wikiId}:jobqueue:{type}:{prop}``, each part
    rawurlencoded (the suffixes need no encoding)."""
    if prop not in QUEUE_PROPS and prop not in MWJOBS_QUEUE_PROPS:
        raise ValueError(f"unknown queue key suffix {prop!r}")
    return _queue_key_prefix(domain, job_type) + prop


def queue_keys(domain: str, job_type: str) -> dict[str, str]:
    """MediaWiki's eight per-queue key names, by suffix."""
    return {prop: queue_key(domain, job_type, prop) for prop in QUEUE_PROPS}


def root_job_key(domain: str, job_type: str, signature: str) -> str:
    """The root-job timestamp key of MediaWiki 1.43 (WAN cache ``makeGlobalKey``):
    ``global:jobqueue:{domain}:{type}:rootjob:{signature}``, ``%`` and ``:`` escaped."""
    parts = ("jobqueue", domain, job_type, "rootjob", signature)
    return "global:" + ":".join(part.replace("%", "%25").replace(":", "%3A") for part in parts)


def aggregator_field(job_type: str, domain: str) -> str:
    """The ready-queue map's field for a queue: ``rawurlencode(type)/rawurlencode(domain)``."""
    return f"{rawurlencode(job_type)}/{rawurlencode(domain)}"


def parse_aggregator_field(field: str) -> tuple[str, str]:
    """(job type, domain) from a ready-queue map field; split at the first ``/``."""
    job_type, slash, domain = field.partition("/")
    if not slash or not job_type or not domain:
        raise RecordError(f"ready-queue field {field!r} is not 'type/domain'")
    return rawurldecode(job_type), rawurldecode(domain)


def chron_lock_key(slot: int) -> str:
    """The chron pool-lock key of ``slot`` (one slot per queue server)."""
    return f"{CHRON_LOCK_PREFIX}{slot}"
