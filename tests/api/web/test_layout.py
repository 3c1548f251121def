"""Phone width: every view fits the screen (no sideways scrolling); the box overlay follows
the scaled image."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.web.pages import (
    API_KEY,
    LAPTOP,
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


def test_phone_browse_and_header(browser: Any, web_server: WebServer) -> None:
    run = open_page(browser, web_server, viewport=PHONE, key=API_KEY)
    page = run.page
    page.goto(f"{web_server.url}/#/browse")
    page.wait_for_selector("#browse-grid .image-tile")
    page.wait_for_selector("#model-info:not([hidden])")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # Two columns of tiles, each inside the screen.
    boxes = [b for b in (t.bounding_box() for t in page.locator(".image-tile").all()) if b]
    assert boxes and all(b["x"] >= 0 and b["x"] + b["width"] <= PHONE["width"] for b in boxes)
    shot(page, "17-phone-browse", full_page=False)
    page.goto(f"{web_server.url}/#/reports")
    page.wait_for_selector("#reports")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.context.close()
    assert run.errors == []


def test_the_header_names_the_model_and_shows_a_demo_notice(
    browser: Any, web_server: WebServer
) -> None:
    model = httpx.get(f"{web_server.url}/v1/model", headers={"X-API-Key": API_KEY}).json()
    run = open_page(browser, web_server, viewport=LAPTOP, key=API_KEY)
    page = run.page
    page.goto(f"{web_server.url}/#/search")
    info = page.locator("#model-info")
    info.wait_for()
    assert info.inner_text() == f"{model['weights']} · {len(model['class_names'])} classes"
    # The fixture model is no demo model (or the server does not say): no notice.
    assert page.locator("#model-notice").is_hidden()

    # A demo model: the API's one-line notice under the top bar.
    notice = "Demo detector: it only knows generated shapes. See docs for official weights."

    def demo_model(route: Any) -> None:
        route.fulfill(json={**model, "demo": True, "notice": notice})

    page.route("**/v1/model", demo_model)
    page.reload()
    page.locator("#model-notice").wait_for()
    assert page.inner_text("#model-notice") == notice
    shot(page, "18-demo-notice", full_page=False)
    page.context.close()
    assert run.errors == []
