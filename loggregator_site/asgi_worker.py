"""The gunicorn worker: uvicorn's event loop serving loggregator_site.asgi.

On SIGTERM it first ends every live stream (each client gets the `id:` it
reached and a clean end of the response, then reconnects, to another worker
or to the restarted server, and resumes from there), then lets uvicorn finish
the requests in flight within gunicorn's graceful timeout, and stops the
in-process consumer after the batch it is storing.
"""

from __future__ import annotations

import asyncio
import os
import sys

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker


class LoggregatorServer(Server):
    async def shutdown(self, sockets=None) -> None:
        from events.background import stop_consumer_thread
        from events.stream_hub import get_hub

        get_hub().close_all()
        await super().shutdown(sockets)
        await asyncio.to_thread(stop_consumer_thread)
        # Shut down completely: exit 0 instead of uvicorn raising the signal
        # again, which would kill the process before anything else at exit.
        self._captured_signals.clear()


class LoggregatorWorker(UvicornWorker):
    # The application has no startup or shutdown hooks (a2wsgi answers lifespan anyway).
    CONFIG_KWARGS = {"loop": "auto", "http": "auto", "lifespan": "off"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.config.timeout_graceful_shutdown = self.cfg.graceful_timeout

    def init_process(self) -> None:
        # loggregator_site.asgi sizes its WSGI thread pool from this.
        os.environ["GUNICORN_THREADS"] = str(self.cfg.threads)
        super().init_process()

    async def _serve(self) -> None:
        # UvicornWorker._serve, with the server above.
        self.config.app = self.wsgi
        server = LoggregatorServer(config=self.config)
        self._install_sigquit_handler()
        # The plain sockets, not gunicorn's wrappers: uvloop detaches a plain
        # socket when its server closes the descriptor, but calls close() on
        # any other object afterwards, closing the same number a second time
        # ("Error while closing socket [Errno 9]" in the log, or, had another
        # thread just opened a file or connection under that number, closing it).
        await server.serve(sockets=[listener.sock for listener in self.sockets])
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
