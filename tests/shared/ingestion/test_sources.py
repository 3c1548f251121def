"""Sources: folders, zip, tar (plain/gz/tgz/bz2), single files — and the archive attacks
(traversal names, absolute paths, links, devices, bombs) and import-root escapes."""

from __future__ import annotations

import os
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from shared.ingestion.config import IngestionConfig
from shared.ingestion.sources import (
    Member,
    MemberError,
    SourceError,
    _ItemKeys,
    check_inside_roots,
    list_members,
    read_member,
    source_kind,
)
from shared.ingestion.tar_stream import iter_tar
from shared.settings import load_settings
from tests.shared.imaging.corpus import jpeg, png
from tests.shared.ingestion.archives import Special, tree_snapshot, write_tar, write_zip

IMAGES = {f"set/{i}.jpg": jpeg(32, 24, i) for i in range(3)} | {"set/deep/x.png": png(20, 20, 9)}


def make_settings(tmp_path: Path, **overrides: Any) -> IngestionConfig:
    """Ingestion's config from settings with these overrides (the variables' validation)."""
    return load_settings(data_dir=tmp_path / "data", **overrides).ingestion_config()


def enumerate_source(path: Path, settings: IngestionConfig) -> dict[str, Member]:
    kind = source_kind(path)
    if kind == "tar":
        return {e.member.name: e.member for e in iter_tar(path, settings)}
    return {m.name: m for m in list_members(path, kind, settings)}


def refusals(members: dict[str, Member]) -> dict[str, str]:
    return {name: m.refusal.code for name, m in members.items() if m.refusal}


def read_all(path: Path, settings: IngestionConfig) -> dict[str, bytes]:
    """Bytes of every accepted member, read the way the worker reads them."""
    kind = source_kind(path)
    if kind == "tar":
        return {e.member.name: e.data for e in iter_tar(path, settings) if e.data is not None}
    return {
        m.name: read_member(path, kind, m.name, settings)
        for m in list_members(path, kind, settings)
        if m.refusal is None
    }


# --- plain sources ---------------------------------------------------------------------------


def test_folder_is_walked_recursively_in_order(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for name, data in IMAGES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "readme.txt").write_text("not an image")
    settings = make_settings(tmp_path)
    assert source_kind(root) == "folder"
    members = list(list_members(root, "folder", settings))
    assert sorted(m.name for m in members) == sorted([*IMAGES, "readme.txt"])
    # Deterministic order: re-planning gives every member the same sequence number.
    assert [m.name for m in list_members(root, "folder", settings)] == [m.name for m in members]
    # Non-images are ordinary members here: decoding gives them their "not an image" record.
    assert all(m.refusal is None for m in members)
    assert read_all(root, settings) == IMAGES | {"readme.txt": b"not an image"}


@pytest.mark.parametrize(
    ("filename", "mode"),
    [("a.tar", "w"), ("a.tar.gz", "w:gz"), ("a.tgz", "w:gz"), ("a.tar.bz2", "w:bz2")],
)
def test_tar_variants_stream_every_member(tmp_path: Path, filename: str, mode: str) -> None:
    path = write_tar(tmp_path / filename, IMAGES.items(), mode)
    settings = make_settings(tmp_path)
    assert source_kind(path) == "tar"
    assert read_all(path, settings) == IMAGES


def test_tar_is_recognised_by_content_whatever_its_name(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "upload.bin", IMAGES.items(), "w:gz")
    assert source_kind(path) == "tar"


def test_zip_members_are_read_one_by_one(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "a.zip", [*IMAGES.items(), ("empty/", b"")])
    settings = make_settings(tmp_path)
    assert source_kind(path) == "zip"
    assert read_all(path, settings) == IMAGES  # directory entries are not members


def test_single_file(tmp_path: Path) -> None:
    path = tmp_path / "one.jpg"
    path.write_bytes(IMAGES["set/0.jpg"])
    settings = make_settings(tmp_path)
    assert source_kind(path) == "file"
    assert [(m.name, m.size, m.refusal) for m in list_members(path, "file", settings)] == [
        ("one.jpg", path.stat().st_size, None)
    ]
    assert read_member(path, "file", "one.jpg", settings) == IMAGES["set/0.jpg"]


