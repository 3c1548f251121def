"""Ingestion sources: folders, zip and tar archives, single files — streamed, never extracted.

Every entry of a source becomes a :class:`Member`. Members we refuse on purpose carry a
``refusal`` (stable code + message) so that they are recorded as failed items instead of being
dropped silently: unsafe names (``..``, absolute paths), links and devices, nested archives,
members over the size or compression-ratio limits. Member names are only ever used as labels:
nothing is written to disk under an archive-controlled name.

Zip and tar both allow two members with the same name. Each one is a member of its own: the
first keeps its name as its key, a repeat gets ``"<name> (#2)"`` and so on (see
:class:`_ItemKeys`), so every member becomes its own item and its messages name it.

Random access: folders and zip files are read per member by the worker that processes a chunk.
Compressed tar streams cannot seek, so tar members are staged once at planning time into the
content-addressed image store (see :mod:`shared.ingestion.tar_stream`), and workers read them
from there.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

import numpy as np

from shared.errors import InvalidInput
from shared.ingestion.config import IngestionConfig
from shared.ingestion.zip_cache import ZIP_CACHE

_READ_BLOCK = 1 << 20
NESTED_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".tar.gz", ".gz", ".bz2", ".xz", ".7z", ".rar")
TAR_SUFFIXES = (".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz")


class SourceError(InvalidInput):
    """The source as a whole cannot be read (the ingestion fails with this code/message)."""


class MemberError(InvalidInput):
    """One member cannot be read; its item fails with this code/message."""


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str


@dataclass(frozen=True)
class Member:
    name: str
    size: int | None
    refusal: Refusal | None = None


def source_kind(path: Path) -> str:
    """folder | zip | tar | file, decided by what the path is (content for archives).

    The path is ``stat``ed first: anything but a directory or a regular file (a FIFO, a
    device, a socket) is refused with ``not_regular_file`` without being opened — reading a
    FIFO blocks until a writer comes, ``/dev/zero`` never ends.
    """
    lower = path.name.lower()
    try:
        st = path.stat()
    except (OSError, ValueError):
        # By name: planning then fails it with source_not_found (the ingestion is recorded).
        if lower.endswith(".zip"):
            return "zip"
        return "tar" if lower.endswith(TAR_SUFFIXES) else "file"
    if stat.S_ISDIR(st.st_mode):
        return "folder"
    _require_regular(st.st_mode, path.name)
    if lower.endswith(".zip"):
        # A broken .zip must fail as an unreadable archive, not be read as one image file.
        return "zip"
    try:
        with open_regular(path) as fh:
            if zipfile.is_zipfile(fh):
                return "zip"
            fh.seek(0)
            if lower.endswith(TAR_SUFFIXES) or _is_tar(fh):
                return "tar"
    except OSError:  # unreadable (permissions): planning or reading reports it
        pass
    return "file"


def _require_regular(mode: int, label: str) -> None:
    if not stat.S_ISREG(mode):
        raise SourceError(
            "not_regular_file",
            f"{label} is not a regular file or a folder (a FIFO, device or socket)",
        )


def open_regular(path: Path) -> IO[bytes]:
    """Open ``path`` for reading, refusing anything but a regular file without blocking.

    ``O_NONBLOCK`` makes opening a FIFO return at once (a regular file ignores the flag), and
    the check is on the opened descriptor, so a file swapped for a FIFO or a device after an
    earlier ``stat`` is refused too.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        _require_regular(os.fstat(fd).st_mode, path.name)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _is_tar(fh: IO[bytes]) -> bool:
    try:
        return tarfile.is_tarfile(fh)
    except (OSError, tarfile.TarError, EOFError, zlib.error):
        return False


def check_inside_roots(path: Path, roots: list[Path]) -> Path:
    """Resolve ``path`` (following every symlink) and require it inside one import root.

    Containment is checked component-wise on real paths, so ``..``, symlinks and sibling
    folders with a common prefix (``/data/in`` vs ``/data/in-other``) cannot escape.
    """
    if not roots:
        raise SourceError(
            "path_not_allowed",
            "server-side paths are disabled: set ROISEARCH_IMPORT_ROOTS to allow folders",
        )
    if "\x00" in str(path):
        # the OS cannot name such a file; resolve() would raise ValueError, not OSError
        raise SourceError("invalid_path", "the path contains a NUL character")
    # Containment first, existence second: a path outside the roots is refused the same way
    # whether it exists or not, so the answer tells nothing about the rest of the server.
    # Non-strict resolution follows every symlink that exists and keeps the missing rest.
    try:
        candidate = path.resolve(strict=False)
    except (OSError, RuntimeError):  # a symlink loop: where it points is unknowable
        candidate = None
    if candidate is None or not _inside(candidate, roots):
        raise SourceError("path_not_allowed", f"{path} is outside the configured import roots")
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise SourceError("source_not_found", f"{path} does not exist") from None
    if not _inside(real, roots):  # changed between the two resolutions (a symlink swapped)
        raise SourceError("path_not_allowed", f"{path} is outside the configured import roots")
    return real


