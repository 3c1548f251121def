"""Open zip archives kept per process, so a zip's central directory is parsed once per process.

Chunks of one ingestion run one after the other in the same worker (RQ ``SimpleWorker``, or the
embedded run), and each chunk reads a few dozen members. Opening the zip per chunk re-parses
the whole central directory every time: for N members that is N / chunk_size parses of N
entries, quadratic (75 s for 20k empty members). The cache keeps a few archives open, checked
against the file's identity (device, inode, size, mtime) on every use, so a replaced file is
never read through a stale directory.

Bounded: at most :data:`CAPACITY` archives, and an archive unused for :data:`IDLE_S` seconds
is closed at the next use of the cache (an open descriptor would keep a deleted upload's disk
space). :meth:`ZipCache.forget` closes one at once.
"""

from __future__ import annotations

import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CAPACITY = 2
IDLE_S = 60.0

Identity = tuple[int, int, int, int]
Opener = Callable[[Path], IO[bytes]]
KeyMap = Callable[[zipfile.ZipFile], Mapping[str, zipfile.ZipInfo]]


@dataclass
class _OpenZip:
    identity: Identity
    raw: IO[bytes]
    archive: zipfile.ZipFile
    # Item key -> entry, built once; ``open(name)`` would give the last entry of a repeated
    # name to every one of them.
    entries: Mapping[str, zipfile.ZipInfo]
    used_at: float

    def close(self) -> None:
        self.archive.close()
        self.raw.close()


class ZipCache:
    """A small LRU of open zips; one member is read at a time (a lock guards the archives)."""

    def __init__(self, capacity: int = CAPACITY, idle_s: float = IDLE_S) -> None:
        self.capacity = capacity
        self.idle_s = idle_s
        self._open: OrderedDict[Path, _OpenZip] = OrderedDict()
        self._lock = threading.Lock()

    def read(
        self,
        path: Path,
        key: str,
        opener: Opener,
        entries: KeyMap,
        reader: Callable[[IO[bytes]], bytes],
    ) -> bytes:
        """``reader`` applied to member ``key`` of the zip at ``path``.

        ``opener`` opens the file (refusing non-regular files); ``entries`` maps item keys to
        entries (the planner's mapping). KeyError: no such member.
        """
        with self._lock:
            zipped = self._get(path, opener, entries)
            with zipped.archive.open(zipped.entries[key]) as fh:
                return reader(fh)

    def forget(self, path: Path) -> None:
        """Close the archive at ``path`` if it is open (its ingestion is over)."""
        with self._lock:
            zipped = self._open.pop(path, None)
            if zipped is not None:
                zipped.close()

    def clear(self) -> None:
        with self._lock:
            while self._open:
                self._open.popitem(last=False)[1].close()

    def __len__(self) -> int:
        return len(self._open)

    def _get(
        self,
        path: Path,
        opener: Opener,
        entries: KeyMap,
    ) -> _OpenZip:
        now = time.monotonic()
        for stale in [p for p, z in self._open.items() if now - z.used_at > self.idle_s]:
            self._open.pop(stale).close()
        st = path.stat()
        identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        zipped = self._open.get(path)
        if zipped is not None and zipped.identity != identity:
            self._open.pop(path).close()
            zipped = None
        if zipped is None:
            raw = opener(path)
            try:
                archive = zipfile.ZipFile(raw)
                zipped = _OpenZip(identity, raw, archive, entries(archive), now)
            except BaseException:
                raw.close()
                raise
            self._open[path] = zipped
            while len(self._open) > self.capacity:
                self._open.popitem(last=False)[1].close()
        self._open.move_to_end(path)
        zipped.used_at = now
        return zipped


# One per process: chunks of the same ingestion, run one after another, share it.
ZIP_CACHE = ZipCache()
