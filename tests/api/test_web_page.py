"""End-to-end tests of the web page in a real headless Chromium (Debian's package, driven by
Playwright) against a real uvicorn server: real database, index, in-process queue and model.

The collection is ingested through the API from a small zip (the fixture's sample pictures and
variants of them). Screenshots go to ``artifacts/web/`` (git-ignored) for people to look at.

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``; never a browser download): the
tests fail with that instruction when it is missing. ``ROISEARCH_TEST_CHROMIUM`` overrides the
path.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from PIL import Image as PILImage
from PIL import ImageOps
from playwright import sync_api as playwright_sync

from api.app import create_app
from shared.db import migrations
from shared.settings import Settings, load_settings
from tests.api.live_server import LiveServer
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path(os.environ.get("ROISEARCH_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO_ROOT / "artifacts" / "web"
API_KEY = "web-test-key"
MiB = 1024 * 1024
MAX_UPLOAD = 3 * MiB
LAPTOP = {"width": 1366, "height": 820}
PHONE = {"width": 390, "height": 844}
# Model calls on a shared 2-core machine: allow for a slow forward pass.
STEP_TIMEOUT_MS = 90_000
INGEST_TIMEOUT_S = 240.0


@dataclass(frozen=True)
class Collection:
    ingestion_id: int
    sample_image_id: int
    image_count: int


@dataclass(frozen=True)
class WebServer:
    url: str
    settings: Settings
    collection: Collection
    files: Path


def _png(image: PILImage.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _jpeg(image: PILImage.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _write_files(root: Path, fixtures: Path) -> Path:
    """Query images and archives used by the tests; returns the collection zip."""
    sample = PILImage.open(fixtures / "sample.png").convert("RGB")
    sample2 = PILImage.open(fixtures / "sample2.png").convert("RGB")
    (root / "sample.png").write_bytes((fixtures / "sample.png").read_bytes())
    # Twice the size: the page shows it scaled down, so drawn boxes must be scaled back.
    (root / "sample-2x.png").write_bytes(
        _png(sample.resize((sample.width * 2, sample.height * 2), PILImage.Resampling.BILINEAR))
    )
    (root / "not-an-image.png").write_bytes(b"this is a text file, not a PNG\n" * 20)
    # Random bytes do not compress: a zip of them stays over the upload limit.
    (root / "too-big.zip").write_bytes(os.urandom(MAX_UPLOAD + 256 * 1024))

    collection = root / "collection.zip"
    with zipfile.ZipFile(collection, "w") as zf:
        zf.writestr("street/sample.png", (fixtures / "sample.png").read_bytes())
        zf.writestr("street/sample2.png", (fixtures / "sample2.png").read_bytes())
        zf.writestr("street/sample-mirrored.jpg", _jpeg(ImageOps.mirror(sample)))
        zf.writestr("street/sample2-small.jpg", _jpeg(sample2.resize((300, 201))))

    extra = root / "more.zip"
    with zipfile.ZipFile(extra, "w") as zf:
        zf.writestr("more/sample-flipped.png", _png(ImageOps.flip(sample)))
        good = _jpeg(sample2.rotate(180))
        zf.writestr("more/cut-off.jpg", good[: len(good) // 3])  # truncated: fails to decode
        zf.writestr("more/notes.txt", "holiday photos\n")  # not an image: skipped
    return collection


def _ingest(url: str, archive: Path) -> int:
    headers = {"X-API-Key": API_KEY}
    with archive.open("rb") as fh:
        response = httpx.post(
            f"{url}/v1/ingestions",
            headers=headers,
            files={"files": (archive.name, fh, "application/zip")},
            timeout=60,
        )
    assert response.status_code == 202, response.text
    ingestion_id = int(response.json()["id"])
    deadline = time.monotonic() + INGEST_TIMEOUT_S
    while True:
        status = httpx.get(f"{url}/v1/ingestions/{ingestion_id}", headers=headers).json()
        if status["status"] not in {"planning", "running"}:
            break
        assert time.monotonic() < deadline, f"ingestion did not finish: {status}"
        time.sleep(0.3)
    assert status["status"] == "done", status
    assert status["counts"]["failed"] == 0, status
    return ingestion_id


def _wait_indexed(url: str, image_ids: list[int]) -> None:
    """The index catches up from the database in the background: wait until the newest object
    of the collection finds itself."""
    headers = {"X-API-Key": API_KEY}
    object_ids = [
        o["id"]
        for image_id in image_ids
        for o in httpx.get(f"{url}/v1/images/{image_id}", headers=headers).json()["objects"]
    ]
    assert object_ids, "the fixture model detects objects in the collection"
    newest = max(object_ids)
    deadline = time.monotonic() + 60
    while True:
        response = httpx.get(
            f"{url}/v1/objects/{newest}/similar",
            headers=headers,
            params={"k": 10, "include_self": "true"},
        )
        hits = response.json().get("hits", []) if response.status_code == 200 else []
        # Ties (similarity 1.0 between near-identical objects) may rank another object first.
        if newest in [h["object_id"] for h in hits]:
            return
        assert time.monotonic() < deadline, f"object {newest} never became searchable"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def web_server(
    tmp_path_factory: pytest.TempPathFactory, yolov7_fixtures: Path
) -> Iterator[WebServer]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("web")
    files = root / "files"
    files.mkdir()
    collection_zip = _write_files(files, yolov7_fixtures)
    database_url = f"sqlite:///{root / 'roisearch.db'}"
    migrations.upgrade(database_url)
    settings = load_settings(
        data_dir=root / "data",
        database_url=database_url,
        redis_url=None,
        weights=yolov7_fixtures / "yolov7-tiny-random.pt",
        api_key=API_KEY,
        max_upload_bytes=MAX_UPLOAD,
        max_query_image_bytes=2 * MiB,
        torch_threads=1,
        index_poll_interval_s=0.05,
    )
    with LiveServer(create_app(settings, warm_model=True)) as server:
        ingestion_id = _ingest(server.url, collection_zip)
        headers = {"X-API-Key": API_KEY}
        images = httpx.get(
            f"{server.url}/v1/images", headers=headers, params={"ingestion_id": ingestion_id}
        ).json()["images"]
        sample_sha = hashlib.sha256((yolov7_fixtures / "sample.png").read_bytes()).hexdigest()
        sample_id = next(i["id"] for i in images if i["sha256"] == sample_sha)
        _wait_indexed(server.url, [i["id"] for i in images])
        yield WebServer(
            url=server.url,
            settings=settings,
            collection=Collection(ingestion_id, sample_id, len(images)),
            files=files,
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}. Install Debian's package: "
            "`apt-get update && apt-get install -y chromium` (never `playwright install`); "
            "or set ROISEARCH_TEST_CHROMIUM to the browser binary.",
            pytrace=False,
        )
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class PageRun:
    page: Any
    errors: list[str]


def _open(browser: Any, server: WebServer, *, viewport: dict[str, int], key: str | None) -> PageRun:
    context = browser.new_context(viewport=viewport)
    if key is not None:
        # Runs in every frame; the sandboxed report frame has no storage (and needs none).
        context.add_init_script(
            f"if (window === window.top) localStorage.setItem('roisearch.apiKey', {key!r});"
        )
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return PageRun(page, errors)


@pytest.fixture
def laptop(browser: Any, web_server: WebServer) -> Iterator[PageRun]:
    run = _open(browser, web_server, viewport=LAPTOP, key=API_KEY)
    yield run
    run.page.context.close()
    assert run.errors == [], f"uncaught script errors: {run.errors}"


def _shot(page: Any, name: str, *, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def _upload_query(run: PageRun, server: WebServer, name: str) -> dict[str, Any]:
    """Pick a query image; returns the API's search response that the page received."""
    page = run.page
    with page.expect_response(
        lambda r: r.url.endswith("/v1/search") or "/v1/search?" in r.url
    ) as info:
        page.set_input_files("#query-file", str(server.files / name))
    response = info.value
    assert response.status == 200, response.text()
    body: dict[str, Any] = response.json()
    page.wait_for_selector("#query-status:has-text('detected')")
    return body


