"""Inputs for the battery: archives of ordinary scenes, the bad-image corpus in one archive,
and the archive-attack corpus (each attack with what must happen to each member).

The image kinds (awkward-but-valid and broken/hostile files, each with the stable error code
``decode_image`` must give) are the decoding tests' own corpus, imported from
``tests.shared.imaging.corpus`` so that both stay the same list; this module only adds the
archive layouts around them.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import tarfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.shared.imaging.corpus import bad_cases, good_cases, jpeg, mutations
from tests.shared.ingestion.archives import Entry, Special, write_tar, write_zip

# Archive members whose names try to escape land here if anything extracts them.
EVIL_PREFIX = "roisearch-proof-evil-"


def scene_jpegs(n: int, *, seed: int = 0, width: int = 320, height: int = 240) -> list[bytes]:
    """``n`` distinct JPEG scenes (noise plus solid shapes), deterministic per seed."""
    return [jpeg(width, height, seed * 100_000 + i) for i in range(n)]


def zip_of(path: Path, members: dict[str, bytes]) -> Path:
    """A stored (uncompressed) zip of ``members``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_zip(path, members.items(), compression=zipfile.ZIP_STORED)


def scene_archive(path: Path, n: int, *, seed: int = 0) -> Path:
    """A zip of ``n`` distinct scenes named ``scenes/NNNNN.jpg``."""
    return zip_of(
        path, {f"scenes/{i:05d}.jpg": data for i, data in enumerate(scene_jpegs(n, seed=seed))}
    )


# --- the bad-image corpus ---------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What must become of one member: ``done``, or ``failed`` with ``code`` (None: any code)."""

    status: str
    code: str | None = None


@dataclass
class Attack:
    """One archive (or folder) and what must become of each of its members."""

    name: str
    path: Path
    members: dict[str, Expect] = field(default_factory=dict)
    # The source as a whole: None, or the ingestion's expected error code (e.g. too many members).
    source_error: str | None = None
    # Members in the archive (counting duplicates), to prove every one is accounted for.
    member_count: int = 0
    # Settings this attack runs under (tightened limits).
    overrides: dict[str, object] = field(default_factory=dict)


def image_corpus(path: Path, *, mutants: int) -> Attack:
    """Every good and bad image kind of the decoding corpus plus random mutants, in one zip."""
    members: dict[str, bytes] = {}
    expect: dict[str, Expect] = {}
    for case in good_cases():
        members[f"good/{case.name}"] = case.data
        expect[f"good/{case.name}"] = Expect("done")
    for case in bad_cases():
        members[f"bad/{case.name}"] = case.data
        expect[f"bad/{case.name}"] = Expect("failed", case.code)
    for name, data in mutations(seed=7, count=mutants):
        members[f"mutants/{name}"] = data
        expect[f"mutants/{name}"] = Expect("any")
    zip_of(path, members)
    return Attack("image corpus", path, expect, member_count=len(members))


# --- archive attacks ------------------------------------------------------------------------


def _patch_zip_sizes(data: bytearray, claimed: int) -> None:
    """Make every header of a one-member zip claim ``claimed`` uncompressed bytes (a liar)."""
    local = data.find(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, claimed)
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, claimed)


