"""Index snapshots: one file per space, written atomically, verified on load.

File ``<index_dir>/space-<id>.snapshot``::

    b"ROISNAP1" | section ... | footer (JSON) | footer length (u64 LE) | footer CRC32 (u32 LE)
              | b"ROISEND1"

Sections are raw little-endian arrays (the per-object metadata and the cursor's open ids) and
FAISS indexes streamed with ``faiss.write_index``; the footer lists the format version and each
section's offset, size, CRC32, dtype and shape, plus the plan (factory, tuned parameters), the
space's key and dimension, and the database point the snapshot covers (the cursor). Writing goes
to a temporary file in the same directory, which is flushed, fsynced and renamed over the
previous snapshot (then the directory is fsynced): a crash at any moment leaves either the old
or the new snapshot, never a torn one. The compressed tier's vector file
(:mod:`shared.index.vector_store`) is not copied: it is fsynced before the snapshot is
written (every vector the snapshot indexes is then on disk), named in the footer, and must
cover the snapshot's ids when loaded. Any mismatch on load (another format version included)
raises :class:`SnapshotError` with the reason.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import time
import uuid
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import faiss
import numpy as np

from shared.index.cursor import Cursor
from shared.index.metadata import ObjectTable
from shared.index.policy import IndexPlan
from shared.index.space_index import SpaceIndex
from shared.index.vector_store import VectorStore

log = logging.getLogger(__name__)

MAGIC = b"ROISNAP1"
END = b"ROISEND1"
# Bumped whenever the sections change; any other version is refused (the space is then rebuilt
# from the database). 2: the metadata holds the box (table.x1, y1, x2, y2).
FORMAT_VERSION = 2
_TRAILER = struct.Struct("<QI")
SUFFIX = ".snapshot"
READ_CHUNK = 16 * 1024 * 1024


class SnapshotError(Exception):
    """A snapshot is missing, unreadable, corrupt or belongs to something else."""


def snapshot_path(index_dir: Path, space_id: int) -> Path:
    return index_dir / f"space-{space_id}{SUFFIX}"


class _SectionWriter:
    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.offset = 0
        self.sections: list[dict[str, Any]] = []

    def raw(self, data: bytes | memoryview) -> None:
        self.file.write(data)
        self.offset += memoryview(data).nbytes

    def array(self, name: str, array: np.ndarray) -> None:
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        view = data.view(np.uint8).reshape(-1).data
        self.sections.append(
            {
                "name": name,
                "type": "array",
                "offset": self.offset,
                "nbytes": view.nbytes,
                "crc32": zlib.crc32(view),
                "dtype": data.dtype.str,
                "shape": list(data.shape),
            }
        )
        self.raw(view)

    def index(self, name: str, index: faiss.Index) -> None:
        start = self.offset
        crc = 0

        def sink(chunk: bytes) -> int:
            nonlocal crc
            crc = zlib.crc32(chunk, crc)
            self.raw(chunk)
            return len(chunk)

        writer = faiss.PyCallbackIOWriter(sink)  # type: ignore[attr-defined]
        faiss.write_index(index, writer)
        del writer  # flushes the writer's buffer into ``sink``
        self.sections.append(
            {
                "name": name,
                "type": "faiss",
                "offset": start,
                "nbytes": self.offset - start,
                "crc32": crc,
            }
        )


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_snapshot(index_dir: Path, space: SpaceIndex) -> Path:
    """Write ``space`` atomically; the caller holds ``space.lock.read()`` (no mutation).

    Returns the snapshot's path; records the time and covered cursor on ``space``.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    final = snapshot_path(index_dir, space.space_id)
    tmp = index_dir / f".{final.name}.{uuid.uuid4().hex}.tmp"
    cursor = space.cursor.copy()
    base, columns = space.table.used()
    written_at = time.time()
    if space.store is not None:
        space.store.flush()
    try:
        with tmp.open("wb") as file:
            out = _SectionWriter(file)
            out.raw(MAGIC)
            for name, column in columns.items():
                out.array(f"table.{name}", column)
            out.array("cursor.above", np.asarray(sorted(cursor.above), np.int64))
            out.array("cursor.tomb_above", np.asarray(sorted(cursor.tomb_above), np.int64))
            out.index("index.main", space.index)
            if space.overflow is not None:
                out.index("index.overflow", space.overflow)
            footer = json.dumps(
                {
                    "format": FORMAT_VERSION,
                    "space_id": space.space_id,
                    "space_key": space.space_key,
                    "dim": space.dim,
                    "plan": space.plan.to_json(),
                    "count": space.live_count,
                    "table_base": base,
                    "cursor": {"low": cursor.low, "tomb_low": cursor.tomb_low},
                    "rejected": {str(k): v for k, v in list(space.rejected.items())[:1000]},
                    "written_at": written_at,
                    "vector_file": space.store.path.name if space.store is not None else None,
                    "sections": out.sections,
                },
                sort_keys=True,
            ).encode()
            out.raw(footer)
            out.raw(_TRAILER.pack(len(footer), zlib.crc32(footer)))
            out.raw(END)
            file.flush()
            os.fsync(file.fileno())
        tmp.replace(final)
        _fsync_dir(index_dir)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    space.last_snapshot_at = written_at
    space.snapshot_cursor = cursor
    return final


