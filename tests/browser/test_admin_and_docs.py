"""The admin and the API docs in a browser, as production serves them: styled, complete, nothing from outside."""

import pytest

from tests.browser.conftest import log_in, screenshot
from tests.factories import event

pytestmark = pytest.mark.slow

# The admin's header colour (--header-bg in admin/css/base.css): only there when the stylesheet loaded.
ADMIN_HEADER_BACKGROUND = "rgb(65, 118, 144)"


def test_every_admin_page_is_styled_and_loads_without_errors(site, browse, screenshots):
    site.publish([event("shop.orders", source="billing"), event("shop.refunds")])
    site.wait_until_processed()
    page, watch = browse(site)
    page.goto("/admin/login/")
    assert header_background(page) == ADMIN_HEADER_BACKGROUND
    screenshot(page, screenshots, "admin-login")
    log_in(page)

    page.goto("/admin/events/event/")
    page.click("#result_list tbody tr:first-child th a")  # an event's page
    page.wait_for_selector("pre.payload")
    # Leaving before its scripts and icons arrive would abort them, and count as failed requests.
    page.wait_for_load_state("networkidle")
    pages = {
        "admin-index": "/admin/",
        "admin-events": "/admin/events/event/",
        "admin-events-filtered": "/admin/events/event/?within=24h&source=billing",
        "admin-events-searched": "/admin/events/event/?q=billing",
        "admin-event": page.url,
        "admin-stats": "/admin/events/stats/",
        "admin-api-keys": "/admin/events/apikey/",
        "admin-users": "/admin/auth/user/",
        "admin-groups": "/admin/auth/group/",
        "admin-password-change": "/admin/password_change/",
    }
    for name, url in pages.items():
        page.goto(url)
        page.wait_for_load_state("networkidle")
        assert header_background(page) == ADMIN_HEADER_BACKGROUND, name
        # The theme toggle's icons are drawn from the stylesheet's sizes, not as black boxes.
        assert page.eval_on_selector(".theme-toggle svg", "svg => svg.getBoundingClientRect().width") < 40, name
        screenshot(page, screenshots, name)

    # From an event's admin page to the same event, opened in the explorer.
    page.goto(pages["admin-event"])
    page.wait_for_load_state("networkidle")
    event_id = page.text_content(".field-event_id .readonly")
    page.click("text=Open this event in the explorer")
    page.wait_for_selector("#results .detail pre")
    assert page.get_attribute("#results > li", "data-event-id") == event_id
    assert watch.problems() == []


def header_background(page) -> str:
    return page.eval_on_selector("#header", "header => getComputedStyle(header).backgroundColor")


def test_swagger_ui_lists_every_operation_with_the_outside_blocked(site, browse, screenshots):
    page, watch = browse(site)
    page.goto("/docs")
    page.wait_for_selector(".opblock-summary-path")
    paths = page.eval_on_selector_all(".opblock-summary-path", "paths => paths.map(p => p.textContent.trim())")
    assert {"/publish", "/events", "/stats"} <= set(paths)
    page.wait_for_load_state("networkidle")
    screenshot(page, screenshots, "docs")
    assert watch.problems() == []


def test_redoc_shows_the_api_with_the_outside_blocked(site, browse, screenshots):
    page, watch = browse(site)
    page.goto("/redoc")
    page.get_by_role("heading", name="Publish one event or a batch").wait_for()
    page.wait_for_load_state("networkidle")
    screenshot(page, screenshots, "redoc")
    assert watch.problems() == []
