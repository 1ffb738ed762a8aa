"""A small loopback HTTP proxy in front of the real Label Studio server that injects faults.

Modes, applied to the requests a rule matches (others pass through unchanged):

* ``"pass"``: forward and return the answer;
* ``"badtoken"``: forward with a wrong API token, so the real server answers 401;
* ``"500"``: answer HTTP 500 without forwarding;
* ``"hang"``: forward (the server acts on it), then hold the reply past the client's timeout;
* ``"drop"``: close the connection without any answer.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
       "proxy-authenticate", "host", "content-length"}


@dataclass
class Rule:
    """Fault ``mode`` for the requests whose path contains ``path`` (and method, if given), after ``skip`` of them."""

    mode: str
    path: str = ""
    method: str | None = None
    skip: int = 0
    times: int = 1_000_000
    seen: int = 0
    fired: int = 0


@dataclass
class FaultyProxy:
    upstream: str
    hang_s: float = 6.0
    rules: list[Rule] = field(default_factory=list)
    log: list[tuple[str, str, str]] = field(default_factory=list)

    def start(self) -> "FaultyProxy":
        proxy = self
        parts = urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                mode = proxy._mode(self.command, self.path)
                proxy.log.append((self.command, self.path, mode))
                if mode == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if mode == "500":
                    payload = b'{"detail": "injected failure"}'
                    self.send_response(500)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                if mode == "badtoken":
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                    headers["Authorization"] = "Token " + "0" * 40
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except OSError:
                    data, resp = b'{"detail": "upstream unreachable"}', None
                finally:
                    conn.close()
                if mode == "hang":
                    time.sleep(proxy.hang_s)
                self.send_response(resp.status if resp else 502)
                for k, v in (resp.getheaders() if resp else [("content-type", "application/json")]):
                    if k.lower() not in HOP:
                        self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    pass

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(self, mode: str, path: str = "", *, method: str | None = None, skip: int = 0, times: int = 1_000_000) -> Rule:
        rule = Rule(mode, path, method, skip, times)
        self.rules = [rule]
        return rule

    def heal(self) -> None:
        self.rules = []

    def _mode(self, method: str, path: str) -> str:
        for rule in self.rules:
            if rule.path in path and (rule.method is None or rule.method == method):
                rule.seen += 1
                if rule.seen > rule.skip and rule.fired < rule.times:
                    rule.fired += 1
                    return rule.mode
        return "pass"
