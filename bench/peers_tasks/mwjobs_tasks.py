"""mwjobs: one registered job class; ``kind`` param picks drain or pickup."""

from __future__ import annotations

from mwjobs import Job, register
from peers_tasks.common import drained, latency


@register("benchNoop")
class BenchNoop(Job):
    def run(self) -> bool:
        at = self.params.get("t")
        if isinstance(at, float):
            latency(at)
        else:
            drained()
        return True
