"""`roisearch similar` / `roisearch search` without --url: answered in process from the local
data dir by the API's search service; and the one-line failure of an unreachable --url."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner, Result

from roisearch import context
from roisearch.cli import app
from shared.db.database import Database
from shared.settings import Settings
from tests.api.test_search import HIT_FIELDS
from tests.factories import SEEDED_CLASSES as CLASSES
from tests.factories import Seeded, seed_collection
from tests.roisearch.test_index_commands import env_of

runner = CliRunner()


def error_lines(result: Result) -> list[str]:
    """What a command wrote to stderr, less the ``data: ...`` line every command starts with."""
    return [line for line in result.stderr.strip().splitlines() if not line.startswith("data: ")]


def table_rows(output: str) -> list[list[str]]:
    """The cells of a printed hits table's rows (those whose first cell is a rank; the test
    collections' class names are single words)."""
    rows = [line.split() for line in output.splitlines()]
    return [row for row in rows if len(row) == 8 and row[0].isdigit()]


def _local_env(settings: Settings) -> dict[str, str]:
    env = env_of(settings)
    del env["COLUMNS"]  # as when piped: no terminal width
    return env


def test_similar_answers_in_process_as_a_table(settings: Settings, database: Database) -> None:
    seeded: Seeded = seed_collection(settings, database)
    query = seeded.object_ids[0]
    result = runner.invoke(app, ["similar", str(query), "-k", "3"], env=_local_env(settings))
    assert result.exit_code == 0, result.output
    assert f"similar to object {query}" in result.output
    rows = table_rows(result.stdout)
    assert [row[0] for row in rows] == ["1", "2", "3"]
    assert all(seeded.cluster_of[int(row[2])] == seeded.cluster_of[query] for row in rows)
    # Not a terminal: no wrapping, every hit's crop path whole on its row.
    assert all(row[-1] == f"/v1/objects/{row[2]}/crop.jpg" for row in rows)


def test_similar_json_has_the_api_fields(settings: Settings, database: Database) -> None:
    seeded = seed_collection(settings, database)
    query = seeded.object_ids[0]
    env = _local_env(settings)
    result = runner.invoke(app, ["similar", str(query), "-k", "4", "--json"], env=env)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert set(body) == {"query", "hits", "groups"} and body["groups"] is None
    assert body["query"]["id"] == query and body["query"]["class_name"] in CLASSES
    assert len(body["hits"]) == 4 and all(set(hit) == HIT_FIELDS for hit in body["hits"])
    ids = [hit["object_id"] for hit in body["hits"]]
    assert query not in ids
    assert all(seeded.cluster_of[i] == seeded.cluster_of[query] for i in ids)
    scores = [hit["score"] for hit in body["hits"]]
    assert scores == sorted(scores, reverse=True)

    grouped = runner.invoke(
        app, ["similar", str(query), "-k", "2", "--group-by", "image", "--json"], env=env
    )
    groups = json.loads(grouped.stdout)["groups"]
    assert len(groups) == 2 and len({g["image_id"] for g in groups}) == 2

    cats = runner.invoke(app, ["similar", str(query), "--classes", "cat", "--json"], env=env)
    assert {hit["class_name"] for hit in json.loads(cats.stdout)["hits"]} <= {"cat"}


def test_bad_input_in_process_is_one_line(settings: Settings, database: Database) -> None:
    seeded = seed_collection(settings, database)
    env = _local_env(settings)
    missing = runner.invoke(app, ["similar", "99999"], env=env)
    assert missing.exit_code == 1
    assert error_lines(missing) == ["error: object 99999 does not exist (object_not_found)"]
    unknown = runner.invoke(
        app, ["similar", str(seeded.object_ids[0]), "--classes", "zebra"], env=env
    )
    assert unknown.exit_code == 1 and len(error_lines(unknown)) == 1
    assert "'zebra'" in unknown.output and "cat, dog, car" in unknown.output


def test_an_unreachable_url_is_one_line_and_exit_1(settings: Settings) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    for args in (["similar", "1"], ["similar", "1", "--json"]):
        result = runner.invoke(app, [*args, "--url", url], env=env_of(settings))
        assert result.exit_code == 1
        lines = error_lines(result)
        assert len(lines) == 1, result.output
        assert f"cannot reach the API at {url}" in lines[0]
        assert "roisearch serve" in lines[0] and "--url" in lines[0]


def test_search_in_process_embeds_the_image(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    picture = tmp_path / "q.png"
    PILImage.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(picture)
    env = _local_env(settings)
    result = runner.invoke(app, ["search", str(picture), "--box", "5,5,30,30", "--json"], env=env)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["width"], body["height"]) == (60, 40)
    assert body["space_id"] is None  # nothing of the model's space is stored yet
    assert [q["source"] for q in body["queries"]] == ["box"]
    assert body["queries"][0]["box"] == {"x1": 5.0, "y1": 5.0, "x2": 30.0, "y2": 30.0}

    outside = runner.invoke(app, ["search", str(picture), "--box", "0,0,100,100"], env=env)
    assert outside.exit_code == 1 and "not inside the 60x40 image" in outside.output
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    refused = runner.invoke(app, ["search", str(text)], env=env)
    assert refused.exit_code == 1 and len(error_lines(refused)) == 1
    assert "uploaded file 'notes.txt'" in refused.output and "(not_an_image)" in refused.output


def test_an_80_column_terminal_leaves_the_crop_column_room(
    settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed_collection(settings, database)
    monkeypatch.setattr(context.console, "_force_terminal", True)
    env = {**_local_env(settings), "COLUMNS": "80"}
    result = runner.invoke(app, ["similar", str(seeded.object_ids[0]), "-k", "3"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    rows = table_rows(result.stdout)
    assert len(rows) == 3  # one line each: the crop path is whole, not folded
    assert all(row[-1] == f"/v1/objects/{row[2]}/crop.jpg" for row in rows)
