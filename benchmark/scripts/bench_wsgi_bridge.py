"""What the event loop to thread pool bridge costs per request: a2wsgi's WSGIMiddleware against threaded_wsgi.

    python benchmark/scripts/bench_wsgi_bridge.py [--requests N] [--concurrency C] [--rounds R]

Calls each bridge in-process on uvloop, C requests at a time, each a 400-byte
POST answered by benchmark/null_app.py from a pool of 8 threads, with ASGI
receive and send that do nothing: no sockets, no HTTP parsing, so what is left
is the bridge itself. Prints wall and CPU time (all threads) per request, the
two bridges alternating for R rounds.
"""

import argparse
import asyncio
import sys
import time
from pathlib import Path

import uvloop
from a2wsgi import WSGIMiddleware

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from benchmark.null_app import wsgi_application  # noqa: E402
from loggregator_site.threaded_wsgi import ThreadedWSGI  # noqa: E402

BODY = b"x" * 400
SCOPE = {
    "type": "http",
    "http_version": "1.1",
    "method": "POST",
    "path": "/publish",
    "root_path": "",
    "scheme": "http",
    "query_string": b"",
    "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), (b"content-length", b"400")],
    "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 50000),
}


async def receive():
    return {"type": "http.request", "body": BODY, "more_body": False}


async def send(message):
    pass


async def per_request(app, requests: int, concurrency: int) -> tuple[float, float]:
    """(wall µs, CPU µs) per request."""

    async def client(count: int):
        for _ in range(count):
            await app(SCOPE, receive, send)

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client(requests // concurrency) for _ in range(concurrency)))
    return (time.perf_counter() - wall) / requests * 1e6, (time.process_time() - cpu) / requests * 1e6


async def main(args):
    bridges = {
        "a2wsgi WSGIMiddleware": WSGIMiddleware(wsgi_application, workers=8),
        "threaded_wsgi": ThreadedWSGI(wsgi_application, workers=8),
    }
    print(f"{'bridge':<22}  wall µs/request  CPU µs/request")
    for _ in range(args.rounds):
        for name, app in bridges.items():
            wall, cpu = await per_request(app, args.requests, args.concurrency)
            print(f"{name:<22}  {wall:>15.1f}  {cpu:>14.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    uvloop.run(main(parser.parse_args()))
