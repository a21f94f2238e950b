"""gunicorn settings: `gunicorn -c loggregator_site/gunicorn.conf.py loggregator_site.wsgi`.

Each value can be overridden from the environment (GUNICORN_*) or the command line.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# Threads let one worker answer many keep-alive publishers while another
# request waits on the database.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Time to answer in-flight requests and let the consumer finish its batch on SIGTERM.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# Seconds an idle kept-alive connection stays open. A graceful stop waits up to
# this long for such connections to close, so short-lived servers (tests) set it low.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "30"))
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
