"""How long each admin page a person can reach takes to render, at two sizes of the event store.

For each size: a fresh database, filled directly (benchmark.stored_events),
gunicorn as production runs it (DEBUG off, collected static files), a staff
login; then each page is requested a few times over one keep-alive
connection and the median time to the full response is kept. The figure that
counts is each page's ratio between the sizes, measured in the same run.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import requests

from benchmark.postgres import scratch_database
from benchmark.server import PROJECT_DIR, BenchmarkServer, ServerConfig

CHANGELIST = "/admin/events/event/"
STAFF = ("benchmark", "benchmark-password-not-secret")
# Each admin page a person can reach, by name; {topic}, {source}, {event_id} and {pk} name a stored event.
PAGES = {
    "newest first": CHANGELIST,
    "page 50": CHANGELIST + "?p=50",
    "last page (100)": CHANGELIST + "?p=100",
    "topic": CHANGELIST + "?topic={topic}",
    "source": CHANGELIST + "?source={source}",
    "last 15 minutes": CHANGELIST + "?within=15m",
    "last 24 hours": CHANGELIST + "?within=24h",
    "last 7 days, page 50": CHANGELIST + "?within=7d&p=50",
    "topic, source, 24 h": CHANGELIST + "?topic={topic}&source={source}&within=24h",
    "search event_id": CHANGELIST + "?q={event_id}",
    "search source": CHANGELIST + "?q={source}",
    "search source, page 50": CHANGELIST + "?q={source}&p=50",
    "one event": "/admin/events/event/{pk}/change/",
    "stats": "/admin/events/stats/",
    "index": "/admin/",
}

Write = Callable[[str], None]


def measure(size: int, *, repeat: int, postgres_url: str | None, write: Write) -> dict[str, float]:
    """Median milliseconds per page with `size` events stored."""
    with _database(postgres_url) as (directory, database_url):
        server = BenchmarkServer(directory, ServerConfig(workers=1, threads=4, database_url=database_url))
        server.env.update(
            STATIC_ROOT=str(directory / "static"), SESSION_COOKIE_SECURE="false", CSRF_COOKIE_SECURE="false"
        )
        _manage(server.env, "migrate", "--noinput", "-v0")
        _manage(server.env, "collectstatic", "--noinput", "-v0")
        started = time.monotonic()
        _manage(server.env, "load_events", str(size))
        write(f"  {size:,} events stored in {time.monotonic() - started:.0f} s")
        _manage(server.env, "createsuperuser", "--noinput", "--username", STAFF[0], "--email", "b@example.com")
        with server, requests.Session() as session:
            _log_in(session, server.url)
            return {name: _median_ms(session, server.url + url, repeat) for name, url in _pages(server.env).items()}


@contextmanager
def _database(postgres_url: str | None) -> Iterator[tuple[Path, str]]:
    with tempfile.TemporaryDirectory(prefix="loggregator-admin-") as directory:
        scratch = scratch_database(postgres_url) if postgres_url else nullcontext(None)
        with scratch as url:
            yield Path(directory), url or f"sqlite:///{directory}/loggregator.sqlite3"


def _manage(env: dict[str, str], *args: str) -> str:
    env = {**env, "DJANGO_SUPERUSER_PASSWORD": STAFF[1]}
    command = [sys.executable, "manage.py", *args]
    return subprocess.run(command, cwd=PROJECT_DIR, env=env, check=True, capture_output=True, text=True).stdout


def _pages(env: dict[str, str]) -> dict[str, str]:
    """The pages, with a stored event's values filled in (the newest one's: what a person would pick)."""
    code = (
        "from events.models import Event; e = Event.objects.order_by('-timestamp', '-id').first();"
        "print(e.topic, e.source, e.event_id, e.pk)"
    )
    topic, source, event_id, pk = _manage(env, "shell", "-v0", "-c", code).split()
    return {name: url.format(topic=topic, source=source, event_id=event_id, pk=pk) for name, url in PAGES.items()}


def _log_in(session: requests.Session, url: str) -> None:
    session.get(f"{url}/admin/login/", timeout=30).raise_for_status()
    form = {"username": STAFF[0], "password": STAFF[1], "csrfmiddlewaretoken": session.cookies["csrftoken"]}
    response = session.post(f"{url}/admin/login/?next=/admin/", data=form, timeout=30)
    if "sessionid" not in session.cookies:
        raise RuntimeError(f"could not log in to the admin: {response.status_code}")


def _median_ms(session: requests.Session, url: str, repeat: int) -> float:
    times = []
    for _ in range(repeat + 1):  # the first one warms caches and is not counted
        started = time.perf_counter()
        response = session.get(url, timeout=120)
        response.raise_for_status()
        if "/admin/login/" in response.url:
            raise RuntimeError(f"{url} redirected to the login page")
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[1:])


def write_report(sizes: list[int], results: list[dict[str, float]], write: Write, *, target_ratio: float) -> None:
    small, large = results[0], results[-1]
    header = f"{'page':<26}" + "".join(f"{f'{size:,} ms':>14}" for size in sizes) + f"{'ratio':>8}  target"
    write(header)
    for name in PAGES:
        ratio = large[name] / small[name]
        figures = "".join(f"{result[name]:>14.1f}" for result in results)
        verdict = "met" if ratio <= target_ratio else "MISSED"
        write(f"{name:<26}{figures}{ratio:>8.2f}  {verdict} (<= {target_ratio}x)")