def _inside(real: Path, roots: list[Path]) -> bool:
    for root in roots:
        try:
            real_root = root.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if real.is_relative_to(real_root):
            return True
    return False


def _unsafe_name(name: str) -> bool:
    pure = PurePosixPath(name.replace("\\", "/"))
    return (
        pure.is_absolute()
        or ".." in pure.parts
        or (len(name) > 1 and name[1] == ":")  # Windows drive letter
        or "\x00" in name
    )


def _name_refusal(name: str, key: str | None = None) -> Refusal | None:
    """Refusal by ``name``; the message names the item ``key`` (the name unless repeated)."""
    label = name if key is None else key
    if _unsafe_name(name):
        return Refusal("unsafe_member_name", f"{label!r} is an absolute or parent-relative path")
    if name.lower().endswith(NESTED_ARCHIVE_SUFFIXES):
        return Refusal(
            "nested_archive", f"{label} is an archive inside the archive; ingest it on its own"
        )
    return None


class _ItemKeys:
    """Unique item keys for a source's members, assigned in enumeration order.

    The key is the member name; a repeated name becomes ``"<name> (#k)"`` with the next free
    ``k``. Deterministic, so planning the same archive again (idempotent re-planning) and the
    zip reader agree on which entry a key means.
    """

    def __init__(self) -> None:
        self._seen = _DigestSet()
        # Next suffix to try per repeated name: a bomb of one name repeated a million times
        # must not rescan suffixes 2..k for every repeat.
        self._next: dict[int, int] = {}

    def key(self, name: str) -> str:
        digest = _digest(name)
        if digest not in self._seen:
            self._seen.add(digest)
            return name
        k = self._next.get(digest, 2)
        while True:
            key = f"{name} (#{k})"
            k += 1
            key_digest = _digest(key)
            if key_digest not in self._seen:  # a real member may already bear that name
                break
        self._next[digest] = k
        self._seen.add(key_digest)
        return key


def _digest(name: str) -> int:
    # 64 bits: a collision among a million names has odds of about 1e-8, and would only give
    # a member a needless "(#2)", never lose one.
    data = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(data, "little")


class _DigestSet:
    """A set of 64-bit digests at about 8 bytes each (a Python set costs ~100 per entry).

    Tar streaming keeps memory flat whatever the member count; remembering every name seen
    must not undo that. Recent digests sit in a small set, merged now and then into one
    sorted array that is searched by bisection.
    """

    MERGE_AT = 1 << 15

    def __init__(self) -> None:
        self._recent: set[int] = set()
        self._sorted = np.empty(0, dtype=np.uint64)

    def __contains__(self, digest: int) -> bool:
        if digest in self._recent:
            return True
        value = np.uint64(digest)
        i = int(np.searchsorted(self._sorted, value))
        return i < len(self._sorted) and self._sorted[i] == value

    def add(self, digest: int) -> None:
        """Add a digest not in the set yet (callers check first)."""
        self._recent.add(digest)
        if len(self._recent) >= self.MERGE_AT:
            recent = np.sort(np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent)))
            # Disjoint sorted runs: one insert keeps the array sorted, with one copy at a time
            # (union1d would sort the concatenation, several copies).
            at = np.searchsorted(self._sorted, recent)
            self._sorted = np.insert(self._sorted, at, recent)
            self._recent.clear()