def test_unreadable_archives_fail_as_a_whole(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(write_tar(tmp_path / "ok.tar.gz", IMAGES.items(), "w:gz").read_bytes()[:300])
    with pytest.raises(SourceError) as info:
        list(iter_tar(broken, make_settings(tmp_path)))
    assert info.value.code == "bad_archive"
    bad_zip = tmp_path / "bad.zip"
    bad_zip.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(SourceError) as info:
        list(list_members(bad_zip, "zip", make_settings(tmp_path)))
    assert info.value.code == "bad_archive"


def test_corrupt_zip_member_is_a_member_error(tmp_path: Path) -> None:
    data = jpeg(200, 100, 1) * 4  # compressible enough to be deflated
    path = write_zip(tmp_path / "a.zip", [("a.jpg", data), ("b.jpg", data)])
    raw = bytearray(path.read_bytes())
    # Scribble over the first member's deflate stream (it starts after its local header).
    start = raw.find(b"a.jpg") + len("a.jpg")
    raw[start + 20 : start + 220] = bytes(range(200))
    path.write_bytes(bytes(raw))
    settings = make_settings(tmp_path)
    with pytest.raises(MemberError) as info:
        read_member(path, "zip", "a.jpg", settings)
    assert info.value.code == "read_failed" and "a.jpg" in info.value.message
    assert read_member(path, "zip", "b.jpg", settings) == data


# --- archive attacks -------------------------------------------------------------------------


def test_tar_attacks_are_refused_with_reasons(tmp_path: Path) -> None:
    escape_target = tmp_path / "escaped.jpg"
    good = jpeg(16, 16, 1)
    path = write_tar(
        tmp_path / "evil.tar.gz",
        [
            ("ok.jpg", good),
            ("../escaped.jpg", good),
            ("a/../../escaped.jpg", good),
            (str(escape_target), good),  # absolute member name
            ("C:\\windows\\x.jpg", good),
            Special("passwd-link", tarfile.SYMTYPE, "/etc/passwd"),
            Special("passwd-hardlink", tarfile.LNKTYPE, "/etc/passwd"),
            Special("null-device", tarfile.CHRTYPE),
            Special("disk-device", tarfile.BLKTYPE),
            Special("pipe", tarfile.FIFOTYPE),
            ("inner.zip", write_zip(tmp_path / "inner.zip", [("x.jpg", good)]).read_bytes()),
            ("inner.tar.gz", b"\x1f\x8b whatever"),
            ("bin.setuid", good),  # a regular file: only its bytes are ever used
        ],
        "w:gz",
    )
    before = tree_snapshot(tmp_path)
    entries = list(iter_tar(path, make_settings(tmp_path)))
    by_name = {e.member.name: e for e in entries}
    assert refusals({n: e.member for n, e in by_name.items()}) == {
        "../escaped.jpg": "unsafe_member_name",
        "a/../../escaped.jpg": "unsafe_member_name",
        str(escape_target): "unsafe_member_name",
        "C:\\windows\\x.jpg": "unsafe_member_name",
        "passwd-link": "not_regular_file",
        "passwd-hardlink": "not_regular_file",
        "null-device": "not_regular_file",
        "disk-device": "not_regular_file",
        "pipe": "not_regular_file",
        "inner.zip": "nested_archive",
        "inner.tar.gz": "nested_archive",
    }
    assert by_name["ok.jpg"].data == good and by_name["bin.setuid"].data == good
    assert all(e.data is None for e in entries if e.member.refusal)
    for entry in entries:
        if entry.member.refusal:
            message = entry.member.refusal.message
            assert entry.member.name in message or repr(entry.member.name) in message
    # Streaming wrote nothing anywhere.
    assert tree_snapshot(tmp_path) == before
    assert not escape_target.exists()


def test_zip_attacks_are_refused_with_reasons(tmp_path: Path) -> None:
    good = jpeg(16, 16, 2)
    path = write_zip(
        tmp_path / "evil.zip",
        [
            ("ok.jpg", good),
            ("../escaped.jpg", good),
            ("/tmp/escaped.jpg", good),
            ("..\\escaped.jpg", good),
            ("nested/inner.zip", b"PK\x03\x04"),
        ],
        symlinks=[("link.jpg", "/etc/passwd")],
    )
    settings = make_settings(tmp_path)
    before = tree_snapshot(tmp_path)
    members = enumerate_source(path, settings)
    assert refusals(members) == {
        "../escaped.jpg": "unsafe_member_name",
        "/tmp/escaped.jpg": "unsafe_member_name",
        "..\\escaped.jpg": "unsafe_member_name",
        "nested/inner.zip": "nested_archive",
        "link.jpg": "not_regular_file",
    }
    assert read_all(path, settings) == {"ok.jpg": good}
    assert tree_snapshot(tmp_path) == before


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")  # zipfile: that is the point
@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_repeated_member_names_are_members_of_their_own(tmp_path: Path, kind: str) -> None:
    # Zip and tar both allow a name twice. Each copy is a member: it gets a key of its own
    # (a later member really named like a generated key is not lost either), and the key
    # reads that copy's bytes, not the last copy's.
    a, b, c, d = (jpeg(16, 16, i) for i in range(4))
    entries = [
        ("dup.jpg", a),
        ("dup.jpg", b),
        ("dup.jpg (#2)", c),
        ("dup.jpg", d),
        ("inner.zip", b"PK\x03\x04"),
        ("inner.zip", b"PK\x03\x04"),
    ]
    path = (
        write_zip(tmp_path / "dups.zip", entries)
        if kind == "zip"
        else write_tar(tmp_path / "dups.tar.gz", entries, "w:gz")
    )
    settings = make_settings(tmp_path)
    assert read_all(path, settings) == {
        "dup.jpg": a,
        "dup.jpg (#2)": b,
        "dup.jpg (#2) (#2)": c,
        "dup.jpg (#3)": d,
    }
    members = enumerate_source(path, settings)
    assert len(members) == len(entries)
    assert refusals(members) == {
        "inner.zip": "nested_archive",
        "inner.zip (#2)": "nested_archive",
    }
    refusal = members["inner.zip (#2)"].refusal
    assert refusal is not None and refusal.message.startswith("inner.zip (#2) is an archive")
    # The same keys every time: re-planning is idempotent and the reader agrees with it.
    assert enumerate_source(path, settings) == members


def test_one_name_repeated_many_times_costs_linear_time() -> None:
    # An archive of one name repeated up to the member limit must not probe suffixes
    # 2..k again for every repeat (quadratic: 8e8 probes here). Crosses a merge of the
    # digest set too.
    keys = _ItemKeys()
    started = time.perf_counter()
    names = [keys.key("x.jpg") for _ in range(40_000)]
    assert time.perf_counter() - started < 10
    assert names[:3] == ["x.jpg", "x.jpg (#2)", "x.jpg (#3)"] and len(set(names)) == 40_000


def test_zip_bomb_is_refused_by_its_ratio(tmp_path: Path) -> None:
    bomb = b"\0" * (20 * 1024 * 1024)  # deflates ~1000x
    path = write_zip(tmp_path / "bomb.zip", [("ok.jpg", jpeg(16, 16, 3)), ("zeros.bmp", bomb)])
    members = enumerate_source(path, make_settings(tmp_path))
    assert refusals(members) == {"zeros.bmp": "compression_ratio"}
    assert members["zeros.bmp"].refusal is not None
    assert "zip bomb" in members["zeros.bmp"].refusal.message


def test_many_small_members_trip_the_whole_archive_ratio(tmp_path: Path) -> None:
    # Each member is under the per-member threshold; together they expand far too much.
    entries = [(f"{i}.bmp", b"\0" * (512 * 1024)) for i in range(8)]
    path = write_zip(tmp_path / "many.zip", entries)
    codes = refusals(enumerate_source(path, make_settings(tmp_path)))
    assert codes and set(codes.values()) == {"compression_ratio"}
    assert "0.bmp" not in codes  # the first MiB is allowed; refusals start past it


def test_tar_gz_bomb_stops_the_stream(tmp_path: Path) -> None:
    path = write_tar(
        tmp_path / "bomb.tar.gz",
        [("ok.jpg", jpeg(16, 16, 4)), ("zeros.bmp", b"\0" * (30 * 1024 * 1024))],
        "w:gz",
    )
    names = []
    with pytest.raises(SourceError) as info:
        for entry in iter_tar(path, make_settings(tmp_path)):
            names.append(entry.member.name)
    assert info.value.code == "compression_ratio"
    assert names == ["ok.jpg"]


def test_member_count_bombs(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_archive_members=50)
    entries = [(f"{i}.jpg", b"x") for i in range(60)]
    zip_path = write_zip(tmp_path / "many.zip", entries)
    with pytest.raises(SourceError) as info:
        next(iter(list_members(zip_path, "zip", settings)))  # refused before any member
    assert info.value.code == "too_many_members" and "60" in info.value.message
    tar_path = write_tar(tmp_path / "many.tar", entries)
    streamed = []
    with pytest.raises(SourceError) as info:
        for entry in iter_tar(tar_path, settings):
            streamed.append(entry)
    assert info.value.code == "too_many_members" and len(streamed) == 50
    folder = tmp_path / "many"
    folder.mkdir()
    for name, data in entries:
        (folder / name).write_bytes(data)
    with pytest.raises(SourceError):
        list(list_members(folder, "folder", settings))


def test_oversized_members(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_member_bytes=1000)
    big, small = os.urandom(2000), os.urandom(500)
    entries = [("big.jpg", big), ("small.jpg", small)]
    for path in (
        write_zip(tmp_path / "a.zip", entries),
        write_tar(tmp_path / "a.tar.gz", entries, "w:gz"),
    ):
        assert refusals(enumerate_source(path, settings)) == {"big.jpg": "member_too_large"}
        assert read_all(path, settings) == {"small.jpg": small}
    single = tmp_path / "big.jpg"
    single.write_bytes(big)
    assert refusals(enumerate_source(single, settings)) == {"big.jpg": "member_too_large"}
    # A member that grew after planning is still cut off when read.
    with pytest.raises(MemberError) as info:
        read_member(single, "file", "big.jpg", settings)
    assert info.value.code == "member_too_large"


def test_archive_total_size_limit(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_archive_total_bytes=2500)
    entries = [(f"{i}.jpg", os.urandom(1000)) for i in range(4)]
    codes = refusals(enumerate_source(write_zip(tmp_path / "a.zip", entries), settings))
    assert codes == {"2.jpg": "archive_too_large", "3.jpg": "archive_too_large"}
    with pytest.raises(SourceError) as info:
        list(iter_tar(write_tar(tmp_path / "a.tar", entries), settings))
    assert info.value.code == "archive_too_large"


def test_folder_links_and_special_files_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(jpeg(16, 16, 5))
    root = tmp_path / "in"
    root.mkdir()
    (root / "ok.jpg").write_bytes(jpeg(16, 16, 6))
    (root / "link.jpg").symlink_to(outside / "secret.jpg")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    os.mkfifo(root / "pipe.jpg")
    settings = make_settings(tmp_path)
    members = {m.name: m for m in list_members(root, "folder", settings)}
    assert refusals(members) == {
        "link.jpg": "not_regular_file",
        "linkdir": "not_regular_file",
        "pipe.jpg": "not_regular_file",
    }
    assert "linkdir/secret.jpg" not in members  # symlinked folders are not followed
    # A member swapped for a symlink after planning is refused when read (O_NOFOLLOW).
    (root / "ok.jpg").unlink()
    (root / "ok.jpg").symlink_to(outside / "secret.jpg")
    with pytest.raises(MemberError) as info:
        read_member(root, "folder", "ok.jpg", settings)
    assert info.value.code == "read_failed"


def _timed(fn: Any) -> tuple[Any, float]:
    start = time.monotonic()
    try:
        return fn(), time.monotonic() - start
    except SourceError as exc:
        return exc, time.monotonic() - start


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "/dev/null"])
def test_a_non_regular_source_is_refused_at_once_without_being_opened(
    tmp_path: Path, special: str
) -> None:
    """Issue 19.1: zipfile.is_zipfile() read /dev/zero to the end and blocked on a FIFO."""
    path = Path(special)
    if special == "fifo":
        path = tmp_path / "p.jpg"
        os.mkfifo(path)
    error, took = _timed(lambda: source_kind(path))
    assert isinstance(error, SourceError) and error.code == "not_regular_file", error
    assert took < 2.0
    # The other entry points refuse it too, should the kind have been decided earlier.
    settings = make_settings(tmp_path)
    for kind in ("file", "zip"):
        error, took = _timed(lambda kind=kind: list(list_members(path, kind, settings)))
        assert isinstance(error, SourceError) and error.code == "not_regular_file", (kind, error)
    error, took = _timed(lambda: list(iter_tar(path, settings)))
    assert isinstance(error, SourceError) and error.code == "not_regular_file", error
    with pytest.raises(MemberError) as info:
        read_member(path, "zip", "x.jpg", settings)
    assert info.value.code == "not_regular_file"


