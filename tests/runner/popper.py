"""The end-to-end test's dispatcher: a tiny runJobs.php on the real queue.

``python popper.py REDIS_URL DOMAIN TYPE MAXTIME`` pops jobs of one (type, domain) queue with
mwjobs until the queue is empty or MAXTIME passes, "runs" each by recording its ``n`` param in
Redis (``SADD e2e:runs``; a repeat also goes to ``e2e:repeats``), acks it, and prints a
runJobs-shaped JSON result.
"""

from __future__ import annotations

import json
import sys
import time

from mwjobs.queues.redis import RedisBackend

BATCH = 10


def main(url: str, domain: str, job_type: str, maxtime: str) -> int:
    started = time.monotonic()
    backend = RedisBackend(url)
    queue = backend.queue(domain, job_type)
    jobs_out: list[dict[str, object]] = []
    reached = "none-ready"
    try:
        while True:
            if time.monotonic() - started > float(maxtime):
                reached = "time-limit"
                break
            jobs = queue.pop_many(BATCH)
            if not jobs:
                break
            client = backend.client
            for job in jobs:
                n = job.params["n"]
                if not client.sadd("e2e:runs", str(n)):
                    client.rpush("e2e:repeats", str(n))
                client.incr("e2e:count")
            acked = queue.ack_many(jobs)
            for job, ok in zip(jobs, acked, strict=True):
                status = "ok" if ok else "failed"
                jobs_out.append({"type": job.type, "status": status, "error": None, "time": 0})
    finally:
        backend.close()
    result = {"jobs": jobs_out, "reached": reached, "backoffs": [], "elapsed": 0}
    print(json.dumps(result, indent=4))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
