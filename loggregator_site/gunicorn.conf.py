"""gunicorn settings: `gunicorn -c loggregator_site/gunicorn.conf.py loggregator_site.asgi`.

Each value can be overridden from the environment (GUNICORN_*) or the command line.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# An event loop per worker (uvicorn) holds the live streams without a thread
# each; every other request runs in the worker's pool of `threads` threads,
# as under gunicorn's gthread worker (see loggregator_site/asgi.py).
worker_class = "loggregator_site.asgi_worker.LoggregatorWorker"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Time to answer in-flight requests and let the consumer finish its batch on SIGTERM.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
keepalive = 30
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
