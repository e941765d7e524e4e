"""One jobchron pass over N synthetic queues on a private redis-server.

Each queue holds a few jobs: 2 unclaimed; every 2nd queue one stale claim (recycled by the
pass), every 3rd a due delayed job (released), every 5th a fresh claim (left alone). A
"working" pass starts from that state; a "steady" pass runs again right after (every queue
is still visited, nothing is due). The PHP jobchron sleeps 5 ms after each queue, so 10,000
queues take it at least 50 s per pass.

    .venv/bin/python bench/chron.py [--queues 100,1000,10000] [--repeat 3] [--chunk 1000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass

import redis
from benchredis import private_redis

from mwjobs.chron import QUEUES_PER_ROUND_TRIP, Chron, build_chron
from mwjobs.codec import QUEUES_WITH_JOBS_KEY, queue_id_json, queue_key
from mwjobs.config import parse_config
from mwjobs.metrics import NullCounters

TYPES = ("refreshLinks", "htmlCacheUpdate", "cirrusSearchLinksUpdate", "recentChangesUpdate")
BLOB = b'a:8:{s:4:"type";s:12:"refreshLinks";s:9:"namespace";i:0;s:5:"title";s:4:"Page";}'


def fill(client: redis.Redis, queues: int, now: int) -> int:
    """Write ``queues`` synthetic queues as MediaWiki would have left them; return the
    number of jobs the next pass should move."""
    client.flushall()
    due = 0
    pipe = client.pipeline(transaction=False)
    for i in range(queues):
        job_type, domain = TYPES[i % len(TYPES)], f"wiki{i // len(TYPES)}"

        def key(prop: str, job_type: str = job_type, domain: str = domain) -> str:
            return queue_key(domain, job_type, prop)

        ids = [f"{i:08x}{n:024x}" for n in range(5)]
        pipe.hset(key("h-data"), mapping=dict.fromkeys(ids, BLOB))
        pipe.lpush(key("l-unclaimed"), ids[0], ids[1])
        if i % 2 == 0:  # a stale claim: recycled
            pipe.zadd(key("z-claimed"), {ids[2]: now - 4000})
            pipe.hset(key("h-attempts"), ids[2], 1)
            due += 1
        if i % 3 == 0:  # a delayed job that is due: released
            pipe.zadd(key("z-delayed"), {ids[3]: now - 10})
            due += 1
        if i % 5 == 0:  # a fresh claim: untouched
            pipe.zadd(key("z-claimed"), {ids[4]: now - 10})
            pipe.hset(key("h-attempts"), ids[4], 1)
        pipe.sadd(QUEUES_WITH_JOBS_KEY, queue_id_json(job_type, domain))
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    return due


def make_chron(address: str, chunk: int) -> Chron:
    doc = {"redis": {"aggregators": [address], "queues": [address]}, "dispatcher": "true"}
    chron = build_chron(parse_config(json.dumps(doc), "bench"), NullCounters(), host="bench")
    chron.chunk = chunk
    return chron


@dataclass
class Timing:
    """One pass: wall-clock seconds, this process's CPU seconds, redis-server's CPU seconds.
    The CPU figures do not depend on what else the machine is doing."""

    wall: float
    client_cpu: float
    server_cpu: float


def server_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def timed_pass(chron: Chron, client: redis.Redis, queues: int, moved: int | None) -> Timing:
    server_before = server_cpu(client)
    cpu_before, began = time.process_time(), time.perf_counter()
    result = chron.run_pass()
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu_before
    timing = Timing(wall, cpu, server_cpu(client) - server_before)
    assert result.ok and result.queues == queues, result
    assert moved is None or result.affected == moved, (result, moved)
    return timing


def bench(address: str, queues: int, repeat: int, chunk: int) -> None:
    client = redis.Redis.from_url(f"redis://{address}/0")
    chron = make_chron(address, chunk)
    runs: dict[str, list[Timing]] = {"working": [], "steady": []}
    try:
        for _ in range(repeat):
            moved = fill(client, queues, int(time.time()))
            runs["working"].append(timed_pass(chron, client, queues, moved))
            runs["steady"].append(timed_pass(chron, client, queues, 0))
    finally:
        chron.close()
        client.close()
    for label, timings in runs.items():
        best = min(t.wall for t in timings)  # the least disturbed run on a shared machine
        cpu = statistics.median(t.client_cpu for t in timings)
        srv = statistics.median(t.server_cpu for t in timings)
        print(f"{queues:>7,} {label:<8} {best * 1000:9.1f} ms {1 / best:9.2f}"
              f" {queues / best:>10,.0f} {cpu * 1000:10.1f} ms {srv * 1000:10.1f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--queues", default="100,1000,10000", help="comma-separated sizes")
    parser.add_argument("--repeat", type=int, default=3, help="passes per size (median)")
    parser.add_argument("--chunk", type=int, default=QUEUES_PER_ROUND_TRIP,
                        help="queues per pipelined round trip")  # fmt: skip
    args = parser.parse_args()
    with private_redis() as server:
        address = server.address
        print(f"redis-server {address}; {args.chunk} queues per round trip; best wall time "
              f"and median CPU of {args.repeat} runs")  # fmt: skip
        print(f"{'queues':>7} {'pass':<8} {'wall':>12} {'passes/s':>9} {'queues/s':>10}"
              f" {'client CPU':>13} {'redis CPU':>13}")  # fmt: skip
        for size in (int(n) for n in args.queues.split(",")):
            bench(address, size, args.repeat, args.chunk)


if __name__ == "__main__":
    main()
