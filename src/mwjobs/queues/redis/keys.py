"""The Redis key names of one queue, in the order each Lua script's header lists them."""

from __future__ import annotations

import dataclasses

from mwjobs.codec import QUEUES_WITH_JOBS_KEY, queue_id_json, queue_key

__all__ = ["QueueKeys"]


@dataclasses.dataclass(frozen=True)
class QueueKeys:
    """The Redis key names of one queue, built by MediaWiki's rule (rawurlencoded wiki ID
    and type), for MW's scripts and the chron alike (docs/compatibility.md, "Maintenance keys
    use MediaWiki's key rule")."""

    unclaimed: str
    claimed: str
    abandoned: str
    delayed: str
    id_by_sha1: str
    sha1_by_id: str
    attempts: str
    data: str
    waiters: str  # an mwjobs extension: consumers blocked on this queue (push.lua)
    queue_id: str

    @classmethod
    def build(cls, domain: str, job_type: str) -> QueueKeys:
        def key(prop: str) -> str:
            return queue_key(domain, job_type, prop)

        return cls(
            unclaimed=key("l-unclaimed"),
            claimed=key("z-claimed"),
            abandoned=key("z-abandoned"),
            delayed=key("z-delayed"),
            id_by_sha1=key("h-idBySha1"),
            sha1_by_id=key("h-sha1ById"),
            attempts=key("h-attempts"),
            data=key("h-data"),
            waiters=key("z-mwjobsWaiters"),
            queue_id=queue_id_json(job_type, domain),
        )

    # The KEYS lists, in each script's header order.
    def for_push(self) -> list[str]:
        return [self.unclaimed, self.sha1_by_id, self.id_by_sha1, self.delayed, self.data,
                QUEUES_WITH_JOBS_KEY, self.waiters, self.claimed, self.attempts]  # fmt: skip

    def for_pop(self) -> list[str]:
        return [self.unclaimed, self.sha1_by_id, self.id_by_sha1, self.claimed, self.attempts,
                self.data]  # fmt: skip

    def for_ack(self) -> list[str]:
        return [self.claimed, self.attempts, self.data]

    def for_maintain(self) -> list[str]:
        return [self.claimed, self.attempts, self.unclaimed, self.data, self.abandoned,
                self.delayed, QUEUES_WITH_JOBS_KEY]  # fmt: skip

    def for_delete(self) -> list[str]:
        return [self.unclaimed, self.claimed, self.abandoned, self.delayed, self.id_by_sha1,
                self.sha1_by_id, self.attempts, self.data, QUEUES_WITH_JOBS_KEY]  # fmt: skip
