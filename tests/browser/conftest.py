"""Browser tests: Debian's Chromium, driven by Playwright, against a real gunicorn with DEBUG off.

Every request to a host other than the server is blocked and recorded, so a
page that needs the internet shows up as a failure here, not on a customer's
air-gapped host. Screenshots of each page go to $LOGGREGATOR_SCREENSHOTS (a
temporary directory by default; CI keeps them in artifacts/screenshots).

Chromium comes from the system (`apt-get install chromium`; .ci/run installs
it), never from `playwright install`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.servers import PROJECT_DIR, AggregatorServer, ServiceDatabase

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
STAFF = ("staff", "browser-tests-password")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        message = "Chromium is not installed: apt-get install -y chromium"
        if os.environ.get("LOGGREGATOR_REQUIRE_BROWSER"):  # CI: a browser test that does not run fails
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    configured = os.environ.get("LOGGREGATOR_SCREENSHOTS")
    directory = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def production_server(data_dir: Path, static_root: Path, **settings: str) -> AggregatorServer:
    """gunicorn as production runs it (DEBUG off, collected static files), on a database of its own.

    Cookies are not HTTPS-only: the browser talks plain HTTP to 127.0.0.1.
    """
    return AggregatorServer(
        data_dir,
        database_url=ServiceDatabase(data_dir).url,
        DEBUG="false",
        SECRET_KEY="browser-tests-not-secret",
        ALLOWED_HOSTS="127.0.0.1",
        STATIC_ROOT=str(static_root),
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        **settings,
    )


def manage(server: AggregatorServer, *args: str) -> None:
    """A management command on the server's database."""
    env = {**server.env, "DJANGO_SUPERUSER_PASSWORD": STAFF[1]}
    subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=env, check=True, capture_output=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory, collected_static):
    """One production-mode server for a test module, with a staff user."""
    server = production_server(tmp_path_factory.mktemp("site"), collected_static)
    server.start()
    manage(server, "createsuperuser", "--noinput", "--username", STAFF[0], "--email", "staff@example.com")
    yield server
    server.stop()


@dataclass
class PageWatch:
    """What a page asked for and what went wrong while it loaded."""

    origin: str
    outside: list[str] = field(default_factory=list)  # requests to other hosts (blocked)
    failed: list[str] = field(default_factory=list)  # failed requests and 4xx/5xx answers
    console_errors: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return self.outside + self.failed + self.console_errors

    def on_response(self, response) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.status} {response.url}")

    def on_console(self, message) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)


def open_page(browser, server: AggregatorServer, **context_options):
    """A new browser context on `server`, every request to another host blocked and recorded."""
    context = browser.new_context(base_url=server.url, **context_options)
    watch = PageWatch(origin=urlsplit(server.url).netloc)

    def only_this_host(route):
        if urlsplit(route.request.url).netloc == watch.origin:
            route.continue_()
        else:
            watch.outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_host)
    page = context.new_page()
    page.on("requestfailed", lambda request: watch.failed.append(f"{request.url}: {request.failure}"))
    page.on("response", watch.on_response)
    page.on("console", watch.on_console)
    page.on("pageerror", lambda error: watch.console_errors.append(str(error)))
    return context, page, watch


@pytest.fixture
def browse(chromium, screenshots):
    """Open pages of a server; at the end, fail if any of them tried to reach another host."""
    opened = []

    def _browse(server: AggregatorServer, **context_options):
        context, page, watch = open_page(chromium, server, **context_options)
        opened.append((context, watch))
        return page, watch

    yield _browse
    for context, watch in opened:
        context.close()
        assert watch.outside == [], f"requests to other hosts: {watch.outside}"


def screenshot(page, screenshots: Path, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=full_page)


def log_in(page) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", STAFF[0])
    page.fill("#id_password", STAFF[1])
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
