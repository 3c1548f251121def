"""``roisearch ingest`` of a FIFO or a device (issue 19.1): one line, exit 1, at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_ingest_of_a_non_regular_file_exits_1_with_one_line(tmp_path: Path, special: str) -> None:
    source = Path(special)
    if special == "fifo":
        source = tmp_path / "p.jpg"
        os.mkfifo(source)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ROISEARCH_")}
    env["ROISEARCH_DATA_DIR"] = str(tmp_path / "data")
    env["COLUMNS"] = "200"  # one line, not one wrapped by the terminal width
    # Hung for ever on a FIFO; grew to 24 GB on /dev/zero. The timeout fails the test instead.
    done = subprocess.run(
        [sys.executable, "-m", "roisearch", "ingest", str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert "not a regular file" in output
    # What every ingest says first (the collection and the model in use), then the one line.
    preamble = ("data: ", "model: ", "Demo model: ")
    said = [line for line in output.splitlines() if line and not line.startswith(preamble)]
    assert len(said) == 1, output
