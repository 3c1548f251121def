"""`roisearch similar` / `roisearch search` against a live server."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from typer.testing import CliRunner

from roisearch.commands.client import app
from tests.api.conftest import API_KEY, resources_of_server
from tests.api.live_server import LiveServer
from tests.factories import seed_collection
from tests.roisearch.test_client_commands import table_rows

runner = CliRunner()


def test_similar_prints_a_table_of_hits(live_server: LiveServer) -> None:
    resources = resources_of_server(live_server)
    seeded = seed_collection(resources.settings, resources.db)
    resources.index.sync_once()
    query = seeded.object_ids[0]
    result = runner.invoke(
        app,
        ["similar", str(query), "-k", "3", "--url", live_server.url, "--api-key", API_KEY],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    assert f"similar to object {query}" in result.output
    rows = table_rows(result.output)
    assert [row[0] for row in rows] == ["1", "2", "3"]
    cluster = seeded.cluster_of[query]
    assert all(seeded.cluster_of[int(row[2])] == cluster for row in rows)

    missing = runner.invoke(
        app, ["similar", "99999", "--url", live_server.url, "--api-key", API_KEY]
    )
    assert missing.exit_code == 1 and "object 99999 does not exist" in missing.output
    denied = runner.invoke(app, ["similar", "1", "--url", live_server.url, "--api-key", "bad"])
    assert denied.exit_code == 1 and "401" in denied.output


def test_search_reports_bad_boxes_and_bad_images(live_server: LiveServer, tmp_path: Path) -> None:
    picture = tmp_path / "q.png"
    out = io.BytesIO()
    PILImage.fromarray(np.zeros((40, 60, 3), np.uint8)).save(out, format="PNG")
    picture.write_bytes(out.getvalue())
    bad_box = runner.invoke(
        app, ["search", str(picture), "--box", "1,2,3", "--url", live_server.url]
    )
    assert bad_box.exit_code != 0 and "x1,y1,x2,y2" in bad_box.output
    outside = runner.invoke(
        app,
        [
            "search",
            str(picture),
            "--box",
            "0,0,100,100",
            "--url",
            live_server.url,
            "--api-key",
            API_KEY,
        ],
    )
    assert outside.exit_code == 1 and "not inside the 60x40 image" in outside.output
