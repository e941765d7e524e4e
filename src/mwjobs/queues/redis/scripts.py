"""The Redis backend's Lua scripts: one ``.lua`` file per operation, run by SHA-1.

Each script is sent with ``EVALSHA``; a server that does not know it (restart, ``SCRIPT
FLUSH``, fail-over) answers ``NOSCRIPT`` and the script is sent again with ``EVAL``, which
also caches it (MediaWiki's ``luaEval`` does the same). In a pipeline every call is an
``EVALSHA``; calls that came back ``NOSCRIPT`` did nothing on the server, so they are re-run
after ``SCRIPT LOAD``. That keeps the normal case at one round trip (redis-py's own
``Script`` adds a ``SCRIPT EXISTS`` round trip to every pipeline).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis
from redis.exceptions import NoScriptError

__all__ = ["LuaScript", "ScriptCall", "Scripts", "load_scripts"]

Arg = str | bytes | int


@dataclasses.dataclass(frozen=True)
class LuaScript:
    """One script's text and SHA-1; stateless, so one instance serves every connection."""

    name: str
    text: str

    @functools.cached_property
    def sha(self) -> str:
        return hashlib.sha1(self.text.encode()).hexdigest()

    def run(self, client: redis.Redis, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run on ``client`` and return the reply; EVAL when the server lacks the script."""
        try:
            # client.evalsha() in two frames fewer (it only forwards here): every push and
            # pop is one such call. NOSCRIPT raises NoScriptError from here just the same.
            return client.execute_command(
                "EVALSHA", self.sha, len(keys), *keys, *args
            )
        except NoScriptError:
            return client.eval(self.text, len(keys), *keys, *args)


@dataclasses.dataclass(frozen=True)
class ScriptCall:
    """One script invocation, for :func:`run_pipelined`."""

    script: LuaScript
    keys: Sequence[str]
    args: Sequence[Arg]


def run_pipelined(client: redis.Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    """Run independent script calls in one pipelined round trip (not a transaction; each
    script is atomic on its own). Returns one reply per call; a call that failed on the
    server has its ``redis.ResponseError`` in its place, it does not raise."""
    replies = _pipeline(client, calls)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        for script in {calls[i].script for i in missing}:
            client.script_load(script.text)
        retried = _pipeline(client, [calls[i] for i in missing])
        for i, reply in zip(missing, retried, strict=True):
            replies[i] = reply
    return replies


def _pipeline(client: redis.Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    with client.pipeline(transaction=False) as pipe:
        for call in calls:
            pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
        return list(pipe.execute(raise_on_error=False))


@dataclasses.dataclass(frozen=True)
class Scripts:
    """The typed registry of the backend's scripts (see each file's header for its schema)."""

    push: LuaScript
    pop_many: LuaScript
    ack: LuaScript
    maintain: LuaScript
    delete: LuaScript
    set_aside: LuaScript
    wait: LuaScript
    leave: LuaScript


def load_scripts() -> Scripts:
    """Read the ``lua/*.lua`` package data (shipped in the wheel beside this module)."""
    folder = resources.files("mwjobs.queues.redis") / "lua"
    texts = {
        field.name: (folder / f"{field.name}.lua").read_text(encoding="utf-8")
        for field in dataclasses.fields(Scripts)
    }
    return Scripts(**{name: LuaScript(name, text) for name, text in texts.items()})