def _wait_js(page: Any, expression: str, timeout_s: float = STEP_TIMEOUT_MS / 1000) -> None:
    """Poll a JavaScript expression until it is truthy. (``page.wait_for_function`` evaluates
    strings with ``eval``, which the page's Content-Security-Policy rightly forbids.)"""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for: {expression}"
        time.sleep(0.05)


def _clickable_box(page: Any) -> int:
    """Index of the largest detection box whose centre is not covered by another box."""
    index: int = page.evaluate(
        """() => {
        let best = null, bestArea = -1;
        for (const el of document.querySelectorAll("#query-overlay .box[data-kind=detection]")) {
          const r = el.getBoundingClientRect();
          const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
          const area = r.width * r.height;
          const big = r.width >= 8 && r.height >= 8;
          if (hit && hit.closest(".box") === el && big && area > bestArea) {
            best = Number(el.dataset.index); bestArea = area;
          }
        }
        return best;
      }"""
    )
    assert index is not None, "no detection box can be clicked on its own"
    return index


def _similarities(page: Any) -> list[float]:
    texts = page.locator("#results .hit .sim").all_inner_texts()
    return [float(re.search(r"[-\d.]+$", t).group(0)) for t in texts]  # type: ignore[union-attr]


def test_the_page_loads_without_a_key_and_asks_for_it(browser: Any, web_server: WebServer) -> None:
    page_response = httpx.get(f"{web_server.url}/")
    assert page_response.status_code == 200
    assert page_response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page_response.headers["content-security-policy"]
    script = httpx.get(f"{web_server.url}/web/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{web_server.url}/web/app.css").status_code == 200
    # Only the page's own files: no listing, no other file of the package.
    for name in ("routes.py", "__init__.py", "", "..%2Froutes.py"):
        missing = httpx.get(f"{web_server.url}/web/{name}")
        assert missing.status_code == 404, name
        assert missing.json()["error"]["code"] in {"file_not_found", "not_found"}
    assert httpx.get(f"{web_server.url}/v1/model").status_code == 401

    run = _open(browser, web_server, viewport=LAPTOP, key=None)
    page = run.page
    page.goto(f"{web_server.url}/")
    page.wait_for_selector("#key-dialog[open]")
    assert "missing API key" in page.inner_text("#key-reason")
    assert page.locator(".message[data-code='unauthorized']").is_visible()
    _shot(page, "01-key-dialog", full_page=False)

    page.fill("#key-input", API_KEY)
    page.click("#key-save")
    page.locator("#key-dialog").wait_for(state="hidden")
    # With the key the page loads the model's classes and the ingestions for the filters.
    _wait_js(page, "document.querySelectorAll('#f-class option').length > 1")
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
    result = _upload_query(laptop, web_server, "sample.png")
    detections = result["queries"]
    assert detections, "the fixture model detects objects in sample.png"
    boxes = page.locator("#query-overlay .box[data-kind='detection']")
    assert boxes.count() == len(detections)
    _shot(page, "02-search-detections")

    index = _clickable_box(page)
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
    assert _similarities(page) == pytest.approx([h["score"] for h in expected], abs=6e-4)
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
    _wait_js(
        page,
        "[...document.querySelectorAll('#results .hit .thumb')].every(t => "
        "t.querySelector('.no-image') || (t.querySelector('img').complete && "
        "t.querySelector('img').naturalWidth > 0))",
    )
    assert card.locator(".thumb img").evaluate("i => i.src.startsWith('blob:') && i.naturalWidth")
    _shot(page, "03-search-similar-grid")

    # "More like this" on a result: the stored object's neighbours.
    hit_id = shown_ids[1] if len(shown_ids) > 1 else shown_ids[0]
    with page.expect_response(lambda r: f"/v1/objects/{hit_id}/similar" in r.url) as info:
        page.locator(f"#results .hit[data-object-id='{hit_id}'] a.more").click()
    similar = info.value.json()
    page.wait_for_selector(f"#results-head .title:has-text('#{hit_id}')")
    assert page.url.endswith(f"#/similar/{hit_id}")
    _wait_js(page, f"document.querySelectorAll('#results .hit').length === {len(similar['hits'])}")
    assert hit_id not in [h["object_id"] for h in similar["hits"]]
    _shot(page, "04-more-like-this")

    # Each result links to its image with that object highlighted.
    hit = similar["hits"][0]
    page.locator(f"#results .hit[data-object-id='{hit['object_id']}'] a.thumb").click()
    page.wait_for_selector("#view-image:not([hidden])")
    page.wait_for_selector(f"#image-overlay .box.active[data-object-id='{hit['object_id']}']")
    _wait_js(
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
    _shot(page, "05-image-with-object-highlighted")


def test_draw_a_box_and_search_for_it(laptop: PageRun, web_server: WebServer) -> None:
    page = laptop.page
    page.goto(f"{web_server.url}/#/search")
    result = _upload_query(laptop, web_server, "sample-2x.png")
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
    _wait_js(page, f"document.querySelectorAll('#results .hit').length === {len(hits)}")
    assert _similarities(page) == pytest.approx([h["score"] for h in hits], abs=6e-4)
    _shot(page, "06-drawn-box-search")

    # Filters apply to the current query: a class filter re-runs the drawn-box search.
    wanted = hits[0]["class_name"]
    with page.expect_response(lambda r: "/v1/search" in r.url and "classes=" in r.url) as info:
        page.select_option("#f-class", wanted)
    filtered = info.value.json()["queries"][0]["hits"]
    assert filtered and {h["class_name"] for h in filtered} == {wanted}
    _wait_js(page, f"document.querySelectorAll('#results .hit').length === {len(filtered)}")
    assert set(page.locator("#results .hit .cls").all_inner_texts()) == {wanted}


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
    _shot(page, "07-error-not-an-image", full_page=False)

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
    _shot(page, "08-error-upload-too-big", full_page=False)
    listed = httpx.get(f"{web_server.url}/v1/ingestions", headers={"X-API-Key": API_KEY}).json()[
        "page"
    ]["total"]
    assert listed == before

    # A wrong key: the API's 401 is shown and the key dialog opens.
    page.click("#key-button")
    page.fill("#key-input", "wrong")
    page.click("#key-save")
    _wait_js(page, "document.querySelector('#key-reason').textContent.includes('wrong API key')")
    assert page.locator("#key-dialog").is_visible()
    assert page.locator(".message[data-code='unauthorized']").is_visible()


def test_collection_view_uploads_and_follows_an_ingestion(
    laptop: PageRun, web_server: WebServer
) -> None:
    page = laptop.page
    page.goto(f"{web_server.url}/#/collection")
    first = page.locator(f".ingestion[data-id='{web_server.collection.ingestion_id}']")
    first.wait_for()
    assert "done" in first.locator(".badge").inner_text().lower()
    assert f"{web_server.collection.image_count} / {web_server.collection.image_count} items" in (
        first.inner_text()
    )

    with page.expect_response(
        lambda r: r.url.endswith("/v1/ingestions") and r.request.method == "POST"
    ) as info:
        page.set_input_files("#ingest-file", str(web_server.files / "more.zip"))
        page.click("#ingest-submit")
    assert info.value.status == 202, info.value.text()
    new_id = int(info.value.json()["id"])
    page.wait_for_url(f"**#/collection/{new_id}")
    card = page.locator(f".ingestion[data-id='{new_id}']")
    card.wait_for()
    # Polled live until the ingestion is finished.
    page.wait_for_selector(
        f".ingestion[data-id='{new_id}'][data-status='done']", timeout=INGEST_TIMEOUT_S * 1000
    )
    text = card.inner_text()
    assert "3 / 3 items" in text and "failed 1" in text and "skipped 1" in text
    # The failed item is listed with its reason, and the skipped one beside it with its own.
    row = page.locator("#ingestion-detail table.items.failed tbody tr")
    row.first.wait_for()
    assert row.count() == 1
    cells = row.first.locator("td").all_inner_texts()
    assert cells[0].endswith("cut-off.jpg")
    assert cells[1] not in {"", "–"} and cells[2]
    skipped = page.locator("#ingestion-detail table.items.skipped tbody tr")
    assert skipped.count() == 1
    cells = skipped.first.locator("td").all_inner_texts()
    assert cells[0].endswith("notes.txt") and cells[1] == "not_an_image"
    assert "notes.txt" in cells[2]
    detail = page.inner_text("#ingestion-detail")
    assert "Skipped (not images) (1)" in detail and "null" not in detail
    _shot(page, "09-collection")


def test_phone_layout(browser: Any, web_server: WebServer) -> None:
    run = _open(browser, web_server, viewport=PHONE, key=API_KEY)
    page = run.page
    page.goto(f"{web_server.url}/#/search")
    _upload_query(run, web_server, "sample.png")
    _shot(page, "10-phone-detections", full_page=False)
    index = _clickable_box(page)
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
    _shot(page, "11-phone-results", full_page=False)
    page.goto(f"{web_server.url}/#/collection")
    page.wait_for_selector(".ingestion")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _shot(page, "12-phone-collection", full_page=False)
    page.context.close()
    assert run.errors == []
