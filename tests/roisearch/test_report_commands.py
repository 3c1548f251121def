"""`roisearch report clusters` and `roisearch export` on a synthetic collection (SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from roisearch.cli import app
from shared.db.database import Database
from shared.settings import load_settings
from tests.factories import Collection, seed_clustered


@pytest.fixture
def env(tmp_path: Path, sqlite_url: str) -> dict[str, str]:
    return {
        "ROISEARCH_DATA_DIR": str(tmp_path / "data"),
        "ROISEARCH_DATABASE_URL": sqlite_url,
        "ROISEARCH_REDIS_URL": "",
        "COLUMNS": "200",
    }


@pytest.fixture
def collection(env: dict[str, str]) -> Collection:
    settings = load_settings(
        data_dir=Path(env["ROISEARCH_DATA_DIR"]), database_url=env["ROISEARCH_DATABASE_URL"]
    )
    database = Database.from_url(env["ROISEARCH_DATABASE_URL"])
    try:
        return seed_clustered(settings, database, images=20)
    finally:
        database.dispose()


def test_report_clusters_writes_the_page(
    tmp_path: Path, env: dict[str, str], collection: Collection
) -> None:
    out = tmp_path / "site" / "report.html"
    result = CliRunner().invoke(
        app, ["report", "clusters", "-k", "4", "-o", str(out), "-c", "cat", "-c", "zebra"], env=env
    )
    assert result.exit_code == 1 and "unknown_class" in result.output and "zebra" in result.output
    assert "this space has 4 classes: cat, dog, car, boat" in result.output
    assert not out.exists()
    result = CliRunner().invoke(
        app,
        ["report", "clusters", "-k", "4", "-o", str(out), "-c", "cat,dog", "-c", "car,boat"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert out.is_file() and "<svg" in out.read_text()
    assert "purity: 1.000" in result.output
    assert "near-duplicate objects: 3 groups" in result.output
    document = json.loads(
        CliRunner()
        .invoke(app, ["report", "clusters", "-k", "4", "-c", "cat,dog,car,boat", "--json"], env=env)
        .stdout
    )
    assert document["clusters"] == 4 and document["purity"] == 1.0
    assert len(document["largest_clusters"]) == 4
    assert set(document["largest_clusters"][0]) == {"id", "size", "cohesion", "classes"}


def test_report_clusters_refuses_bad_options(env: dict[str, str], collection: Collection) -> None:
    result = CliRunner().invoke(app, ["report", "clusters", "-k", "1"], env=env)
    assert result.exit_code == 2 and "k" in result.output
    result = CliRunner().invoke(app, ["report", "clusters", "-k", "900"], env=env)
    assert result.exit_code == 1 and "k_too_large" in result.output


def test_export_with_split(tmp_path: Path, env: dict[str, str], collection: Collection) -> None:
    out = tmp_path / "export"
    result = CliRunner().invoke(
        app, ["export", str(out), "--split", "0.8,0.1,0.1", "--seed", "4"], env=env
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(manifest["rows"].values()) == len(collection.object_ids)
    vectors = np.load(out / "train" / "vectors.npy")
    assert vectors.shape == (manifest["rows"]["train"], 32)
    assert f"exported train: {manifest['rows']['train']}" in result.stdout
    again = CliRunner().invoke(app, ["export", str(tmp_path / "again"), "--json"], env=env)
    assert json.loads(again.stdout) == {
        "out": str(tmp_path / "again"),
        "dim": 32,
        "rows": {"all": len(collection.object_ids)},
        "formats": ["npy", "csv", "parquet"],
    }
    result = CliRunner().invoke(app, ["export", str(out), "--part", "val"], env=env)
    assert result.exit_code == 1 and "--part needs --split" in result.output
    result = CliRunner().invoke(app, ["export", str(out), "-f", "xlsx"], env=env)
    assert result.exit_code == 2 and "xlsx" in result.output
