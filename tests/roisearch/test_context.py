"""Every command says which collection it uses (data dir and database, on stderr), works on a
fresh data directory, and refuses a PostgreSQL schema behind head in one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roisearch.cli import app
from roisearch.context import storage_line
from shared.db import migrations
from shared.settings import load_settings


def _env(**values: str) -> dict[str, str]:
    return {"COLUMNS": "200", **values}


def test_a_command_on_a_fresh_data_dir_works_and_says_where(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    result = CliRunner().invoke(
        app, ["index", "status"], env=_env(ROISEARCH_DATA_DIR=str(data), ROISEARCH_DATABASE_URL="")
    )
    assert result.exit_code == 0, result.output
    line = f"data: {data} · database: sqlite:///{data / 'roisearch.db'}"
    assert line in result.stderr.splitlines()
    assert line not in result.stdout  # stdout stays for the command's own output


def test_the_default_data_dir_is_per_user_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROISEARCH_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings()
    assert settings.data_dir == tmp_path / "xdg" / "roisearch"
    monkeypatch.chdir(tmp_path)
    assert load_settings().data_dir == settings.data_dir  # the same collection from any folder


def test_the_storage_line_hides_the_database_password(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, database_url="postgresql+psycopg://archive:s3cret@db:5432/roisearch"
    )
    line = storage_line(settings)
    assert "s3cret" not in line
    assert (
        line == f"data: {tmp_path} · database: postgresql+psycopg://archive:***@db:5432/roisearch"
    )


def test_postgresql_behind_head_is_one_line_naming_the_upgrade(
    tmp_path: Path, empty_pg_url: str
) -> None:
    migrations.upgrade(empty_pg_url, "0002")
    env = _env(ROISEARCH_DATA_DIR=str(tmp_path), ROISEARCH_DATABASE_URL=empty_pg_url)
    for command in (["index", "status"], ["ingestions", "list"]):
        result = CliRunner().invoke(app, command, env=env)
        assert result.exit_code == 1, (command, result.output)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "roisearch db upgrade" in errors[0], result.stderr
        assert "Traceback" not in result.output
    assert os.path.exists(tmp_path) and not list(tmp_path.iterdir())  # nothing written