def attacks(root: Path, nonce: str, *, max_members: int, max_member_bytes: int) -> list[Attack]:
    """Build the attack corpus under ``root``. Names that escape aim at /tmp/<EVIL_PREFIX>…"""
    root.mkdir(parents=True, exist_ok=True)
    ok = jpeg(64, 48, 11)
    evil = f"{EVIL_PREFIX}{nonce}"
    out: list[Attack] = []

    # 1. path traversal and absolute names in a zip
    names = [
        f"../../../../../../tmp/{evil}-zip-trav.jpg",
        f"a/../../{evil}-zip-trav2.jpg",
        f"/tmp/{evil}-zip-abs.jpg",
        f"C:\\tmp\\{evil}-zip-drive.jpg",
        f"..\\..\\{evil}-zip-backslash.jpg",
    ]
    members = dict.fromkeys(names, Expect("failed", "unsafe_member_name"))
    members["fine/ok.jpg"] = Expect("done")
    path = write_zip(
        root / "traversal.zip",
        [(name, jpeg(32, 32, i)) for i, name in enumerate(names)] + [("fine/ok.jpg", ok)],
    )
    out.append(Attack("zip: traversal + absolute names", path, members, member_count=6))

    # 2. a tar with every kind of link, device and escaping name
    entries: list[Entry] = [
        Special("link.jpg", tarfile.SYMTYPE, "/etc/passwd"),
        Special("hard.jpg", tarfile.LNKTYPE, "/etc/passwd"),
        Special("chardev.jpg", tarfile.CHRTYPE),
        Special("blockdev.jpg", tarfile.BLKTYPE),
        Special("fifo.jpg", tarfile.FIFOTYPE),
        Special("tmpdir", tarfile.SYMTYPE, "/tmp"),
        (f"tmpdir/{evil}-through-link.jpg", jpeg(40, 30, 3)),
        (f"../../../../tmp/{evil}-tar-trav.jpg", jpeg(40, 30, 4)),
        (f"/tmp/{evil}-tar-abs.jpg", jpeg(40, 30, 5)),
        ("image.jpg.setuid", jpeg(40, 30, 6)),  # written with mode 04755
        ("ok.jpg", ok),
    ]
    members = {
        "link.jpg": Expect("failed", "not_regular_file"),
        "hard.jpg": Expect("failed", "not_regular_file"),
        "chardev.jpg": Expect("failed", "not_regular_file"),
        "blockdev.jpg": Expect("failed", "not_regular_file"),
        "fifo.jpg": Expect("failed", "not_regular_file"),
        "tmpdir": Expect("failed", "not_regular_file"),
        f"tmpdir/{evil}-through-link.jpg": Expect("done"),  # only a label: nothing extracted
        f"../../../../tmp/{evil}-tar-trav.jpg": Expect("failed", "unsafe_member_name"),
        f"/tmp/{evil}-tar-abs.jpg": Expect("failed", "unsafe_member_name"),
        "image.jpg.setuid": Expect("done"),
        "ok.jpg": Expect("done"),
    }
    path = write_tar(root / "links.tar", entries)
    out.append(
        Attack("tar: symlink/hardlink/devices/fifo/traversal", path, members, member_count=11)
    )

    # 3. a zip whose member is a symlink (Unix mode in the external attributes)
    path = write_zip(
        root / "zip-symlink.zip", [("ok.jpg", ok)], symlinks=[("passwd-link.jpg", "/etc/passwd")]
    )
    members = {"passwd-link.jpg": Expect("failed", "not_regular_file"), "ok.jpg": Expect("done")}
    out.append(Attack("zip: symlink member", path, members, member_count=2))

    # 4. zip bomb: one member that expands ~1000x, and one whose headers lie about its size
    path = root / "zip-bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.jpg", b"\0" * (4 * max_member_bytes - 1))
        archive.writestr("ratio.jpg", b"\0" * (max_member_bytes // 2))
        archive.writestr("ok.jpg", ok)
    members = {
        "bomb.jpg": Expect("failed", "member_too_large"),
        "ratio.jpg": Expect("failed", "compression_ratio"),
        "ok.jpg": Expect("done"),
    }
    out.append(Attack("zip bomb (size, ratio)", path, members, member_count=3))

    path = root / "zip-liar.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("liar.jpg", b"\0" * (2 * max_member_bytes))
    data = bytearray(buffer.getvalue())
    _patch_zip_sizes(data, 1000)  # claims 1000 bytes, inflates to 2x the member limit
    path.write_bytes(bytes(data))
    out.append(
        Attack(
            "zip: header lies about the size",
            path,
            {"liar.jpg": Expect("failed", None)},
            member_count=1,
        )
    )

    # 5. tar.gz bomb: a member far over the member limit in a tiny compressed stream
    path = write_tar(
        root / "bomb.tar.gz", [("huge.jpg", b"\0" * (2 * max_member_bytes)), ("ok.jpg", ok)], "w:gz"
    )
    # Refusing the member or the whole stream (ratio of the archive) are both right.
    members = {"huge.jpg": Expect("failed", "member_too_large"), "ok.jpg": Expect("done")}
    out.append(Attack("tar.gz bomb", path, members, member_count=2))

    # 6. member-count bombs (zip and tar): the ingestion stops at the limit, with a reason
    count = max_members + 200
    tiny = [(f"m/{i:06d}.jpg", b"x%d" % i) for i in range(count)]
    for kind in ("zip", "tar"):
        path = root / f"count-bomb.{kind}"
        if kind == "zip":
            write_zip(path, tiny, compression=zipfile.ZIP_STORED)
        else:
            write_tar(path, list(tiny))
        out.append(
            Attack(
                f"{kind}: member-count bomb",
                path,
                {},
                source_error="too_many_members",
                member_count=count,
            )
        )

    # 7. nested archives, also disguised as an image
    inner_zip = io.BytesIO()
    with zipfile.ZipFile(inner_zip, "w") as archive:
        archive.writestr("inside.jpg", ok)
    inner_tar = write_tar(root / "inner.tar.gz", [("inside.jpg", ok)], "w:gz").read_bytes()
    path = zip_of(
        root / "nested.zip",
        {
            "inner.zip": inner_zip.getvalue(),
            "inner.tar.gz": inner_tar,
            "inner.tgz": inner_tar,
            "inner.7z": b"7z\xbc\xaf\x27\x1c" + b"\0" * 32,
            "disguised.jpg": inner_zip.getvalue(),
            "ok.jpg": ok,
        },
    )
    members = {
        "inner.zip": Expect("failed", "nested_archive"),
        "inner.tar.gz": Expect("failed", "nested_archive"),
        "inner.tgz": Expect("failed", "nested_archive"),
        "inner.7z": Expect("failed", "nested_archive"),
        "disguised.jpg": Expect("failed", "nested_archive"),
        "ok.jpg": Expect("done"),
    }
    out.append(Attack("nested archives", path, members, member_count=6))

    # 8. duplicate member names: both copies must be accounted for
    path = root / "duplicates.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as archive:
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": that is the point
        archive.writestr("dup.jpg", jpeg(40, 30, 21))
        archive.writestr("dup.jpg", jpeg(40, 30, 22))
        archive.writestr("ok.jpg", ok)
        for i in range(3):  # the same broken bytes under three names: each error names its own
            archive.writestr(f"same-bytes-{i}.jpg", b"not an image at all")
    members = {"dup.jpg": Expect("any"), "ok.jpg": Expect("done")}
    members |= {f"same-bytes-{i}.jpg": Expect("skipped", "not_an_image") for i in range(3)}
    out.append(Attack("zip: duplicate names / duplicate bytes", path, members, member_count=6))

    # 9. a folder with links to the outside, a fifo and (as root) a device node
    folder = root / "folder-with-links"
    folder.mkdir(exist_ok=True)
    (folder / "ok.jpg").write_bytes(ok)
    members = {"ok.jpg": Expect("done")}
    for name, target in (("passwd.jpg", "/etc/passwd"), ("outside-dir", "/tmp")):
        link = folder / name
        if not link.is_symlink():
            link.symlink_to(target)
        members[name] = Expect("failed", "not_regular_file")
    fifo = folder / "fifo.jpg"
    if not fifo.exists():
        os.mkfifo(fifo)
    members["fifo.jpg"] = Expect("failed", "not_regular_file")
    if os.geteuid() == 0:
        device = folder / "null.jpg"
        if not device.exists():
            os.mknod(device, stat.S_IFCHR | 0o600, os.makedev(1, 3))
        members["null.jpg"] = Expect("failed", "not_regular_file")
    out.append(Attack("folder: symlinks/fifo/device", folder, members, member_count=len(members)))
    return out
