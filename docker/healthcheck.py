"""Container healthchecks; the image has no curl, so they are Python.

    python docker/healthcheck.py web   GET /readyz on this container answers 2xx (see events/health.py)
    python docker/healthcheck.py db    the configured database answers a query

Exit status 0 means healthy. The web check stays light (stdlib only); the db
check loads Django's settings, so it sees exactly what the process sees.
"""

import os
import sys
import urllib.request


def check_web() -> None:
    port = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000").rsplit(":", 1)[-1]
    # A 503 raises HTTPError, whose message names the failing check for `docker inspect`.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
        response.read()


def check_db() -> None:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loggregator_site.settings")
    import django

    django.setup()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def main() -> int:
    checks = {"web": check_web, "db": check_db}
    if len(sys.argv) != 2 or sys.argv[1] not in checks:
        print(f"usage: healthcheck.py {{{'|'.join(checks)}}}", file=sys.stderr)
        return 2
    try:
        checks[sys.argv[1]]()
    except Exception as exc:  # any failure is "unhealthy", with the reason in the log
        print(f"unhealthy: {exc!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
