"""End-to-end tests of the search views in a real headless Chromium (Debian's package, driven
by Playwright) against a real uvicorn server: upload, detections, similar objects, drawn boxes,
errors and the API key."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.api.web.pages import (
    API_KEY,
    LAPTOP,
    PageRun,
    WebServer,
    clickable_box,
    open_page,
    shot,
    similarities,
    upload_query,
    wait_js,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_page_loads_without_a_key_and_asks_for_it(browser: Any, web_server: WebServer) -> None:
    page_response = httpx.get(f"{web_server.url}/")
    assert page_response.status_code == 200
    assert page_response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page_response.headers["content-security-policy"]
    # The page's script is native ES modules: the entry imports the others, all served.
    assert '<script type="module" src="/web/app.js">' in page_response.text
    script = httpx.get(f"{web_server.url}/web/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    for module in re.findall(r'from "\./([a-z]+\.js)"', script.text):
        served = httpx.get(f"{web_server.url}/web/{module}")
        assert served.status_code == 200, module
        assert served.headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{web_server.url}/web/app.css").status_code == 200
    # Only the page's own files: no listing, no other file of the package.
    for name in ("routes.py", "__init__.py", "", "..%2Froutes.py"):
        missing = httpx.get(f"{web_server.url}/web/{name}")
        assert missing.status_code == 404, name
        assert missing.json()["error"]["code"] in {"file_not_found", "not_found"}
    assert httpx.get(f"{web_server.url}/v1/model").status_code == 401

    run = open_page(browser, web_server, viewport=LAPTOP, key=None)
    page = run.page
    page.goto(f"{web_server.url}/")
    page.wait_for_selector("#key-dialog[open]")
    assert "missing API key" in page.inner_text("#key-reason")
    assert page.locator(".message[data-code='unauthorized']").is_visible()
    shot(page, "01-key-dialog", full_page=False)

    page.fill("#key-input", API_KEY)
    page.click("#key-save")
    page.locator("#key-dialog").wait_for(state="hidden")
    # With the key the page loads the model's classes and the ingestions for the filters.
    wait_js(page, "document.querySelectorAll('#f-class option').length > 1")
    assert page.locator("#f-class option").count() == 1 + 80  # "any class" + COCO names
    page.wait_for_selector(
        f"#f-ingestion option[value='{web_server.collection.ingestion_id}']", state="attached"
    )
    assert page.evaluate("localStorage.getItem('roisearch.apiKey')") == API_KEY
    assert page.locator(".message[data-code='unauthorized']").count() == 0
    page.context.close()
    assert run.errors == []


def test_upload_an_image_click_an_object_and_see_similar_objects(
    laptop: PageRun, web_server: WebServer
) -> None:
    page = laptop.page
    page.goto(f"{web_server.url}/#/search")
    result = upload_query(laptop, web_server, "sample.png")
    detections = result["queries"]
    assert detections, "the fixture model detects objects in sample.png"
    boxes = page.locator("#query-overlay .box[data-kind='detection']")
    assert boxes.count() == len(detections)
    shot(page, "02-search-detections")

    index = clickable_box(page)
    target = page.locator(f"#query-overlay .box[data-kind='detection'][data-index='{index}']")
    target.click()
    page.wait_for_selector("#results .hit")
    page.wait_for_selector(f"#query-overlay .box.active[data-index='{index}']")
    expected = detections[index]["hits"]
    assert page.locator("#results .hit").count() == len(expected) > 0
    # The grid shows the API's hits in order: same objects, same similarities.
    shown_ids = [
        int(v)
        for v in page.locator("#results .hit").evaluate_all(
            "els => els.map(e => e.dataset.objectId)"
        )
    ]
    assert shown_ids == [h["object_id"] for h in expected]
    assert similarities(page) == pytest.approx([h["score"] for h in expected], abs=6e-4)
    # sample.png is in the collection: the stored copy of the clicked object is among the
    # best matches (same box, similarity ~1).
    clicked = detections[index]["box"]
    own = [
        h
        for h in expected
        if h["image_id"] == web_server.collection.sample_image_id
        and all(abs(h["box"][c] - clicked[c]) < 1.0 for c in ("x1", "y1", "x2", "y2"))
    ]
    assert own and own[0]["score"] > 0.99, (clicked, expected[:3])
    card = page.locator(f"#results .hit[data-object-id='{own[0]['object_id']}']")
    assert card.locator(".cls").inner_text() == own[0]["class_name"]
    assert card.locator(".det").inner_text().endswith(f"{own[0]['detector_score']:.3f}")
    # Crops are fetched with the key and shown through blob: URLs; the clicked object's crop
    # loads, and any crop the API refuses (a degenerate box) shows a placeholder instead.
    wait_js(
        page,
        "[...document.querySelectorAll('#results .hit .thumb')].every(t => "
        "t.querySelector('.no-image') || (t.querySelector('img').complete && "
        "t.querySelector('img').naturalWidth > 0))",
    )
    assert card.locator(".thumb img").evaluate("i => i.src.startsWith('blob:') && i.naturalWidth")
    shot(page, "03-search-similar-grid")

    # "More like this" on a result: the stored object's neighbours.
    hit_id = shown_ids[1] if len(shown_ids) > 1 else shown_ids[0]
    with page.expect_response(lambda r: f"/v1/objects/{hit_id}/similar" in r.url) as info:
        page.locator(f"#results .hit[data-object-id='{hit_id}'] a.more").click()
    similar = info.value.json()
    page.wait_for_selector(f"#results-head .title:has-text('#{hit_id}')")
    assert page.url.endswith(f"#/similar/{hit_id}")
    wait_js(page, f"document.querySelectorAll('#results .hit').length === {len(similar['hits'])}")
    assert hit_id not in [h["object_id"] for h in similar["hits"]]
    shot(page, "04-more-like-this")

    # Each result links to its image with that object highlighted.
    hit = similar["hits"][0]
    page.locator(f"#results .hit[data-object-id='{hit['object_id']}'] a.thumb").click()
    page.wait_for_selector("#view-image:not([hidden])")
    page.wait_for_selector(f"#image-overlay .box.active[data-object-id='{hit['object_id']}']")
    wait_js(
        page,
        "document.querySelector('#image-img').complete && "
        "document.querySelector('#image-img').naturalWidth > 0",
    )
    active = page.locator("#image-overlay .box.active")
    assert active.count() == 1
    # The highlight sits where the object is: box in percent of the image, as the API says.
    style = active.get_attribute("style") or ""
    detail = httpx.get(
        f"{web_server.url}/v1/images/{hit['image_id']}", headers={"X-API-Key": API_KEY}
    ).json()
    left = float(re.search(r"left: ([\d.]+)%", style).group(1))  # type: ignore[union-attr]
    assert left == pytest.approx(hit["box"]["x1"] / detail["width"] * 100, abs=0.01)
    shot(page, "05-image-with-object-highlighted")


def test_draw_a_box_and_search_for_it(laptop: PageRun, web_server: WebServer) -> None:
    page = laptop.page
    page.goto(f"{web_server.url}/#/search")
    result = upload_query(laptop, web_server, "sample-2x.png")
    assert (result["width"], result["height"]) == (1000, 750)
    overlay = page.locator("#query-overlay")
    rect = overlay.bounding_box()
    assert rect is not None
    scale = result["width"] / rect["width"]
    assert scale > 1.3, "the query image must be shown scaled down for this test"

    start = (round(rect["x"] + rect["width"] * 0.08), round(rect["y"] + rect["height"] * 0.12))
    end = (round(rect["x"] + rect["width"] * 0.45), round(rect["y"] + rect["height"] * 0.62))
    with page.expect_response(lambda r: "/v1/search" in r.url) as info:
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(*end, steps=8)
        page.mouse.up()
    assert info.value.status == 200, info.value.text()
    body = info.value.json()
    query = body["queries"][0]
    assert query["source"] == "box"
    # The API echoes the box it was sent: original-image pixels (1000x750), not screen pixels.
    expected = [
        (start[0] - rect["x"]) * scale,
        (start[1] - rect["y"]) * result["height"] / rect["height"],
        (end[0] - rect["x"]) * scale,
        (end[1] - rect["y"]) * result["height"] / rect["height"],
    ]
    sent = [query["box"][c] for c in ("x1", "y1", "x2", "y2")]
    assert sent == pytest.approx(expected, abs=0.2)
    page.wait_for_selector("#query-overlay .box.drawn")
    page.wait_for_selector("#results-head .title:has-text('drawn box')")
    hits = body["queries"][0]["hits"]
    assert hits, "the drawn region has neighbours in the collection"
    wait_js(page, f"document.querySelectorAll('#results .hit').length === {len(hits)}")
    assert similarities(page) == pytest.approx([h["score"] for h in hits], abs=6e-4)
    shot(page, "06-drawn-box-search")

    # Filters apply to the current query: a class filter re-runs the drawn-box search.
    wanted = hits[0]["class_name"]
    with page.expect_response(lambda r: "/v1/search" in r.url and "classes=" in r.url) as info:
        page.select_option("#f-class", wanted)
    filtered = info.value.json()["queries"][0]["hits"]
    assert filtered and {h["class_name"] for h in filtered} == {wanted}
    wait_js(page, f"document.querySelectorAll('#results .hit').length === {len(filtered)}")
    assert set(page.locator("#results .hit .cls").all_inner_texts()) == {wanted}


def test_the_url_holds_the_view_and_its_filters(laptop: PageRun, web_server: WebServer) -> None:
    page = laptop.page
    page.goto(f"{web_server.url}/#/search")
    upload_query(laptop, web_server, "sample.png")
    index = clickable_box(page)
    page.locator(f"#query-overlay .box[data-kind='detection'][data-index='{index}']").click()
    page.wait_for_selector("#results .hit")
    wanted = page.locator("#results .hit .cls").first.inner_text()
    hit_id = int(page.locator("#results .hit").first.get_attribute("data-object-id") or 0)
    # A filter is part of the address, and re-runs the query.
    with page.expect_response(lambda r: "/v1/search" in r.url and "classes=" in r.url):
        page.select_option("#f-class", wanted)
    page.wait_for_url(f"**#/search?classes={wanted}")

    # Another query, typed or shared without filters, runs without them: the earlier class
    # does not carry over, and the uploaded image is not shown beside its results.
    with page.expect_response(lambda r: f"/v1/objects/{hit_id}/similar" in r.url) as info:
        page.goto(f"{web_server.url}/#/similar/{hit_id}")
    assert "classes=" not in info.value.url
    page.wait_for_selector(f"#results-head .title:has-text('#{hit_id}')")
    assert page.locator("#query-stage").is_hidden()
    assert page.eval_on_selector("#f-class", "s => s.value") == ""
    # With the filter in its address, it applies (and shows).
    with page.expect_response(lambda r: f"/v1/objects/{hit_id}/similar" in r.url) as info:
        page.goto(f"{web_server.url}/#/similar/{hit_id}?classes={wanted}&min_score=0.1")
    assert f"classes={wanted}" in info.value.url and "min_score=0.1" in info.value.url
    page.wait_for_selector(f"#results-head .title:has-text('#{hit_id}')")
    assert page.eval_on_selector("#f-class", "s => s.value") == wanted
    assert page.eval_on_selector("#f-min-score", "s => s.value") == "0.1"
    assert set(page.locator("#results .hit .cls").all_inner_texts()) <= {wanted}

    # Back to the upload: its image, its selected object and its filter come back.
    page.go_back()
    page.go_back()
    page.wait_for_url(f"**#/search?classes={wanted}")
    page.wait_for_selector("#query-stage:not([hidden])")
    page.wait_for_selector("#results-head .title:has-text('Similar to the')")
    assert page.eval_on_selector("#f-class", "s => s.value") == wanted


def test_failed_uploads_and_api_errors_show_a_message(
    laptop: PageRun, web_server: WebServer
) -> None:
    page = laptop.page
    page.goto(f"{web_server.url}/#/search")

    # A file that is not an image: the API's error (code and message) is shown.
    with page.expect_response(lambda r: "/v1/search" in r.url) as info:
        page.set_input_files("#query-file", str(web_server.files / "not-an-image.png"))
    error = info.value.json()["error"]
    assert info.value.status in {415, 422}
    message = page.locator(".message[data-context='Search failed']")
    message.wait_for()
    assert message.is_visible()
    assert error["message"] in message.inner_text()
    assert error["code"] in message.inner_text()
    shot(page, "07-error-not-an-image", full_page=False)

    # An API error on a route: an unknown object.
    page.goto(f"{web_server.url}/#/similar/987654")
    message = page.locator(".message[data-code='object_not_found']")
    message.wait_for()
    assert "987654" in message.inner_text()

    # An upload over the limit is refused before it is read: a visible message, no ingestion.
    page.goto(f"{web_server.url}/#/collection")
    page.wait_for_selector(".ingestion")
    before = page.locator(".ingestion").count()
    page.set_input_files("#ingest-file", str(web_server.files / "too-big.zip"))
    page.click("#ingest-submit")
    message = page.locator(".message[data-context='Upload failed']")
    message.wait_for()
    assert message.is_visible()
    assert re.search(r"limit|too large|refused", message.inner_text())
    assert page.inner_text("#ingest-status") == "Upload failed."
    shot(page, "08-error-upload-too-big", full_page=False)
    listed = httpx.get(f"{web_server.url}/v1/ingestions", headers={"X-API-Key": API_KEY}).json()[
        "page"
    ]["total"]
    assert listed == before

    # A wrong key: the API's 401 is shown and the key dialog opens.
    page.click("#key-button")
    page.fill("#key-input", "wrong")
    page.click("#key-save")
    wait_js(page, "document.querySelector('#key-reason').textContent.includes('wrong API key')")
    assert page.locator("#key-dialog").is_visible()
    assert page.locator(".message[data-code='unauthorized']").is_visible()
