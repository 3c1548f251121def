"""`roisearch ingest` and `roisearch ingestions list|show` with the bundled demo detector on
generated scenes (SQLite, embedded): what the summary says, what fails, the exit status."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from demo.export import write_dataset
from roisearch.cli import app
from tests.shared.imaging.corpus import jpeg

SCENES = 4


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str | None]:
    """The defaults (SQLite in the data dir, the demo detector), whatever the caller's env."""
    return {
        **{key: None for key in os.environ if key.startswith("ROISEARCH_")},
        "ROISEARCH_DATA_DIR": str(tmp_path / "data"),
        "ROISEARCH_TORCH_THREADS": "1",
    }


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo dataset: 4 scenes, their YOLO labels, three JSON files and classes.txt."""
    archive = tmp_path_factory.mktemp("scenes") / "scenes.zip"
    write_dataset(archive, SCENES, seed=3, as_zip=True)
    return archive


def run(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def test_summary_says_objects_added_and_folds_skipped_members(
    env: dict[str, str | None], scenes: Path
) -> None:
    first = run(env, "ingest", str(scenes))
    assert first.exit_code == 0, first.output
    # the bar counts items (4 scenes + 9 other members), not chunks ("1/1")
    assert re.search(rf"{SCENES + 9}/{SCENES + 9} items \d+\.\d items/s", first.stderr)
    # the model in use, and that it is the demo model
    assert "model: bundled demo detector (demo-detector.safetensors), 9 classes" in first.stderr
    assert "Demo model" in first.stderr and "docs/official-weights.md" in first.stderr
    lines = first.stdout.splitlines()
    added = next(line for line in lines if line.startswith("objects: "))
    count = int(added.split()[1])
    assert count > 0 and added == f"objects: {count} added, {count} in the collection"
    # one line per reason, members folded into patterns, not one row each; the annotation
    # files (labels/*.txt, annotations.json, classes.txt) are read, not skipped (issue 20)
    assert "skipped 3 not images: *.json (3)" in lines
    assert "labels/000000.txt" not in first.stdout
    assert "  list them: roisearch ingestions show 1 --skipped" in lines

    again = run(env, "ingest", str(scenes))
    assert again.exit_code == 0, again.output
    assert (
        f"objects: 0 added ({count} more in images already in the collection), "
        f"{count} in the collection"
    ) in again.stdout.splitlines()

    listed = run(env, "ingestions", "show", "1", "--skipped")
    assert listed.exit_code == 0, listed.output
    rows = [line for line in listed.stdout.splitlines() if "not_an_image" in line]
    assert len(rows) == 3 and all(".json " in row for row in rows)

    shown = json.loads(run(env, "ingestions", "show", "2", "--json").stdout)
    assert shown["status"] == "done" and shown["objects_added"] is None
    assert shown["objects_in_images"] == shown["collection_objects"] == count
    assert shown["skipped"][0]["patterns"][0] == {"pattern": "*.json", "count": 3}

    listing = json.loads(run(env, "ingestions", "list", "--json").stdout)
    assert [i["id"] for i in listing["ingestions"]] == [2, 1]
    assert set(listing["ingestions"][0]) == {
        "id",
        "source",
        "status",
        "items",
        "done",
        "failed",
        "skipped",
        "objects_in_images",
        "created_at",
    }


def test_a_failed_source_prints_its_reason_and_exits_1(
    env: dict[str, str | None], tmp_path: Path
) -> None:
    """Issue 19 item 7: a truncated zip printed a table saying `failed` and exited 0."""
    broken = tmp_path / "t.zip"
    write_dataset(tmp_path / "whole.zip", 2, seed=1, as_zip=True)
    broken.write_bytes((tmp_path / "whole.zip").read_bytes()[:4000])
    result = run(env, "ingest", str(broken))
    assert result.exit_code == 1, result.output
    assert "ingestion 1 failed: bad_archive: t.zip is not a readable zip" in result.stderr
    document = json.loads(run(env, "ingest", str(broken), "--json").stdout)
    assert document["status"] == "failed" and document["error_code"] == "bad_archive"
    assert document["model"]["demo"] is True and len(document["model"]["class_names"]) == 9


def test_failed_items_first_ten_then_the_command_for_all(
    env: dict[str, str | None], tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "good.jpg").write_bytes(jpeg(64, 48, 0))
    for i in range(12):
        (folder / f"bad{i:02d}.jpg").write_bytes(jpeg(64, 48, i + 1)[:300])  # truncated
    result = run(env, "ingest", str(folder))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert "failed items (first 10 of 12)" in lines
    assert sum(1 for line in lines if line.startswith("bad")) == 10
    assert "  list all 12: roisearch ingestions show 1 --failed" in lines
    every = run(env, "ingestions", "show", "1", "--failed", "--json")
    items = json.loads(every.stdout)["items"]
    assert len(items) == 12 and {i["code"] for i in items} == {"corrupt"}
    assert set(items[0]) == {"member", "code", "message"}


def test_no_image_processed_has_no_speed(env: dict[str, str | None], tmp_path: Path) -> None:
    """Issue 19 item 8: images_per_s was 1000.0 (or any number) with no image processed."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("not an image")
    result = run(env, "ingest", str(folder), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["counts"]["skipped"] == 1 and document["images_per_s"] is None
    assert not any(line.startswith("speed") for line in run(env, "ingestions", "show", "1").stdout)


def test_show_an_unknown_ingestion(env: dict[str, str | None]) -> None:
    result = run(env, "ingestions", "show", "99")
    assert result.exit_code == 2 and "ingestion 99 does not exist" in result.stderr


def test_the_demo_archive_ingests_its_own_labels(env: dict[str, str | None], scenes: Path) -> None:
    """Issue 20: the demo's COCO JSON, YOLO txt and class list are read, not skipped; with
    ``--boxes labels`` every labelled box, and nothing else, becomes an object."""
    with zipfile.ZipFile(scenes) as archive:
        labelled = len(json.loads(archive.read("annotations.json"))["annotations"])
    result = run(env, "ingest", str(scenes), "--boxes", "labels", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["objects_added"] == labelled
    # dataset.json, near_duplicates.json, near_duplicate_objects.json
    assert document["counts"]["skipped"] == 3
    bad = run(env, "ingest", str(scenes), "--boxes", "all")
    assert bad.exit_code == 2 and "--boxes" in bad.output
