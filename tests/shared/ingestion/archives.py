"""Build test archives, including hostile ones (traversal names, links, devices, bombs)."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Special:
    """A tar member that is not a regular file: ``kind`` is a tarfile type constant."""

    name: str
    kind: bytes
    linkname: str = ""


Entry = tuple[str, bytes] | Special


def write_tar(path: Path, entries: Iterable[Entry], mode: str = "w") -> Path:
    """``mode``: "w" (plain), "w:gz", "w:bz2", "w:xz"."""
    with tarfile.open(path, mode) as archive:  # type: ignore[call-overload]
        for entry in entries:
            if isinstance(entry, Special):
                info = tarfile.TarInfo(entry.name)
                info.type = entry.kind
                info.linkname = entry.linkname
                if entry.kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                    info.devmajor, info.devminor = 1, 3
                archive.addfile(info)
            else:
                name, data = entry
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o4755 if name.endswith(".setuid") else 0o644
                archive.addfile(info, io.BytesIO(data))
    return path


def write_zip(
    path: Path,
    entries: Iterable[tuple[str, bytes]],
    *,
    symlinks: Iterable[tuple[str, str]] = (),
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in entries:
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
        for name, target in symlinks:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def tree_snapshot(root: Path, *, exclude: Path | None = None) -> set[str]:
    """Every path under ``root`` (links not followed), minus ``exclude`` and what is below it."""
    found: set[str] = set()
    for path in root.rglob("*"):
        if exclude is not None and (path == exclude or exclude in path.parents):
            continue
        found.add(str(path.relative_to(root)))
    return found