def test_a_member_swapped_for_a_fifo_after_planning_is_refused_without_blocking(
    tmp_path: Path,
) -> None:
    root = tmp_path / "in"
    root.mkdir()
    (root / "a.jpg").write_bytes(jpeg(16, 16, 1))
    settings = make_settings(tmp_path)
    assert [m.name for m in list_members(root, "folder", settings)] == ["a.jpg"]
    (root / "a.jpg").unlink()
    os.mkfifo(root / "a.jpg")
    start = time.monotonic()
    with pytest.raises(MemberError) as info:
        read_member(root, "folder", "a.jpg", settings)
    assert info.value.code == "not_regular_file"
    assert time.monotonic() - start < 2.0
    with pytest.raises(MemberError) as info:  # a single-file source likewise
        read_member(root / "a.jpg", "file", "a.jpg", settings)
    assert info.value.code == "not_regular_file"


# --- import roots ----------------------------------------------------------------------------


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "imports" / "set").mkdir(parents=True)
    (data / "imports" / "set" / "a.jpg").write_bytes(b"x")
    (data / "imports-evil").mkdir()
    (data / "imports-evil" / "b.jpg").write_bytes(b"x")
    (data / "secret").mkdir()
    (data / "imports" / "escape").symlink_to(data / "secret", target_is_directory=True)
    (data / "imports" / "passwd").symlink_to("/etc/passwd")
    return data


