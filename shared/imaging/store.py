"""Content-addressed store of original image files under the data directory."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def relative_path(sha256: str) -> str:
    """Where the file with this content hash lives, relative to the data directory."""
    return f"images/{sha256[:2]}/{sha256}"


def store_original(data_dir: Path, sha256: str, data: bytes) -> str:
    """Write ``data`` once (atomically) and return its path relative to ``data_dir``."""
    rel = relative_path(sha256)
    target = data_dir / rel
    if target.is_file() and target.stat().st_size == len(data):
        return rel
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return rel


def read_original(data_dir: Path, storage_path: str) -> bytes:
    return (data_dir / storage_path).read_bytes()
