"""The benchmark's wrk sender: every body sent exactly once, and what the server refused reported."""

import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmark import wrk

pytestmark = pytest.mark.skipif(not wrk.available(), reason="wrk is not installed (apt-get install wrk)")


class RecordingServer(ThreadingHTTPServer):
    """Answers every POST /publish with `status` and keeps the bodies it got, and when (time.monotonic())."""

    daemon_threads = True

    def __init__(self, status: int):
        self.status = status
        self.bodies: list[bytes] = []
        self.arrivals: list[float] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.bodies.append(body)
            self.server.arrivals.append(time.monotonic())
        answer = b'{"detail": "no"}' if self.server.status != 202 else b'{"accepted": 1}'
        self.send_response(self.server.status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    servers = []

    def start(status: int) -> RecordingServer:
        server = RecordingServer(status)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_every_body_is_sent_once_over_the_connections(serve):
    server = serve(202)
    bodies = [b'{"n": %d, "text": "a\\nb"}' % n for n in range(50)]

    senders = wrk.WrkSenders(server.url, bodies, connections=4)
    senders.start()
    senders.join()

    assert senders.problems == []
    assert not senders.failed.is_set()
    assert sorted(server.bodies) == sorted(bodies)
    assert senders.finished_at >= senders.started_at > 0
    p50, p99 = senders.latency_ms
    assert 0 < p50 <= p99


def test_the_clock_is_wrks_own_however_late_the_driver_reads_it(serve, monkeypatch):
    # The driver reads wrk's "ready" and "done" lines when its thread gets to
    # them, late on a busy machine: the moments come from the lines themselves.
    server = serve(202)
    reads = []
    monkeypatch.setattr(wrk, "_moment", lambda line, moment=wrk._moment: reads.append(time.monotonic()) or moment(line))
    senders = wrk.WrkSenders(server.url, [b'{"n": 1}', b'{"n": 2}'], connections=1)
    senders.start()
    senders.join()

    first, last = server.arrivals
    assert senders.started_at <= first <= last <= senders.finished_at <= reads[-1]
    assert senders.started_at < reads[0]


def test_a_refused_request_is_a_problem_not_a_figure(serve):
    server = serve(400)

    senders = wrk.WrkSenders(server.url, [b'{"n": 1}', b'{"n": 2}'], connections=8)
    senders.start()
    senders.join()

    assert senders.failed.is_set()
    # One per connection, JSON-safe: quotes blanked out.
    assert senders.problems == ["HTTP 400: { detail :  no }"] * 2
    assert len(server.bodies) == 2


# wrk's SIGINT handler only sets a flag and its main thread then sleeps: a
# signal that lands before the sleep is lost, only a later one ends the sleep.
# This stand-in loses the first the same way and exits after the second.
_LOSES_THE_FIRST_SIGINT = """
import signal, sys
signal.signal(signal.SIGINT, lambda *_: None)
sys.stdout.write("handler set\\n"); sys.stdout.flush()
signal.pause()  # the first SIGINT: lost, as before wrk's sleep
signal.pause()  # wrk's sleep: the next SIGINT ends it
"""


def test_wrk_is_interrupted_until_it_exits_even_when_the_first_sigint_is_lost():
    senders = wrk.WrkSenders("http://127.0.0.1:9", [b"{}"], connections=1)
    senders._process = subprocess.Popen([sys.executable, "-c", _LOSES_THE_FIRST_SIGINT], stdout=subprocess.PIPE)
    try:
        assert senders._process.stdout.readline() == b"handler set\n"
        senders._interrupt()  # returns once the process has exited
        assert senders._process.returncode == 0
    finally:
        senders._process.kill()
        senders._process.stdout.close()
        senders._directory.cleanup()
