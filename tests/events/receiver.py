"""A real webhook receiver on 127.0.0.1: records every POST with its headers, can fail, stall or be slow."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Answers ``status`` (204 by default) after ``delay`` seconds; the first ``fail_first`` requests get 500."""

    def __init__(self, fail_first: int = 0, status: int = 204, delay: float = 0.0) -> None:
        self.fail_first, self.status, self.delay = fail_first, status, delay
        self.location = ""  # sent as Location when set (a redirect)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.times: list[float] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    receiver.times.append(time.monotonic())
                    failing = len(receiver.requests) <= receiver.fail_first
                time.sleep(receiver.delay)
                self.send_response(500 if failing else receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in list(self.requests)]

    def header_counts(self, name: str) -> Counter[str]:
        """How many requests carried each value of header ``name`` (e.g. each delivery id)."""
        return Counter(headers[name] for headers, _ in list(self.requests))

    def wait_for(self, count: int, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
