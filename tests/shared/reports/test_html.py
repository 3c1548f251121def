"""The HTML report: escaping, placeholders, and rendering in a real headless Chromium.

The browser test needs ``/usr/bin/chromium`` (``apt-get install -y chromium``; never a browser
download; ``ROISEARCH_TEST_CHROMIUM`` overrides the path). Its screenshot goes to
``artifacts/reports/`` (git-ignored) for people to look at.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from shared.db.database import Database
from shared.reports.html import cluster_colour, objects_to_crop, render_report_html
from shared.reports.job import create_cluster_report, run_cluster_report
from shared.reports.params import ClusterParams
from shared.settings import load_settings
from tests.conftest import REPO_ROOT
from tests.factories import seed_clustered

CHROMIUM = Path(os.environ.get("ROISEARCH_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO_ROOT / "artifacts" / "reports"


def small_result() -> dict[str, Any]:
    evil = "<script>alert(1)</script>"
    member = {"object_id": 7, "image_id": 2, "class_name": evil, "similarity": 0.9}
    return {
        "selection": {"space_id": 1, "dim": 8, "classes": None, "ingestions": [],
                      "min_score": None},
        "method": "kmeans",
        "per_class": False,
        "k": {"total": 1, "groups": [{"class_name": None, "k": 1, "criterion": "given",
                                      "scores": {}, "training_points": 3}]},
        "overall": {"objects": 3, "clusters": 1, "noise": 0, "purity": 1.0,
                    "purity_baseline": 1.0, "mean_cohesion": 0.9, "silhouette": None},
        "clusters": [{"id": 0, "size": 3, "share": 1.0, "cohesion": 0.9, "min_similarity": 0.8,
                      "exemplars": [member], "outliers": [], "group_class": None,
                      "classes": [{"class_name": evil, "class_id": 0, "count": 3}],
                      "ingestions": [{"ingestion_id": 4, "count": 3}]}],
        "duplicates": {"threshold": 0.97, "method": "exact", "group_count": 1,
                       "objects_in_groups": 2, "truncated": False,
                       "groups": [{"size": 2, "min_similarity": 0.99, "object_ids": [7, 8],
                                   "image_ids": [2, 3]}]},
        "map": {"method": "pca", "explained_variance": [0.5, 0.2],
                "points": [[0.0, 0.0, 0, 7], [1.0, 2.0, 0, 8], [2.0, 1.0, 0, 9]],
                "centres": [[0, 1.0, 1.0]]},
    }  # fmt: skip


def test_escapes_names_and_shows_placeholders_without_crops() -> None:
    result = small_result()
    page = render_report_html(9, result, {})
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "#7" in page and "<img" not in page  # no crop: a placeholder, not a broken image
    assert page.count("<circle") == 3 + 1  # three points and one centre marker
    assert objects_to_crop(result) == [7, 7, 8]


def test_crops_are_embedded_as_given() -> None:
    page = render_report_html(9, small_result(), {7: "data:image/jpeg;base64,AAAA"})
    assert 'src="data:image/jpeg;base64,AAAA"' in page


def test_cluster_colours_are_distinct() -> None:
    colours = [cluster_colour(i) for i in range(60)]
    assert len(set(colours)) == 60 and cluster_colour(-1) not in colours
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours)


@pytest.mark.browser
def test_report_renders_in_headless_chromium(tmp_path: Path, sqlite_url: str) -> None:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: `apt-get update && apt-get install -y chromium` "
            "(never `playwright install`), or set ROISEARCH_TEST_CHROMIUM"
        )
    from playwright import sync_api as playwright_sync

    settings = load_settings(data_dir=tmp_path / "data", database_url=sqlite_url)
    database = Database.from_url(sqlite_url)
    seed_clustered(settings, database)
    report_id = create_cluster_report(database, ClusterParams(k=4))
    run_cluster_report(database, settings.report_config(), report_id)
    database.dispose()
    html = settings.reports_dir / str(report_id) / "report.html"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    requests: list[str] = []
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(html.as_uri())
        page.wait_for_load_state("load")
        circles = page.locator("svg.map circle").count()
        loaded = page.evaluate(
            "Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length"
        )
        total = page.evaluate("document.images.length")
        page.screenshot(path=str(ARTIFACTS / "cluster-report.png"), full_page=True)
        browser.close()
    assert errors == []
    assert [r for r in requests if not r.startswith(("file:", "data:"))] == []
    assert circles >= 163
    assert total > 0 and loaded == total  # every embedded crop decodes
