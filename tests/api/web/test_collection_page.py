"""The collection view in Chromium: upload, live progress, failed and skipped items, deletion."""

from __future__ import annotations

import httpx
import pytest

from tests.api.web.pages import (
    API_KEY,
    INGEST_TIMEOUT_S,
    PageRun,
    WebServer,
    api_get,
    ingest,
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
    # The bar counts images: the skipped member is not drawn (as if it had failed), the one
    # failed image of two is half of it.
    assert card.locator(".bar span.skipped").count() == 0
    assert card.locator(".bar span.failed").evaluate("e => e.style.width") == "50%"
    assert card.locator(".bar").get_attribute("aria-valuemax") == "2"
    shot(page, "09-collection")

    # The reasons are one click away from the list: the failed count opens the detail.
    page.goto(f"{web_server.url}/#/collection")
    page.locator(f".ingestion[data-id='{new_id}'] a.failed-n").click()
    page.wait_for_url(f"**#/collection/{new_id}")
    page.locator("#ingestion-detail table.items.failed tbody tr").first.wait_for()


def test_delete_an_ingestion_after_confirming(laptop: PageRun, web_server: WebServer) -> None:
    page = laptop.page
    ingestion_id = ingest(web_server.url, web_server.files / "delete-me.zip")
    images = api_get(web_server, "/v1/images", ingestion_id=ingestion_id)["images"]
    assert len(images) == 1
    page.goto(f"{web_server.url}/#/collection/{ingestion_id}")
    page.click("#ingestion-delete")
    confirm = page.locator("#ingestion-detail .confirm")
    confirm.wait_for()
    assert f"Delete ingestion #{ingestion_id}" in confirm.inner_text()
    # Cancel keeps it.
    page.click("#ingestion-delete-cancel")
    page.locator("#ingestion-delete").wait_for()
    assert api_get(web_server, f"/v1/ingestions/{ingestion_id}")["id"] == ingestion_id

    page.click("#ingestion-delete")
    with page.expect_response(
        lambda r: r.url.endswith(f"/v1/ingestions/{ingestion_id}") and r.request.method == "DELETE"
    ) as info:
        page.click("#ingestion-delete-confirm")
    assert info.value.status == 200, info.value.text()
    page.wait_for_url("**#/collection")
    page.locator(f".ingestion[data-id='{ingestion_id}']").wait_for(state="detached")
    assert "deleted" in page.inner_text("#ingest-status")
    gone = httpx.get(
        f"{web_server.url}/v1/images/{images[0]['id']}", headers={"X-API-Key": API_KEY}
    )
    assert gone.status_code == 404
