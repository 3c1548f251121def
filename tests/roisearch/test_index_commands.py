"""`roisearch index rebuild|status|check` against a real database."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from roisearch.cli import app
from shared.db.database import Database
from shared.settings import Settings
from tests.factories import clustered, insert_objects, make_space


def env_of(settings: Settings) -> dict[str, str]:
    return {
        "ROISEARCH_DATA_DIR": str(settings.data_dir),
        "ROISEARCH_DATABASE_URL": settings.resolved_database_url,
        "COLUMNS": "200",
    }


def test_rebuild_status_check(settings: Settings, database: Database) -> None:
    space = make_space(database, 8)
    insert_objects(database, space, clustered(25, 8))
    runner = CliRunner()
    env = env_of(settings)

    before = runner.invoke(app, ["index", "status"], env=env)
    assert before.exit_code == 0, before.output
    assert "no snapshot" in before.output

    built = runner.invoke(app, ["index", "rebuild", "--space", str(space)], env=env)
    assert built.exit_code == 0, built.output
    assert f"space {space}: 25 objects, Flat" in built.output
    assert "reading the database" in built.output and "25/25" in built.output  # the bar

    after = runner.invoke(app, ["index", "status"], env=env)
    assert after.exit_code == 0, after.output
    assert "Flat" in after.output and "25" in after.output
    document = json.loads(runner.invoke(app, ["index", "status", "--json"], env=env).stdout)
    (row,) = document["spaces"]
    assert row["space_id"] == space and row["type"] == "Flat"
    assert row["in_snapshot"] == row["in_database"] == 25 and row["problem"] is None

    insert_objects(database, space, clustered(3, 8, seed=1))
    checked = runner.invoke(app, ["index", "check"], env=env)
    assert checked.exit_code == 0, checked.output
    assert f"space {space}: ok — index 28, database 28" in checked.output
    verdict = json.loads(runner.invoke(app, ["index", "check", "--json"], env=env).stdout)
    assert verdict["spaces"][0]["ok"] is True and verdict["spaces"][0]["count_db"] == 28

    missing = runner.invoke(app, ["index", "check", "--space", "999"], env=env)
    assert missing.exit_code == 2 and "does not exist" in missing.output
