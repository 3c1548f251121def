"""Phone width: every view fits the screen (no sideways scrolling); the box overlay follows
the scaled image."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.web.pages import (
    API_KEY,
    PHONE,
    WebServer,
    clickable_box,
    open_page,
    shot,
    upload_query,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_phone_layout(browser: Any, web_server: WebServer) -> None:
    run = open_page(browser, web_server, viewport=PHONE, key=API_KEY)
    page = run.page
    page.goto(f"{web_server.url}/#/search")
    upload_query(run, web_server, "sample.png")
    shot(page, "10-phone-detections", full_page=False)
    index = clickable_box(page)
    page.locator(f"#query-overlay .box[data-kind='detection'][data-index='{index}']").click()
    page.wait_for_selector("#results .hit")
    # Nothing is wider than the screen: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # The overlay follows the scaled image.
    img = page.locator("#query-img").bounding_box()
    overlay = page.locator("#query-overlay").bounding_box()
    assert img is not None and overlay is not None
    assert img["width"] <= PHONE["width"]
    assert overlay["width"] == pytest.approx(img["width"], abs=1)
    assert overlay["height"] == pytest.approx(img["height"], abs=1)
    shot(page, "11-phone-results", full_page=False)
    page.goto(f"{web_server.url}/#/collection")
    page.wait_for_selector(".ingestion")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "12-phone-collection", full_page=False)
    page.context.close()
    assert run.errors == []
