"""Tar sources (plain, gzip, bzip2, xz): streamed once, at planning time.

A compressed stream cannot seek, so a tar is read once while it is planned: each regular
member's bytes go to the content-addressed image store (see ``planning``), and workers read
them from there. Members that are not regular files, unsafe names and members over the limits
are refused as items; whole-archive limits stop the stream with a :class:`SourceError`.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from shared.ingestion.config import IngestionConfig
from shared.ingestion.sources import (
    Member,
    Refusal,
    SourceError,
    _ItemKeys,
    _Limits,
    _name_refusal,
    _read_capped,
    open_regular,
)


@dataclass(frozen=True)
class TarEntry:
    member: Member
    data: bytes | None  # None when refused


def iter_tar(path: Path, settings: IngestionConfig) -> Iterator[TarEntry]:
    """Stream a (compressed) tar once: regular members with their bytes, others refused.

    A stream cannot skip a member without decompressing it, so whole-archive limits
    (expansion ratio against the file size, total size) stop the stream with a SourceError
    instead of refusing member after member of a bomb.
    """
    limits = _Limits(settings)
    keys = _ItemKeys()
    streamed = 0
    try:
        raw = open_regular(path)
    except SourceError:
        raise
    except OSError as exc:
        raise SourceError("bad_archive", f"{path.name} cannot be opened: {exc.strerror}") from None
    packed = os.fstat(raw.fileno()).st_size
    try:
        with raw:
            plain = _decompressed(raw)
            with plain, tarfile.open(fileobj=plain, mode="r|") as archive:
                while (info := archive.next()) is not None:
                    # TarFile keeps every header it has read; a stream is read once, so drop
                    # them to keep memory bounded whatever the member count.
                    archive.members.clear()  # type: ignore[attr-defined]  # not in the stubs
                    if info.isdir():
                        continue
                    limits.count(path.name)
                    name = keys.key(info.name)
                    streamed += max(info.size, 0)
                    if streamed > 1024 * 1024 and streamed > limits.ratio * packed:
                        raise SourceError(
                            "compression_ratio",
                            f"{path.name} expands more than {limits.ratio:.0f}x its size at {name} "
                            "(ROISEARCH_MAX_COMPRESSION_RATIO) — possible archive bomb; the rest "
                            "of the archive is not read",
                        )
                    if streamed > limits.total_bytes:
                        raise SourceError(
                            "archive_too_large",
                            f"{path.name} expands beyond ROISEARCH_MAX_ARCHIVE_TOTAL_BYTES "
                            f"({limits.total_bytes:,}) at {name}; the rest of the archive is "
                            "not read",
                        )
                    if not info.isreg():
                        kind = (
                            "symlink"
                            if info.issym()
                            else "hard link"
                            if info.islnk()
                            else "device or fifo"
                            if (info.ischr() or info.isblk() or info.isfifo())
                            else "special entry"
                        )
                        yield TarEntry(
                            Member(name, None, Refusal("not_regular_file", f"{name} is a {kind}")),
                            None,
                        )
                        continue
                    refusal = _name_refusal(info.name, name) or limits.size_refusal(
                        name, info.size, None
                    )
                    if refusal:
                        yield TarEntry(Member(name, info.size, refusal), None)
                        continue
                    fh = archive.extractfile(info)
                    data = _read_capped(fh, settings.max_member_bytes) if fh else b""
                    yield TarEntry(Member(name, info.size), data)
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
        raise SourceError("bad_archive", f"{path.name} is not a readable tar: {exc}") from None


def _decompressed(raw: IO[bytes]) -> IO[bytes]:
    """The tar stream inside a gzip, bzip2 or xz file (by magic bytes), else ``raw``.

    Decompressing here rather than with tarfile's ``r|*``: its stream copies the rest of its
    decompressed buffer at every read of a header or member, so reading a compressed tar cost
    time in proportion to the buffer for each of its members (80 % of a tar.gz ingestion's
    CPU time, twice a folder's in all). The standard library's file objects buffer in C.
    """
    head = raw.read(6)
    raw.seek(0)
    if head.startswith(b"\x1f\x8b"):
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)
    return raw