def remove_stale_temporaries(index_dir: Path) -> None:
    """Delete temporary files left by a writer that was killed mid-write."""
    if index_dir.is_dir():
        for leftover in index_dir.glob(f".space-*{SUFFIX}.*.tmp"):
            leftover.unlink(missing_ok=True)


def _footer(file: BinaryIO, size: int) -> dict[str, Any]:
    tail = _TRAILER.size + len(END)
    file.seek(0)
    if size < len(MAGIC) + tail or file.read(len(MAGIC)) != MAGIC:
        raise SnapshotError("not a roisearch snapshot (bad header)")
    file.seek(size - tail)
    trailer = file.read(tail)
    if trailer[-len(END) :] != END:
        raise SnapshotError("truncated (no end marker)")
    length, crc = _TRAILER.unpack(trailer[: _TRAILER.size])
    start = size - tail - length
    if start < len(MAGIC):
        raise SnapshotError("truncated (footer length out of range)")
    file.seek(start)
    raw = file.read(length)
    if zlib.crc32(raw) != crc:
        raise SnapshotError("footer checksum mismatch")
    footer: dict[str, Any] = json.loads(raw)
    if footer.get("format") != FORMAT_VERSION:
        raise SnapshotError(
            f"snapshot format {footer.get('format')!r}, this version reads format {FORMAT_VERSION}"
        )
    for section in footer["sections"]:
        if int(section["offset"]) + int(section["nbytes"]) > start:
            raise SnapshotError(f"section {section['name']} runs past the footer")
    return footer


def _open(path: Path) -> tuple[BinaryIO, int]:
    file = path.open("rb")
    return file, os.fstat(file.fileno()).st_size


def read_footer(path: Path) -> dict[str, Any]:
    """The snapshot's description (plan, cursor, count, time) without loading the index."""
    try:
        file, size = _open(path)
        with file:
            return _footer(file, size)
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"unreadable: {exc}") from None


def read_snapshot(path: Path, *, space_id: int, space_key: str, dim: int) -> SpaceIndex:
    """Load and verify a snapshot of the given space (``SnapshotError`` on any problem)."""
    if not path.is_file():
        raise SnapshotError("no snapshot file")
    try:
        file, size = _open(path)
        with file:
            return _load(
                file, size, space_id=space_id, space_key=space_key, dim=dim, directory=path.parent
            )
    except SnapshotError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise SnapshotError(f"unreadable: {type(exc).__name__}: {exc}") from None


