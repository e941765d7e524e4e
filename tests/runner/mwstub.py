"""A stand-in for MediaWiki's web entry points, checking requests the way MediaWiki does:
``Special:RunJobs`` (``SpecialRunJobs::execute``) and WMF's ``rpc/RunJobs.php``
(operations-mediawiki-config). Written independently of the code under test (PHP's urlencode
byte by byte)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote_plus, urlsplit

SECRET = "s3cr3t-$wgSecretKey~with spaces&stuff"

# SpecialRunJobs::execute: which request values take part in the signature.
OPTIONAL = ("maxjobs", "maxtime", "type", "async", "stats", "tasks")
REQUIRED = ("title", "signature", "sigexpiry")


def mw_urlencode(text: str) -> str:
    """PHP urlencode, written out byte by byte (independent of the code under test)."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if (char.isascii() and char.isalnum()) or char in "-_.":
            out.append(char)
        elif char == " ":
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def mw_signature(params: dict[str, str], secret: str) -> str:
    """hash_hmac('sha1', wfArrayToCgi(ksort($params)), $secret)."""
    cgi = "&".join(f"{mw_urlencode(k)}={mw_urlencode(v)}" for k, v in sorted(params.items()))
    return hmac.new(secret.encode(), cgi.encode(), hashlib.sha1).hexdigest()


def php_get(query: str) -> dict[str, str]:
    """PHP's $_GET for flat keys: '+' is a space, the last repeated key wins."""
    values: dict[str, str] = {}
    for pair in query.split("&"):
        if pair:
            key, _, value = pair.partition("=")
            values[unquote_plus(key)] = unquote_plus(value)
    return values


@dataclass
class Wiki:
    """What the stub saw and how it answers."""

    secret: str = SECRET
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    connections: set[int] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)


def special_runjobs(wiki: Wiki, values: dict[str, str]) -> tuple[int, str]:
    params = {k: v for k, v in values.items() if k in REQUIRED + OPTIONAL}
    missing = [k for k in REQUIRED if k not in params]
    if missing:
        return 400, "Missing parameters: " + ", ".join(missing)
    squery = {k: v for k, v in params.items() if k != "signature"}
    correct = mw_signature(squery, wiki.secret)
    verified = hmac.compare_digest(correct, params["signature"])
    if not verified or int(params["sigexpiry"]) < time.time():
        return 400, "Invalid or stale signature provided."
    if params.get("async", "1") not in ("0", ""):  # PHP truthiness of the string
        return 202, ""
    if params.get("stats", "") in ("", "0"):
        return 200, "Done\n"
    return 200, json.dumps(run_jobs(params["type"], 2))


def run_jobs(job_type: str, count: int) -> dict[str, Any]:
    jobs = [{"type": job_type, "status": "ok", "error": None, "time": 1}] * count
    return {"jobs": jobs, "reached": "none-ready", "backoffs": [], "elapsed": count}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real web server
    server: Server

    def do_POST(self) -> None:
        wiki = self.server.wiki
        wiki.connections.add(id(self.connection))
        url = urlsplit(self.path)
        values = php_get(url.query)
        wiki.requests.append({"path": url.path, "values": values, "raw": url.query})
        if wiki.delay:
            wiki.release.wait(wiki.delay)
        if url.path.endswith("/w/index.php"):
            status, body = special_runjobs(wiki, values)
        else:  # rpc/RunJobs.php
            status, body = 200, json.dumps(run_jobs(values["type"], 1), indent=4)
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, wiki: Wiki) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.wiki = wiki
