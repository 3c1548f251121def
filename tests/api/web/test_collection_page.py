"""The collection view in Chromium: upload, live progress, failed and skipped items, deletion."""

from __future__ import annotations

import pytest

from tests.api.web.pages import (
    INGEST_TIMEOUT_S,
    PageRun,
    WebServer,
    shot,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


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
    shot(page, "09-collection")
