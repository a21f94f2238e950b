"""How long each admin page a person can reach takes to render, at two sizes of the event store.

For each size: a fresh database, filled directly (benchmark.stored_events),
gunicorn as production runs it (DEBUG off, collected static files), a staff
login. Then each page is requested from every size's server in turn, a few
rounds, over keep-alive connections, and the median time to the full
response is kept. The figure that counts is each page's ratio between the
sizes, measured side by side.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path

import requests

from benchmark.postgres import scratch_database
from benchmark.server import BenchmarkServer, ServerConfig
from harness.processes import PROJECT_DIR

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


def measure(sizes: list[int], *, repeat: int, postgres_url: str | None, write: Write) -> list[dict[str, float]]:
    """Median milliseconds per page for each size of the store, in the order of `sizes`.

    Every size gets its own database and server, all running at once; each
    page is then requested from them in turn, round after round, so that
    whatever else the machine is doing slows every size alike.
    """
    with ExitStack() as stack:
        sites = []
        for size in sizes:
            directory, database_url = stack.enter_context(_database(postgres_url))
            server = _filled_server(size, directory, database_url, write)
            stack.enter_context(server)  # started now, stopped at the end
            session = stack.enter_context(requests.Session())
            _log_in(session, server.url)
            sites.append((session, _pages(server)))
        timings: list[dict[str, list[float]]] = [{name: [] for name in PAGES} for _ in sizes]
        for name in PAGES:
            for round_number in range(repeat + 1):  # round 0 warms caches and is not counted
                for (session, pages), timing in zip(sites, timings, strict=True):
                    elapsed = _request_ms(session, pages[name])
                    if round_number:
                        timing[name].append(elapsed)
        return [{name: statistics.median(times) for name, times in timing.items()} for timing in timings]


def _filled_server(size: int, directory: Path, database_url: str, write: Write) -> BenchmarkServer:
    """A server (not started yet) on a database holding `size` events and a staff user."""
    server = BenchmarkServer(directory, ServerConfig(workers=1, threads=4, database_url=database_url))
    server.env.update(STATIC_ROOT=str(directory / "static"), SESSION_COOKIE_SECURE="false", CSRF_COOKIE_SECURE="false")
    _manage(server.env, "migrate", "--noinput", "-v0")
    _manage(server.env, "collectstatic", "--noinput", "-v0")
    started = time.monotonic()
    _manage(server.env, "load_events", str(size))
    write(f"  {size:,} events stored in {time.monotonic() - started:.0f} s")
    _manage(server.env, "createsuperuser", "--noinput", "--username", STAFF[0], "--email", "b@example.com")
    return server


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


def _pages(server: BenchmarkServer) -> dict[str, str]:
    """The pages' URLs, with a stored event's values filled in (the newest one's: what a person would pick)."""
    code = (
        "from events.models import Event; e = Event.objects.order_by('-timestamp', '-id').first();"
        "print(e.topic, e.source, e.event_id, e.pk)"
    )
    topic, source, event_id, pk = _manage(server.env, "shell", "-v0", "-c", code).split()
    values = {"topic": topic, "source": source, "event_id": event_id, "pk": pk}
    return {name: server.url + url.format(**values) for name, url in PAGES.items()}


def _log_in(session: requests.Session, url: str) -> None:
    session.get(f"{url}/admin/login/", timeout=30).raise_for_status()
    form = {"username": STAFF[0], "password": STAFF[1], "csrfmiddlewaretoken": session.cookies["csrftoken"]}
    response = session.post(f"{url}/admin/login/?next=/admin/", data=form, timeout=30)
    if "sessionid" not in session.cookies:
        raise RuntimeError(f"could not log in to the admin: {response.status_code}")


def _request_ms(session: requests.Session, url: str) -> float:
    started = time.perf_counter()
    response = session.get(url, timeout=120)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    if "/admin/login/" in response.url:
        raise RuntimeError(f"{url} redirected to the login page")
    return elapsed


def write_report(sizes: list[int], results: list[dict[str, float]], write: Write, *, target_ratio: float) -> None:
    small, large = results[0], results[-1]
    header = f"{'page':<26}" + "".join(f"{f'{size:,} ms':>14}" for size in sizes) + f"{'ratio':>8}  target"
    write(header)
    for name in PAGES:
        ratio = large[name] / small[name]
        figures = "".join(f"{result[name]:>14.1f}" for result in results)
        verdict = "met" if ratio <= target_ratio else "MISSED"
        write(f"{name:<26}{figures}{ratio:>8.2f}  {verdict} (<= {target_ratio}x)")