class _Limits:
    def __init__(self, settings: IngestionConfig, packed_bytes: int | None = None) -> None:
        self.member_bytes = settings.max_member_bytes
        self.total_bytes = settings.max_archive_total_bytes
        self.members = settings.max_archive_members
        self.ratio = settings.max_compression_ratio
        # Size of the archive on disk: the whole-archive ratio catches bombs made of many
        # members each small enough to pass the per-member check (and tar.gz, whose members
        # have no compressed size of their own).
        self.packed_bytes = packed_bytes
        self.seen = 0
        self.total = 0

    def count(self, source: str) -> None:
        self.seen += 1
        if self.seen > self.members:
            raise SourceError(
                "too_many_members",
                f"{source} has more than {self.members:,} members (ROISEARCH_MAX_ARCHIVE_MEMBERS)",
            )

    def size_refusal(self, name: str, size: int, packed: int | None) -> Refusal | None:
        if size > self.member_bytes:
            return Refusal(
                "member_too_large",
                f"{name} is {size:,} bytes, over ROISEARCH_MAX_MEMBER_BYTES "
                f"({self.member_bytes:,})",
            )
        if packed is not None and size > 1024 * 1024 and size > self.ratio * max(packed, 1):
            return Refusal(
                "compression_ratio",
                f"{name} expands {size / max(packed, 1):.0f}x, over "
                f"ROISEARCH_MAX_COMPRESSION_RATIO ({self.ratio:.0f}) — possible zip bomb",
            )
        self.total += size
        if self.total > self.total_bytes:
            return Refusal(
                "archive_too_large",
                f"the archive expands beyond ROISEARCH_MAX_ARCHIVE_TOTAL_BYTES "
                f"({self.total_bytes:,}); {name} and later members are skipped",
            )
        packed = self.packed_bytes
        if packed is not None and self.total > 1024 * 1024 and self.total > self.ratio * packed:
            return Refusal(
                "compression_ratio",
                f"the archive expands {self.total / max(packed, 1):.0f}x, over "
                f"ROISEARCH_MAX_COMPRESSION_RATIO ({self.ratio:.0f}) — possible zip bomb; "
                f"{name} and later members are skipped",
            )
        return None


def list_members(path: Path, kind: str, settings: IngestionConfig) -> Iterator[Member]:
    """Enumerate the members of a folder, zip or single file (tar: see ``tar_stream``)."""
    limits = _Limits(settings)
    if kind == "file":
        limits.count(str(path))
        st = path.stat()
        _require_regular(st.st_mode, path.name)
        size = st.st_size
        yield Member(path.name, size, limits.size_refusal(path.name, size, None))
    elif kind == "folder":
        yield from _folder_members(path, limits)
    elif kind == "zip":
        limits.packed_bytes = path.stat().st_size
        yield from _zip_members(path, limits)
    else:
        raise ValueError(f"list_members does not handle {kind!r} sources")


def _folder_members(root: Path, limits: _Limits) -> Iterator[Member]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        for fname in sorted(filenames) + sorted(d for d in dirnames if (base / d).is_symlink()):
            full = base / fname
            name = full.relative_to(root).as_posix()
            limits.count(str(root))
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                yield Member(name, None, Refusal("not_regular_file", f"{name} is a symlink"))
            elif not stat.S_ISREG(st.st_mode):
                yield Member(name, None, Refusal("not_regular_file", f"{name} is not a file"))
            else:
                refusal = _name_refusal(name) or limits.size_refusal(name, st.st_size, None)
                yield Member(name, st.st_size, refusal)


def _zip_declared_entries(path: Path) -> int | None:
    """Entry count from the end-of-central-directory record (zip64 aware), or None.

    ``ZipFile`` parses the whole central directory into memory when opened, so a
    member-count bomb must be refused from this record first.
    """
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        start = max(0, size - (22 + 65535))
        fh.seek(start)
        tail = fh.read()
        pos = tail.rfind(b"PK\x05\x06")
        if pos < 0 or len(tail) - pos < 22:
            return None
        total: int = struct.unpack_from("<H", tail, pos + 10)[0]
        locator = pos - 20
        if total == 0xFFFF and locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
            (record_offset,) = struct.unpack_from("<Q", tail, locator + 8)
            fh.seek(record_offset)
            record = fh.read(56)
            if len(record) == 56 and record[:4] == b"PK\x06\x06":
                total = struct.unpack_from("<Q", record, 32)[0]
    return total


def _zip_entries(archive: zipfile.ZipFile) -> Iterator[tuple[str, zipfile.ZipInfo]]:
    """``(item key, entry)`` for every non-directory entry, in archive order.

    The one place that maps keys to entries, for planning and reading alike.
    """
    keys = _ItemKeys()
    for info in archive.infolist():
        if not info.is_dir():
            yield keys.key(info.filename), info


