"""A tiny in-process aggregator for publisher tests, on 127.0.0.1.

POST /publish answers from `script` first (scripted failures), then like a
real aggregator: it stores each (topic, event_id) once and counts the rest as
duplicates, so /stats can be verified. Every request is recorded.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Scripted:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    # Store the events before answering: the request "landed" even if the
    # answer is an error.
    commit: bool = False


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


class StubAggregator:
    def __init__(self, port: int = 0) -> None:
        self.script: deque[Scripted] = deque()
        self.recorded: list[Recorded] = []
        # Called in the handler thread with the 1-based number of each POST,
        # before it is answered; tests use it to hold a request in flight.
        self.on_publish: Callable[[int], None] | None = None
        # A broken aggregator for --verify tests: stores duplicates as new.
        self.keeps_duplicates = False
        self.keys: set[tuple[str, str]] = set()
        self.unique_processed = 0
        self.duplicate_dropped = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> StubAggregator:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    @property
    def publishes(self) -> list[Recorded]:
        with self.lock:
            return [r for r in self.recorded if r.method == "POST"]

    def published_events(self) -> list[dict]:
        """Every event of every POST, in arrival order, retries included."""
        events = []
        for request in self.publishes:
            body = json.loads(request.body)
            events.extend(body if isinstance(body, list) else [body])
        return events

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {
                "received": self.unique_processed + self.duplicate_dropped,
                "unique_processed": self.unique_processed,
                "duplicate_dropped": self.duplicate_dropped,
                "queued": 0,
                "topics": len({topic for topic, _ in self.keys}),
                "uptime": 1.0,
            }

    def _store(self, events: list[dict]) -> None:
        for event in events:
            key = (event["topic"], event["event_id"])
            if key in self.keys and not self.keeps_duplicates:
                self.duplicate_dropped += 1
            else:
                self.keys.add(key)
                self.unique_processed += 1

    def _handler_class(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are written separately; without this every
            # answer waits for a delayed ACK.
            disable_nagle_algorithm = True

            def log_message(self, format, *args):
                pass

            def _answer(self, status, body, headers=None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                with stub.lock:
                    stub.recorded.append(Recorded("GET", self.path, dict(self.headers), b"", self.client_address[1]))
                if self.path == "/stats":
                    self._answer(200, stub.stats())
                else:
                    self._answer(404, {"detail": "Not found."})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with stub.lock:
                    stub.recorded.append(Recorded("POST", self.path, dict(self.headers), body, self.client_address[1]))
                    number = sum(1 for r in stub.recorded if r.method == "POST")
                    scripted = stub.script.popleft() if stub.script else None
                if stub.on_publish is not None:
                    stub.on_publish(number)
                if self.path != "/publish":
                    self._answer(404, {"detail": "Not found."})
                    return
                payload = json.loads(body)
                events = payload if isinstance(payload, list) else [payload]
                if scripted is None or scripted.commit:
                    with stub.lock:
                        stub._store(events)
                if scripted is None:
                    self._answer(202, {"accepted": len(events)})
                else:
                    self._answer(scripted.status, {"detail": "scripted"}, scripted.headers)

        return Handler
