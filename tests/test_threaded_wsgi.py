"""loggregator_site.threaded_wsgi under a real uvicorn server: bodies and responses of every size arrive intact.

The buffers are 64 KiB here, so that both sides of each limit are exercised
with small bodies; the service's own (1 MiB) is tested through gunicorn in
test_threaded_wsgi_server.py.
"""

from __future__ import annotations

import http.client
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import uvicorn

from harness.processes import free_port
from loggregator_site.threaded_wsgi import ThreadedWSGI
from tests.polling import wait_for

BUFFER = 64 * 1024


class RecordingApp:
    """A WSGI app whose paths each do one thing; it records the bodies it was given."""

    def __init__(self):
        self.bodies: list[bytes] = []

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/echo":  # the body back, with the length the app was told
            body = environ["wsgi.input"].read()
            self.bodies.append(body)
            length = environ.get("CONTENT_LENGTH", "none")
            start_response("200 OK", [("Content-Length", str(len(body))), ("X-Content-Length", length)])
            return [body]
        if path == "/lines":  # readline, as multipart parsers read
            lines = list(iter(environ["wsgi.input"].readline, b""))
            body = str(len(lines)).encode()
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]
        if path == "/large":  # a response in 8 KiB chunks, `size` bytes in all
            size = int(environ["QUERY_STRING"])
            start_response("200 OK", [("Content-Length", str(size))])
            return (pattern(start, min(8192, size - start)) for start in range(0, size, 8192))
        if path == "/raise":
            raise RuntimeError("the app failed before answering")
        if path == "/raise-while-answering":
            start_response("200 OK", [])
            return failing_body()
        if path == "/error-page":  # PEP 3333: a started response replaced by an error page
            start_response("200 OK", [("Content-Type", "text/plain")])
            try:
                raise ValueError("while rendering")
            except ValueError:
                start_response("500 Internal Server Error", [("Content-Length", "5")], sys.exc_info())
            return [b"oops!"]
        start_response("404 Not Found", [("Content-Length", "0")])
        return []


def pattern(start: int, length: int) -> bytes:
    """Bytes that differ along the response, so a lost or repeated chunk shows."""
    return bytes((start + i) * 7 % 251 for i in range(length))


def failing_body():
    yield b"partial"
    raise RuntimeError("the app failed while answering")


@pytest.fixture(scope="module")
def app():
    return RecordingApp()


@pytest.fixture(scope="module")
def uvicorn_server(app):
    """uvicorn (uvloop, httptools, as the gunicorn workers run it) in a thread, serving the app."""
    config = uvicorn.Config(
        ThreadedWSGI(app, workers=4, request_buffer=BUFFER, response_buffer=BUFFER),
        host="127.0.0.1",
        port=free_port(),
        lifespan="off",
        log_level="critical",
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    wait_for(lambda: running.started, message="uvicorn to start")
    yield running
    running.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def server(uvicorn_server) -> int:
    """The port uvicorn_server listens on."""
    return uvicorn_server.config.port


def request(port: int, method: str, path: str, body=None, headers=None) -> tuple[int, http.client.HTTPMessage, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("size", [0, 400, BUFFER, BUFFER + 1, 5 * BUFFER + 123])
def test_a_body_of_any_size_reaches_the_app_whole_and_comes_back_whole(server, size):
    body = pattern(0, size)
    status, headers, answer = request(server, "POST", "/echo", body)
    assert status == 200
    assert headers["X-Content-Length"] == str(size)
    assert answer == body


@pytest.mark.parametrize("size", [10, BUFFER - 1, 3 * BUFFER])
def test_a_chunked_body_reaches_the_app_whole_with_its_length_when_it_fits_the_buffer(server, size):
    body = pattern(0, size)
    chunks = (body[start : start + 1000] for start in range(0, size, 1000))
    status, headers, answer = request(server, "POST", "/echo", chunks)  # a generator: sent chunked
    assert status == 200
    assert answer == body
    # Over the buffer it is streamed, and the app is given no length (as under any WSGI server).
    assert headers["X-Content-Length"] == (str(size) if size <= BUFFER else "none")


def test_the_body_can_be_read_line_by_line(server):
    status, _, answer = request(server, "POST", "/lines", b"one\ntwo\nthree")
    assert (status, answer) == (200, b"3")


@pytest.mark.parametrize("size", [100, BUFFER, BUFFER + 1, 40 * BUFFER + 17])
def test_a_response_of_any_size_arrives_intact(server, size):
    status, headers, answer = request(server, "GET", f"/large?{size}")
    assert status == 200
    assert int(headers["Content-Length"]) == len(answer) == size
    assert answer == pattern(0, size)


def test_head_answers_the_headers_without_the_body_and_the_connection_stays_usable(server):
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
    try:
        for size in (100, 3 * BUFFER):
            connection.request("HEAD", f"/large?{size}")
            head = connection.getresponse()
            assert (head.status, head.getheader("Content-Length"), head.read()) == (200, str(size), b"")
        connection.request("GET", "/large?100")
        assert connection.getresponse().read() == pattern(0, 100)
    finally:
        connection.close()


@pytest.mark.parametrize("path", ["/raise", "/raise-while-answering"])
def test_an_exception_in_the_app_gives_a_500_and_the_server_goes_on(server, path):
    status, _, answer = request(server, "GET", path)
    assert status == 500
    assert b"partial" not in answer  # nothing of the failed response was sent
    assert request(server, "GET", "/large?10")[0] == 200


def test_an_error_page_started_with_exc_info_replaces_the_started_response(server):
    status, headers, answer = request(server, "GET", "/error-page")
    assert (status, headers["Content-Length"], answer) == (500, "5", b"oops!")


def test_concurrent_requests_each_get_their_own_answer(server):
    bodies = [f"request {i} ".encode() * (i * 500) for i in range(40)]  # from 0 bytes to ~4 buffers
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda body: request(server, "POST", "/echo", body), bodies))
    assert [answer for _, _, answer in answers] == bodies


def test_a_client_that_leaves_before_its_body_is_complete_never_reaches_the_app(uvicorn_server, server, app):
    before = len(app.bodies)
    with socket.create_connection(("127.0.0.1", server), timeout=30) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        # Leave only once the request is in the bridge, reading its body: earlier proves nothing.
        wait_for(lambda: uvicorn_server.server_state.tasks, message="the request to reach the app")
    assert request(server, "POST", "/echo", b"after")[2] == b"after"
    assert app.bodies[before:] == [b"after"]
