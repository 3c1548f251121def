"""Helpers of the web page tests: the browser, the served collection, page runs, screenshots.

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``; never a browser download): the
tests fail with that instruction when it is missing. ``ROISEARCH_TEST_CHROMIUM`` overrides the
path. Screenshots go to ``artifacts/web/`` (git-ignored) for people to look at.
"""

from __future__ import annotations

import io
import os
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image as PILImage
from PIL import ImageOps

from shared.settings import Settings
from tests.conftest import REPO_ROOT

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


def write_files(root: Path, fixtures: Path) -> Path:
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

    # One image of its own (no other ingestion has it): deleted by the collection test.
    with zipfile.ZipFile(root / "delete-me.zip", "w") as zf:
        zf.writestr("one/sample-turned.png", _png(sample.rotate(90, expand=True)))
    return collection


def ingest(url: str, archive: Path) -> int:
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


def wait_indexed(url: str, image_ids: list[int]) -> None:
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


@dataclass
class PageRun:
    page: Any
    errors: list[str]


def open_page(
    browser: Any, server: WebServer, *, viewport: dict[str, int], key: str | None
) -> PageRun:
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


def shot(page: Any, name: str, *, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def upload_query(run: PageRun, server: WebServer, name: str) -> dict[str, Any]:
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


def wait_js(page: Any, expression: str, timeout_s: float = STEP_TIMEOUT_MS / 1000) -> None:
    """Poll a JavaScript expression until it is truthy. (``page.wait_for_function`` evaluates
    strings with ``eval``, which the page's Content-Security-Policy rightly forbids.)"""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for: {expression}"
        time.sleep(0.05)


def clickable_box(page: Any) -> int:
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


def similarities(page: Any) -> list[float]:
    texts = page.locator("#results .hit .sim").all_inner_texts()
    return [float(re.search(r"[-\d.]+$", t).group(0)) for t in texts]  # type: ignore[union-attr]


def api_get(server: WebServer, path: str, **params: Any) -> Any:
    """The API's answer, as the page would get it (with the key)."""
    response = httpx.get(
        f"{server.url}{path}", headers={"X-API-Key": API_KEY}, params=params, timeout=60
    )
    assert response.status_code == 200, response.text
    return response.json()


def ids_shown(page: Any, selector: str, attribute: str) -> list[int]:
    """The ``data-<attribute>`` ids of the elements matching ``selector``, in page order."""
    values = page.locator(selector).evaluate_all(
        f"els => els.map(e => e.getAttribute('data-{attribute}'))"
    )
    return [int(v) for v in values]
