"""bench/org.py's simulated AWS: moto's own WSGI app under werkzeug's threaded server on 127.0.0.1, behind
a thin middleware that (a) counts the AWS requests it passes on, (b) delays every one of them by a
delay set at run time (the "delaying proxy on 127.0.0.1 in front of moto" of issue 16: a middleware in
moto's own process rather than a second server, so the latency it adds is exactly the sleep — no
second hop, no second HTTP parser — and its threads sleep without holding moto's GIL), and (c) answers
sts:AssumeRole into a configured set of accounts with AccessDenied (HTTP 403, STS's error XML), as an
account refusing the audit role does.

Control requests: GET/POST under /__bench/ WITHOUT an Authorization header. Every AWS SDK request is
signed (it carries Authorization), and no AWS path starts with /__bench/ (S3 bucket names cannot
contain "_"), so a control request can never be taken for an AWS call, nor an AWS call for a control
request; a signed request to /__bench/ goes to moto like any other.
    GET  /__bench/stats              {"requests": n, "by_service": {...}, "denied": n, "delay_ms": ms}
    POST /__bench/delay?ms=80        set the delay (0..10,000 ms)
    POST /__bench/deny  body: JSON list of 12-digit account ids (replaces the set)
    POST /__bench/reset              counters to zero

    .venv/bin/python bench/org_server.py      # prints "port N" once listening on 127.0.0.1:N (port 0)
"""
from __future__ import annotations

import io
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from typing import Any, Optional

CONTROL = "/__bench/"
SERVICE_IN_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/[^/,]+/([^/,]+)/aws4_request")
ROLE_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/")
MAX_DELAY_MS = 10_000
MAX_FORM_BYTES = 1 << 20
DENIED_XML = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
              "<Code>AccessDenied</Code><Message>User: arn:aws:iam::{caller}:user/bench is not authorized to "
              "perform: sts:AssumeRole on resource: {arn}</Message></Error><RequestId>bench-denied</RequestId>"
              "</ErrorResponse>")


def content_length(environ: dict) -> Optional[int]:
    """The request's Content-Length (0 when absent), None when it is not a number."""
    raw = environ.get("CONTENT_LENGTH") or "0"
    return int(raw) if raw.isdigit() else None


class BenchMiddleware:
    """Counts, delays and (for AssumeRole into a denied account) refuses requests before moto sees them."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.delay_s = 0.0
        self.deny: frozenset[str] = frozenset()
        self.by_service: Counter = Counter()
        self.denied = 0
        self.in_flight = self.max_in_flight = 0
        self.busy_s = 0.0  # the sum of every request's time in here: busy_s / a window = calls in flight
        self.first = self.last = 0.0  # monotonic time of the first request's start, the last one's end

    def __call__(self, environ: dict, start_response) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL) and not environ.get("HTTP_AUTHORIZATION"):
            return self.control(environ, start_response, path[len(CONTROL):])
        service = self.service_of(environ)
        t0 = time.monotonic()
        with self.lock:
            self.by_service[service] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.first = self.first or t0
            delay = self.delay_s
        refused = None
        try:
            if delay:
                time.sleep(delay)
            refused = self.refused_role(environ) if service == "sts" else None
            if not refused:
                return self.app(environ, start_response)
            body = DENIED_XML.format(caller="000000000000", arn=refused).encode()
            start_response("403 Forbidden", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
            return [body]
        finally:
            t1 = time.monotonic()
            with self.lock:
                self.in_flight -= 1
                self.busy_s += t1 - t0
                self.last = t1
                self.denied += 1 if refused else 0

    @staticmethod
    def service_of(environ: dict) -> str:
        found = SERVICE_IN_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        return found.group(1) if found else "unsigned"

    def refused_role(self, environ: dict) -> Optional[str]:
        """The role ARN of an sts:AssumeRole into a denied account, else None. The form body is read and
        put back for moto."""
        if not self.deny:
            return None
        length = content_length(environ)
        if length is None or length > MAX_FORM_BYTES:  # not a form this middleware reads: moto answers it
            return None
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace")) if body else {}
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        action = (form.get("Action") or query.get("Action") or [""])[0]
        arn = (form.get("RoleArn") or query.get("RoleArn") or [""])[0]
        found = ROLE_ACCOUNT.match(arn)
        return arn if action == "AssumeRole" and found and found.group(1) in self.deny else None

    def control(self, environ: dict, start_response, command: str) -> list[bytes]:
        method = environ.get("REQUEST_METHOD")
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        try:
            if command == "stats" and method == "GET":
                answer = self.stats()
            elif command == "delay" and method == "POST":
                ms = int(query["ms"][0])
                if not 0 <= ms <= MAX_DELAY_MS:
                    raise ValueError(f"ms: {ms} is not within 0..{MAX_DELAY_MS}")
                with self.lock:
                    self.delay_s = ms / 1000
                answer = self.stats()
            elif command == "deny" and method == "POST":
                length = content_length(environ)
                if length is None or length > MAX_FORM_BYTES:
                    raise ValueError(f"deny: a body of 0..{MAX_FORM_BYTES} bytes, with its Content-Length")
                ids = json.loads(environ["wsgi.input"].read(length) or b"[]")
                if not isinstance(ids, list) or not all(isinstance(i, str) and re.fullmatch(r"\d{12}", i) for i in ids):
                    raise ValueError("deny: the body must be a JSON list of 12-digit account ids")
                with self.lock:
                    self.deny = frozenset(ids)
                answer = {**self.stats(), "deny": sorted(self.deny)}
            elif command == "reset" and method == "POST":
                with self.lock:
                    self.by_service.clear()
                    self.denied = self.max_in_flight = 0
                    self.busy_s = self.first = self.last = 0.0
                answer = self.stats()
            else:
                return self.reply(start_response, "404 Not Found", {"error": f"no control {method} {command}"})
        except (KeyError, ValueError) as exc:
            return self.reply(start_response, "400 Bad Request", {"error": str(exc)})
        return self.reply(start_response, "200 OK", answer)

    def stats(self) -> dict:
        with self.lock:
            window = self.last - self.first if self.first else 0.0
            return {"requests": sum(self.by_service.values()), "by_service": dict(self.by_service),
                    "denied": self.denied, "delay_ms": round(self.delay_s * 1000),
                    "max_in_flight": self.max_in_flight, "busy_s": round(self.busy_s, 2),
                    "window_s": round(window, 2),  # first request's start to the last one's end
                    "mean_in_flight": round(self.busy_s / window, 2) if window else 0.0}

    @staticmethod
    def reply(start_response, status: str, answer: dict) -> list[bytes]:
        body = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


class BenchControl:
    """The bench's side of the control path."""

    def __init__(self, url: str):
        self.url = url

    def _send(self, command: str, method: str = "GET", body: Optional[bytes] = None) -> dict:
        req = urllib.request.Request(f"{self.url}{CONTROL}{command}", data=body, method=method)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict:
        return self._send("stats")

    def delay(self, ms: int) -> dict:
        return self._send(f"delay?ms={int(ms)}", "POST", b"")

    def deny(self, accounts: list[str]) -> dict:
        return self._send("deny", "POST", json.dumps(sorted(accounts)).encode())

    def reset(self) -> dict:
        return self._send("reset", "POST", b"")


def serve() -> None:
    """moto's app (as moto/server.py and ThreadedMotoServer build it) behind the middleware, threaded, on
    127.0.0.1 and a free port, which is printed once it listens."""
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, BenchMiddleware(app), threaded=True, request_handler=MotoRequestHandler)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(serve())