def _crc_of(file: BinaryIO, offset: int, nbytes: int) -> int:
    file.seek(offset)
    crc, left = 0, nbytes
    while left:
        chunk = file.read(min(left, READ_CHUNK))
        if not chunk:
            raise SnapshotError("truncated (section shorter than recorded)")
        crc = zlib.crc32(chunk, crc)
        left -= len(chunk)
    return crc


def _vector_file(
    footer: dict[str, Any], directory: Path, table: ObjectTable, dim: int
) -> VectorStore:
    """The compressed tier's vector file, checked to hold a row for every indexed id."""
    name = footer.get("vector_file")
    if not name or Path(name).name != name:
        raise SnapshotError("a compressed index without its vector file name")
    path = directory / name
    if not path.is_file():
        raise SnapshotError(f"vector file {name} is missing")
    store = VectorStore(path, dim)
    physical = table.ids_where(table.columns["physical"])
    if physical.size and store.rows <= int(physical[-1]):
        store.close()
        raise SnapshotError(f"vector file {name} is shorter than the indexed ids")
    return store


def _load(
    file: BinaryIO, size: int, *, space_id: int, space_key: str, dim: int, directory: Path
) -> SpaceIndex:
    footer = _footer(file, size)
    if footer["space_id"] != space_id or footer["space_key"] != space_key:
        raise SnapshotError(
            f"written for space {footer['space_id']} ({footer['space_key'][:12]}…), "
            f"not this space {space_id} ({space_key[:12]}…)"
        )
    if footer["dim"] != dim:
        raise SnapshotError(f"dimension {footer['dim']} differs from the space's {dim}")
    arrays: dict[str, np.ndarray] = {}
    indexes: dict[str, faiss.Index] = {}
    for section in footer["sections"]:
        offset, nbytes = int(section["offset"]), int(section["nbytes"])
        # Verified before use: FAISS would crash or misread on damaged bytes.
        if _crc_of(file, offset, nbytes) != int(section["crc32"]):
            raise SnapshotError(f"section {section['name']} checksum mismatch")
        file.seek(offset)
        if section["type"] == "array":
            data = bytearray(file.read(nbytes))
            array = np.frombuffer(data, dtype=np.dtype(section["dtype"]))
            arrays[section["name"]] = array.reshape(section["shape"])
        else:
            reader = faiss.PyCallbackIOReader(file.read)  # type: ignore[attr-defined]
            indexes[section["name"]] = faiss.read_index(reader)
            del reader
    if "index.main" not in indexes:
        raise SnapshotError("no main index section")
    table = ObjectTable.from_columns(
        int(footer["table_base"]),
        {k.removeprefix("table."): v for k, v in arrays.items() if k.startswith("table.")},
    )
    cursor = Cursor(
        low=int(footer["cursor"]["low"]),
        above={int(i) for i in arrays["cursor.above"]},
        tomb_low=int(footer["cursor"]["tomb_low"]),
        tomb_above={int(i) for i in arrays["cursor.tomb_above"]},
    )
    main = indexes["index.main"]
    if main.d != dim:
        raise SnapshotError(f"index dimension {main.d} differs from the space's {dim}")
    plan = IndexPlan.from_json(footer["plan"])
    store = _vector_file(footer, directory, table, dim) if plan.kind == "ivfpq" else None
    space = SpaceIndex(
        space_id=space_id,
        space_key=space_key,
        dim=dim,
        plan=plan,
        index=main,
        table=table,
        cursor=cursor,
        overflow=indexes.get("index.overflow"),
        rejected={int(k): str(v) for k, v in footer.get("rejected", {}).items()},
        store=store,
    )
    physical = int(np.count_nonzero(table.columns["physical"]))
    if main.ntotal != physical:
        raise SnapshotError(f"index holds {main.ntotal} vectors but the metadata says {physical}")
    space.last_snapshot_at = float(footer["written_at"])
    space.snapshot_cursor = cursor.copy()
    return space
