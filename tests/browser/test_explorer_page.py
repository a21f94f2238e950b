"""The explorer in a browser: find a needle among 100,000 events, page on scroll, follow Live across a restart."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import manage, production_server, screenshot
from tests.factories import event

pytestmark = pytest.mark.slow

HAYSTACK = 100_000
NEEDLE_STATUS = "needle-4f1c"
NEEDLE_WORD = "zqxjvk"


@pytest.fixture(scope="module")
def needle(site):
    """One event among 100,000, from the middle of their 30 days: first in neither order."""
    manage(site, "load_events", str(HAYSTACK), "--topics", "20", "--days", "30")
    middle = datetime.now(UTC) - timedelta(days=15)
    needle = event(
        "orders.eu.created",
        timestamp=middle.isoformat().replace("+00:00", "Z"),
        source="svc-b",
        payload={"status": NEEDLE_STATUS, "message": f"the {NEEDLE_WORD} in the haystack"},
    )
    assert site.publish(needle).status_code == 202
    site.wait_until_processed(received=HAYSTACK + 1)
    return needle


def search(page, **fields) -> list[str]:
    """Fill the search form, submit it and return the event ids listed once the search has answered."""
    for name, value in fields.items():
        page.fill(f"#{name}", value)
    page.press("#topic", "Enter")
    page.wait_for_function("document.querySelector('#status').textContent.includes('all that match')")
    return page.eval_on_selector_all("#results > li", "items => items.map(item => item.dataset.eventId)")


@pytest.mark.parametrize("newest_first", [True, False], ids=["newest-first", "oldest-first"])
def test_the_explorer_finds_the_needle_by_payload_value_and_by_text(site, needle, browse, screenshots, newest_first):
    page, watch = browse(site)
    page.goto("/")
    page.set_checked("#newest", newest_first)
    assert search(page, topic=">", payload=f"status={NEEDLE_STATUS}") == [needle["event_id"]]
    assert search(page, payload="", q=NEEDLE_WORD.upper()) == [needle["event_id"]]
    page.click("#results .summary")
    shown = page.text_content("#results .detail pre")
    assert f'"event_id": "{needle["event_id"]}"' in shown and f'"status": "{NEEDLE_STATUS}"' in shown
    screenshot(page, screenshots, f"explorer-needle-{'newest' if newest_first else 'oldest'}-first")
    assert watch.problems() == []


def test_results_page_on_scroll_in_order_and_an_event_copies_as_json(site, needle, browse, screenshots):
    page, watch = browse(site, viewport={"width": 1280, "height": 800})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/")
    page.keyboard.press("/")  # the keyboard way to the search
    assert page.evaluate("document.activeElement.id") == "topic"
    page.wait_for_function("document.querySelectorAll('#results > li').length === 100")
    page.locator("#more").scroll_into_view_if_needed()
    page.wait_for_function("document.querySelectorAll('#results > li').length >= 200")
    times = page.eval_on_selector_all("#results .time", "cells => cells.map(cell => cell.textContent)")
    assert times == sorted(times, reverse=True)

    page.locator("#results .summary").first.focus()
    page.keyboard.press("Enter")
    page.click("#results .detail .copy")
    page.wait_for_function("document.querySelector('#results .detail .copy').textContent === 'Copied'")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.text_content("#results .detail pre")
    assert copied.startswith('{\n  "topic": ')
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, screenshots, "explorer", full_page=False)
    assert watch.problems() == []


def test_the_explorer_fits_a_phone(site, needle, browse, screenshots):
    page, watch = browse(site, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(f"/?payload=status%3D{NEEDLE_STATUS}")
    page.wait_for_function("document.querySelector('#status').textContent.includes('all that match')")
    page.click("#results .summary")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, screenshots, "explorer-phone")
    assert watch.problems() == []


def test_live_shows_an_event_published_by_another_process_without_a_reload(site, browse):
    # How soon is measured where the machine's load can be compared within a run
    # (`manage.py benchmark --workloads tail`: publish to arrival on a stream), not here.
    page, watch = browse(site)
    page.goto("/?topic=live.one.*")
    page.check("#live")
    page.wait_for_selector("main[data-live='on']")
    published = event("live.one.created")
    assert site.publish(published).status_code == 202  # from this process, not the page's
    page.wait_for_selector(f"#results > li[data-event-id='{published['event_id']}']")
    assert watch.problems() == []


def test_live_turned_on_while_the_first_search_loads_keeps_its_one_stream(site, browse):
    page, watch = browse(site)
    searches = []  # the page's GET /events requests, held until released
    page.route(lambda url: urlsplit(url).path == "/events", lambda route: searches.append(route))
    streams = []
    page.on("request", lambda request: urlsplit(request.url).path == "/events/stream" and streams.append(request))
    page.goto("/?topic=live.two.*")
    page.check("#live")
    page.wait_for_selector("main[data-live='on']")
    with page.expect_response(lambda response: urlsplit(response.url).path == "/events"):
        searches[0].continue_()  # the search started at load answers only now
    page.wait_for_function("!document.querySelector('#status').textContent.includes('Searching')")
    published = event("live.two.created")
    assert site.publish(published).status_code == 202
    page.wait_for_selector(f"#results > li[data-event-id='{published['event_id']}']")
    # Restarting would close the stream (a failed request) and start the next one later, missing what came between.
    assert len(streams) == 1
    assert watch.problems() == []


def test_live_resumes_after_a_server_restart_without_losing_or_repeating_an_event(
    tmp_path, collected_static, browse, screenshots
):
    server = production_server(tmp_path, collected_static)
    server.start()
    try:
        page, watch = browse(server)
        page.goto("/?topic=restart.>")
        page.check("#live")
        page.wait_for_selector("main[data-live='on']")
        first = event("restart.before")
        server.publish(first)
        page.wait_for_selector(f"#results > li[data-event-id='{first['event_id']}']")

        # Accepted just before a crash: stored at restart, streamed only after it.
        before_crash = [event("restart.before") for _ in range(10)]
        assert server.publish(before_crash).status_code == 202
        server.kill()
        server.start()
        after_restart = [event("restart.after") for _ in range(10)]
        assert server.publish(after_restart).status_code == 202

        expected = [e["event_id"] for e in [first, *before_crash, *after_restart]]
        page.wait_for_function(f"document.querySelectorAll('#results > li').length >= {len(expected)}")
        server.wait_until_processed()
        shown = page.eval_on_selector_all("#results > li", "items => items.map(item => item.dataset.eventId)")
        assert sorted(shown) == sorted(expected)  # each once
        assert page.get_attribute("main", "data-live") == "on"
        screenshot(page, screenshots, "explorer-live-after-restart")
        assert watch.outside == []
    finally:
        server.stop()
