"""The CLI's one map from coded errors to a line on stderr and exit status 1."""

from __future__ import annotations

import pytest

import roisearch.cli
from roisearch.errors import report
from roisearch.exit_codes import FAILURE
from shared.errors import NotFound, Unavailable


def test_a_coded_error_is_one_line_with_its_code(capsys: pytest.CaptureFixture[str]) -> None:
    status = report(NotFound("object_not_found", "object 7 does not exist [sic]", {"id": 7}))
    captured = capsys.readouterr()
    assert status == FAILURE == 1 and captured.out == ""
    # Brackets are text, not console markup.
    assert captured.err == "error: object 7 does not exist [sic] (object_not_found)\n"


def test_main_ends_any_command_s_coded_error_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def command() -> None:
        raise Unavailable("api_unreachable", "cannot reach the API at http://x:1")

    monkeypatch.setattr(roisearch.cli, "app", command)
    with pytest.raises(SystemExit) as info:
        roisearch.cli.main()
    assert info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["error: cannot reach the API at http://x:1 (api_unreachable)"]
