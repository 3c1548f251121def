"""Archive reading is linear in the member count (issue 19.2): a zip's central directory is
parsed once per process, not once per chunk (the cache stays bounded and never reads a replaced
file); a compressed tar is decompressed once, not re-copied at every member."""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.ingestion.sources import MemberReader, list_members, open_regular
from shared.ingestion.tar_stream import iter_tar
from shared.ingestion.zip_cache import ZIP_CACHE, ZipCache
from shared.settings import load_settings
from tests.shared.ingestion.archives import write_tar, write_zip


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every parse of a central directory (a spy on the real method, which still runs)."""
    seen: list[str] = []
    real = zipfile.ZipFile._RealGetContents  # type: ignore[attr-defined]

    def spy(self: zipfile.ZipFile) -> None:
        seen.append(str(self.filename))
        real(self)

    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", spy)
    ZIP_CACHE.clear()
    yield seen
    ZIP_CACHE.clear()


def test_chunks_of_one_zip_parse_its_directory_once(tmp_path: Path, parses: list[str]) -> None:
    path = write_zip(tmp_path / "m.zip", [(f"f{i}.jpg", bytes([i % 256])) for i in range(300)])
    settings = load_settings(data_dir=tmp_path / "data").ingestion_config()
    names = [m.name for m in list_members(path, "zip", settings)]
    assert len(parses) == 1  # planning
    got: dict[str, bytes] = {}
    for start in range(0, len(names), 32):  # one reader per chunk, as process_chunk does
        with MemberReader(path, "zip", settings) as reader:
            got |= {name: reader.read(name) for name in names[start : start + 32]}
    assert got == {f"f{i}.jpg": bytes([i % 256]) for i in range(300)}
    assert len(parses) == 2  # was 1 + 10: one parse of all 300 entries per chunk


def test_a_replaced_zip_is_read_anew(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data").ingestion_config()
    path = write_zip(tmp_path / "m.zip", [("a.jpg", b"old")])
    with MemberReader(path, "zip", settings) as reader:
        assert reader.read("a.jpg") == b"old"
    replacement = write_zip(tmp_path / "n.zip", [("a.jpg", b"new!")])
    replacement.replace(path)
    with MemberReader(path, "zip", settings) as reader:
        assert reader.read("a.jpg") == b"new!"


def _read(cache: ZipCache, path: Path, key: str) -> bytes:
    def keys(archive: zipfile.ZipFile) -> Any:
        return archive.NameToInfo

    return cache.read(path, key, open_regular, keys, lambda fh: fh.read())


def test_the_cache_is_bounded_and_closes_idle_archives(tmp_path: Path) -> None:
    paths = [write_zip(tmp_path / f"{i}.zip", [("a.jpg", bytes([i]))]) for i in range(4)]
    cache = ZipCache(capacity=2, idle_s=3600)
    for i, path in enumerate(paths):
        assert _read(cache, path, "a.jpg") == bytes([i])
    assert len(cache) == 2
    cache.forget(paths[-1])
    assert len(cache) == 1
    idle = ZipCache(capacity=2, idle_s=0.0)
    _read(idle, paths[0], "a.jpg")
    _read(idle, paths[1], "a.jpg")  # the first one, idle since, is closed on this use
    assert len(idle) == 1
    with pytest.raises(KeyError):
        _read(idle, paths[1], "missing.jpg")


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz"])
def test_compressed_tars_are_not_decompressed_by_tarfiles_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Issue 19.2: tarfile's ``r|*`` stream copied the rest of its decompressed buffer at every
    header and member read (80 % of a tar.gz ingestion's CPU); the decompression is ours now."""
    comptypes: list[str] = []
    real = tarfile._Stream.__init__  # type: ignore[attr-defined]

    def spy(self: Any, name: Any, stream_mode: Any, comptype: str, *rest: Any) -> None:
        comptypes.append(comptype)
        real(self, name, stream_mode, comptype, *rest)

    monkeypatch.setattr(tarfile._Stream, "__init__", spy)  # type: ignore[attr-defined]
    path = write_tar(tmp_path / "m.tar.x", [(f"f{i}.jpg", bytes([i])) for i in range(50)], mode)
    settings = load_settings(data_dir=tmp_path / "data").ingestion_config()
    got = {e.member.name: e.data for e in iter_tar(path, settings)}
    assert got == {f"f{i}.jpg": bytes([i]) for i in range(50)}
    assert comptypes == ["tar"]
