"""An HTTP proxy that can lose the server's answers: the connection drops after the server acted.

For retry tests: the server has committed what it was sent, the client only
sees its connection close, so it must send the same request again. The proxy
also records every status the server gave, so a test can wait for one.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

FORWARDED_REQUEST_HEADERS = ("Content-Type", "Content-Encoding", "Authorization")
FORWARDED_RESPONSE_HEADERS = ("Content-Type", "Retry-After")


class LossyProxy:
    def __init__(self, upstream: str, *, answers_to_lose: int = 0):
        self.upstream = upstream
        self.answers_to_lose = answers_to_lose
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="lossy-proxy", daemon=True)

    def __enter__(self) -> LossyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _answered(self, status: int) -> bool:
        """Record the server's status; False when this answer is to be lost."""
        with self._lock:
            self.statuses.append(status)
            if self.answers_to_lose:
                self.answers_to_lose -= 1
                return False
            return True


def _handler_for(proxy: LossyProxy):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name: self.headers[name] for name in FORWARDED_REQUEST_HEADERS if name in self.headers}
            answer = requests.post(proxy.upstream + self.path, data=body, headers=headers, timeout=120)
            if not proxy._answered(answer.status_code):
                self.close_connection = True  # nothing written: the client sees the connection drop
                return
            self.send_response(answer.status_code)
            for name in FORWARDED_RESPONSE_HEADERS:
                if name in answer.headers:
                    self.send_header(name, answer.headers[name])
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        def log_message(self, format, *args):
            pass  # quiet: the statuses are recorded

    return Handler
