"""`roisearch serve` on a port already in use: one line, exit status 1 (issue 19 item 8)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def test_a_port_in_use_is_one_line_and_exit_status_1(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROISEARCH_")}
        env["ROISEARCH_DATA_DIR"] = str(tmp_path / "data")
        done = subprocess.run(
            [sys.executable, "-m", "roisearch", "serve", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    # Every command first says which collection it uses (one `data: ...` line); then the error.
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("data: ")]
    assert len(lines) == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in lines[0]
    assert "--port" in lines[0]