def test_paths_inside_the_import_root_are_allowed(roots: Path) -> None:
    root = roots / "imports"
    assert check_inside_roots(root / "set", [root]) == (root / "set").resolve()
    assert check_inside_roots(root / "set" / "a.jpg", [root]) == (root / "set" / "a.jpg").resolve()
    assert check_inside_roots(root / "set" / ".." / "set", [root]) == (root / "set").resolve()
    # The root may itself be reached through a symlink.
    alias = roots / "alias"
    alias.symlink_to(root, target_is_directory=True)
    assert check_inside_roots(alias / "set", [alias]) == (root / "set").resolve()
    assert check_inside_roots(root / "set", [roots / "other", root]) == (root / "set").resolve()


@pytest.mark.parametrize(
    "relative",
    [
        "imports/../secret",
        "imports/set/../../secret",
        "imports-evil",
        "imports-evil/b.jpg",
        "imports/escape",
        "imports/passwd",
        "secret",
    ],
)
def test_paths_outside_the_import_root_are_refused(roots: Path, relative: str) -> None:
    with pytest.raises(SourceError) as info:
        check_inside_roots(roots / relative, [roots / "imports"])
    assert info.value.code == "path_not_allowed"


def test_import_root_edge_cases(roots: Path) -> None:
    with pytest.raises(SourceError) as info:
        check_inside_roots(roots / "imports" / "set", [])
    assert info.value.code == "path_not_allowed"  # server-side paths disabled
    with pytest.raises(SourceError) as info:
        check_inside_roots(roots / "imports" / "nope", [roots / "imports"])
    assert info.value.code == "source_not_found"
    with pytest.raises(SourceError) as info:  # resolve() would raise ValueError here
        check_inside_roots(roots / "imports" / "set\x00/../../secret", [roots / "imports"])
    assert info.value.code == "invalid_path"
    with pytest.raises(SourceError):  # a root that does not exist admits nothing
        check_inside_roots(roots / "imports" / "set", [roots / "missing"])
    with pytest.raises(SourceError):
        check_inside_roots(Path("/etc"), [roots / "imports"])


