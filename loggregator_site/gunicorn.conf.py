"""gunicorn settings: `gunicorn -c loggregator_site/gunicorn.conf.py loggregator_site.asgi`.

Each value can be overridden from the environment (GUNICORN_*) or the command line.
"""

import os
import shutil
import tempfile
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# An event loop per worker (uvicorn) holds the live streams without a thread
# each; every other request runs in the worker's pool of `threads` threads,
# as under gunicorn's gthread worker (see loggregator_site/asgi.py).
worker_class = "loggregator_site.asgi_worker.LoggregatorWorker"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel
# spreads new connections across them. On one shared socket the event loop
# that wakes first accepts every waiting connection, so a burst of clients
# with keep-alive (a load balancer, a fleet of publishers) can pin most of
# the traffic to one worker: measured, 85% on one of two, a fifth fewer
# publishes answered.
reuse_port = os.environ.get("GUNICORN_REUSE_PORT", "true").lower() != "false"
# Time to answer in-flight requests and let the consumer finish its batch on SIGTERM.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# Seconds an idle kept-alive connection stays open. A graceful stop waits up to
# this long for such connections to close, so short-lived servers (tests) set it low.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "30"))
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None

# --- Prometheus (events.metrics) ---------------------------------------------
# Every worker writes its metrics to files in PROMETHEUS_MULTIPROC_DIR and /metrics
# sums them, so all workers count once and a restarted worker's counts stay. Point
# `run_consumer` processes at the same directory to include theirs, and start them
# after gunicorn: the directory is emptied when gunicorn starts. Without the
# variable, gunicorn uses a directory of its own, removed when it exits.
_own_metrics_dir = None


def on_starting(server):
    global _own_metrics_dir
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        _own_metrics_dir = tempfile.mkdtemp(prefix="loggregator-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_metrics_dir  # before any worker imports prometheus_client
    metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):  # a previous run's counts
        stale.unlink()


def when_ready(server):
    # With reuse_port the master binds nothing, and gunicorn's own
    # "Listening at:" line names no address: say where the workers listen.
    if server.cfg.reuse_port:
        server.log.info("Workers listen at: %s (SO_REUSEPORT)", ", ".join(server.cfg.bind))


def post_worker_init(worker):
    # The worker has loaded the app: its objects stay for the worker's life.
    from loggregator_site import startup_heap

    startup_heap.freeze()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)