def _zip_members(path: Path, limits: _Limits) -> Iterator[Member]:
    declared = _zip_declared_entries(path)
    if declared is not None and declared > limits.members:
        raise SourceError(
            "too_many_members",
            f"{path.name} declares {declared:,} members, more than {limits.members:,} "
            "(ROISEARCH_MAX_ARCHIVE_MEMBERS)",
        )
    with open_regular(path) as raw:
        try:
            archive = zipfile.ZipFile(raw)
        except (zipfile.BadZipFile, OSError) as exc:
            raise SourceError("bad_archive", f"{path.name} is not a readable zip: {exc}") from None
        with archive:
            for key, info in _zip_entries(archive):
                limits.count(path.name)
                mode = (info.external_attr >> 16) & 0o170000
                if mode and not stat.S_ISREG(mode):
                    yield Member(key, None, Refusal("not_regular_file", f"{key} is a link/device"))
                    continue
                refusal = _name_refusal(info.filename, key) or limits.size_refusal(
                    key, info.file_size, info.compress_size
                )
                yield Member(key, info.file_size, refusal)


class MemberReader:
    """Reads members of one folder, zip or single-file source, one after the other.

    A zip's central directory is parsed once per process, not once per chunk (see
    :mod:`shared.ingestion.zip_cache`). Use as a context manager; not thread-safe.
    """

    def __init__(self, path: Path, kind: str, settings: IngestionConfig) -> None:
        if kind not in ("file", "folder", "zip"):
            raise ValueError(f"MemberReader does not handle {kind!r} sources")
        self.path = path
        self.kind = kind
        self.cap = settings.max_member_bytes

    def __enter__(self) -> MemberReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release: open zips belong to the process cache."""

    def read(self, name: str) -> bytes:
        """One member's bytes (bounded by the member limit, whatever headers claim)."""
        cap = self.cap
        try:
            if self.kind == "file":
                return _read_bounded_file(self.path, cap, name)
            if self.kind == "folder":
                return _read_bounded_file(self.path / name, cap, name)
            data = ZIP_CACHE.read(
                self.path, name, open_regular, _zip_key_map, lambda fh: _read_capped(fh, cap)
            )
        except (MemberError, SourceError) as exc:
            raise MemberError(exc.code, exc.message) from None
        except (
            OSError,
            KeyError,
            ValueError,
            zipfile.BadZipFile,
            RuntimeError,  # encrypted member
            NotImplementedError,  # unsupported compression method
            EOFError,
            zlib.error,  # corrupt deflate stream
        ) as exc:
            raise MemberError("read_failed", f"{name} could not be read: {exc}") from None
        if len(data) > cap:
            raise MemberError("member_too_large", f"{name} is larger than {cap:,} bytes")
        return data


def _zip_key_map(archive: zipfile.ZipFile) -> Mapping[str, zipfile.ZipInfo]:
    """Item key -> entry. The archive's own name map when no name repeats (keys are names
    then; no second map of a million entries), else the planner's keys (:func:`_zip_entries`)."""
    if len(archive.NameToInfo) == len(archive.infolist()):
        return archive.NameToInfo
    return dict(_zip_entries(archive))


def read_member(path: Path, kind: str, name: str, settings: IngestionConfig) -> bytes:
    """Read one member's bytes (see :class:`MemberReader` to read many)."""
    with MemberReader(path, kind, settings) as reader:
        return reader.read(name)


def _read_bounded_file(full: Path, cap: int, name: str) -> bytes:
    # O_NOFOLLOW: a file swapped for a symlink after planning is still refused; O_NONBLOCK
    # and the fstat check: one swapped for a FIFO or a device too, without blocking.
    fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise MemberError("not_regular_file", f"{name} is not a regular file")
        os.set_blocking(fd, True)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        data = _read_capped(fh, cap)
    if len(data) > cap:
        raise MemberError("member_too_large", f"{name} is larger than {cap:,} bytes")
    return data


def _read_capped(fh: IO[bytes], cap: int) -> bytes:
    """Read to the end, but never more than ``cap + 1`` bytes (the caller checks ``> cap``).

    In blocks: ``BufferedReader.read(n)`` allocates ``n`` bytes up front, so a plain
    ``read(cap + 1)`` costs a 256 MiB allocation per member, however small the member.
    """
    blocks: list[bytes] = []
    total = 0
    while total <= cap:
        block = fh.read(min(_READ_BLOCK, cap + 1 - total))
        if not block:
            break
        blocks.append(block)
        total += len(block)
    return b"".join(blocks)