@pytest.mark.parametrize("outside", ["/etc/passwd", "/etc/nonexistent", "secret/nope", "x/../.."])
def test_containment_is_decided_before_existence(roots: Path, outside: str) -> None:
    """Issue 19.6: outside the roots, an existing and a missing path get the same answer."""
    with pytest.raises(SourceError) as info:
        check_inside_roots(roots / "imports" / ".." / outside, [roots / "imports"])
    assert info.value.code == "path_not_allowed"
    with pytest.raises(SourceError) as info:
        check_inside_roots(Path(outside).absolute(), [roots / "imports"])
    assert info.value.code == "path_not_allowed"
    loop = roots / "imports" / "loop"
    loop.symlink_to(loop)
    with pytest.raises(SourceError) as info:  # a symlink loop points nowhere knowable
        check_inside_roots(loop, [roots / "imports"])
    assert info.value.code in ("path_not_allowed", "source_not_found")


def test_enumeration_and_reading_write_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    sources = [
        write_zip(src / "a.zip", [*IMAGES.items(), ("../x.jpg", b"1")]),
        write_tar(src / "a.tgz", [*IMAGES.items(), ("../x.jpg", b"1")], "w:gz"),
    ]
    settings = make_settings(tmp_path)
    before = tree_snapshot(tmp_path)
    for path in sources:
        assert set(read_all(path, settings)) == set(IMAGES)
    assert tree_snapshot(tmp_path) == before
    assert not (tmp_path / "x.jpg").exists()
    assert zipfile.is_zipfile(sources[0])
