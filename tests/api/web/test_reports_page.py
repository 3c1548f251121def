"""The reports view in Chromium: a report started from the page opens when it is done; the list
tells reports apart (selection, method, objects, clusters, duration); a failed one shows its
error."""

from __future__ import annotations

import pytest

from shared.db.database import Database
from shared.db.models import Report, ReportStatus
from tests.api.web.pages import PageRun, WebServer, api_get, shot, wait_js

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_report_started_from_the_page_opens_when_done(
    laptop: PageRun, web_server: WebServer
) -> None:
    page = laptop.page
    objects = api_get(web_server, "/v1/objects", page_size=1)
    wanted = objects["objects"][0]["class_name"]
    # The report's selection is the filter panel's, kept in the URL like everywhere else.
    page.goto(f"{web_server.url}/#/reports?classes={wanted}")
    page.click("#report-new")
    page.wait_for_selector("#report-form:not([hidden])")
    page.wait_for_selector(f"#f-class option[value='{wanted}']", state="attached")
    assert page.eval_on_selector("#f-class", "s => s.value") == wanted
    page.fill("#r-k", "2")
    with page.expect_response(lambda r: r.url.endswith("/v1/reports/clusters")) as info:
        page.click("#report-submit")
    assert info.value.status == 202, info.value.text()
    report_id = info.value.json()["id"]
    assert info.value.request.post_data_json["classes"] == [wanted]
    # It opens by itself once done.
    page.wait_for_url(f"**#/reports/{report_id}", timeout=180_000)
    wait_js(page, "(document.querySelector('#report-frame').srcdoc || '').length > 1000")
    card = page.locator(f".report[data-id='{report_id}']")
    card.wait_for()
    body = api_get(web_server, f"/v1/reports/{report_id}")
    summary = body["summary"]
    text = card.inner_text()
    assert f"classes {wanted}" in text and "k-means, k=2" in text
    assert f"{summary['objects']} objects" in text and f"{summary['clusters']} clusters" in text
    assert "took" in text
    shot(page, "16-report-open", full_page=False)


def test_a_failed_report_shows_its_error(laptop: PageRun, web_server: WebServer) -> None:
    db = Database.from_url(web_server.settings.resolved_database_url)
    try:
        with db.begin() as session:
            report = Report(
                kind="clusters",
                status=ReportStatus.FAILED,
                params={"classes": ["nope"], "method": "density"},
                error_code="unknown_class",
                error_message="unknown class(es) 'nope'",
            )
            session.add(report)
            session.flush()
            report_id = report.id
    finally:
        db.dispose()
    page = laptop.page
    page.goto(f"{web_server.url}/#/reports")
    card = page.locator(f".report[data-id='{report_id}']")
    card.wait_for()
    assert card.get_attribute("data-status") == "failed"
    assert card.locator(".error").inner_text() == "unknown_class: unknown class(es) 'nope'"
    assert "classes nope" in card.inner_text() and "density" in card.inner_text()
    assert card.locator("a.button").count() == 0  # nothing to open
