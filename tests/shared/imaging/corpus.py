"""Generated image files for decoding and ingestion tests: good images in every awkward mode,
and a corpus of broken or hostile files, each with the outcome ``decode_image`` must give.

Everything is generated in memory with Pillow, numpy and a few hand-written byte layouts
(PNG chunks, JPEG headers) for files Pillow refuses to write (bombs, broken CRCs).
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image

Check = Callable[[np.ndarray, int, int], None]  # (rgb array, width, height) -> asserts


@dataclass(frozen=True)
class Case:
    """One file: ``code`` is the expected ImageDecodeError code, or None when it must decode
    (then ``check`` validates the RGB array and the reported oriented size)."""

    name: str
    data: bytes
    code: str | None = None
    check: Check | None = None


def scene(width: int, height: int, seed: int) -> np.ndarray:
    """RGB uint8 [height, width, 3]: noise with a few solid rectangles and discs."""
    rng = np.random.default_rng(seed)
    array = rng.integers(60, 196, size=(height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    for _ in range(3):
        colour = rng.integers(0, 256, size=3, dtype=np.uint8)
        x0, y0 = int(rng.integers(0, max(1, width - 8))), int(rng.integers(0, max(1, height - 8)))
        w = int(rng.integers(max(2, width // 8), max(3, width // 3)))
        h = int(rng.integers(max(2, height // 8), max(3, height // 3)))
        if rng.random() < 0.5:
            array[y0 : y0 + h, x0 : x0 + w] = colour
        else:
            r = max(w, h) // 2
            array[(xx - x0 - r) ** 2 + (yy - y0 - r) ** 2 <= r * r] = colour
    return array


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def jpeg(width: int, height: int, seed: int, **params: object) -> bytes:
    return encode(Image.fromarray(scene(width, height, seed)), "JPEG", quality=90, **params)


def png(width: int, height: int, seed: int) -> bytes:
    return encode(Image.fromarray(scene(width, height, seed)), "PNG")


# --- hand-made byte layouts ----------------------------------------------------------------


def _chunk(tag: bytes, data: bytes, *, crc: int | None = None) -> bytes:
    value = zlib.crc32(tag + data) if crc is None else crc
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", value & 0xFFFFFFFF)


def raw_png(
    width: int,
    height: int,
    *,
    bit_depth: int = 8,
    colour_type: int = 0,
    idat: bytes | None = None,
    extra: bytes = b"",
    bad_crc: bool = False,
) -> bytes:
    """A PNG written by hand (Pillow will not write bombs or broken files). Without ``idat``,
    a small 8-bit greyscale image gets complete all-black pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    body = idat if idat is not None else zlib.compress(b"\0" * (height * (width + 1)))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr, crc=0xDEADBEEF if bad_crc else None)
        + extra
        + _chunk(b"IDAT", body)
        + _chunk(b"IEND", b"")
    )


def png16_rgb(array: np.ndarray) -> bytes:
    """16-bit RGB PNG from uint16 [h, w, 3] (Pillow cannot write this mode)."""
    h, w, _ = array.shape
    rows = b"".join(b"\0" + array[y].astype(">u2").tobytes() for y in range(h))
    return raw_png(w, h, bit_depth=16, colour_type=2, idat=zlib.compress(rows))


def jpeg_with_size(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF header is patched to claim ``width`` x ``height``."""
    data = bytearray(jpeg(16, 16, 1))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def exif_jpeg(orientation: int) -> bytes:
    """40x20 stored pixels: left half red, right half blue, with an EXIF orientation."""
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, :20] = (255, 0, 0)
    array[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(array), "JPEG", quality=95, exif=exif.tobytes())


def zip_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def tar_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


# --- checks ----------------------------------------------------------------------------------


def _close(a: np.ndarray, b: object, tol: float) -> bool:
    return bool(np.abs(a.astype(np.float64) - np.asarray(b, np.float64)).max() <= tol)


def size_is(width: int, height: int) -> Check:
    def check(array: np.ndarray, w: int, h: int) -> None:
        assert (w, h) == (width, height)
        assert array.shape == (height, width, 3) and array.dtype == np.uint8

    return check


def uniform(colour: tuple[int, int, int], width: int, height: int, tol: float = 6) -> Check:
    def check(array: np.ndarray, w: int, h: int) -> None:
        size_is(width, height)(array, w, h)
        assert _close(array.reshape(-1, 3).mean(0), colour, tol), array.reshape(-1, 3).mean(0)

    return check


def matches(expected: np.ndarray, tol: float) -> Check:
    def check(array: np.ndarray, w: int, h: int) -> None:
        size_is(expected.shape[1], expected.shape[0])(array, w, h)
        assert _close(array, expected, tol)

    return check


def _grey16_check(values: np.ndarray) -> Check:
    expected = np.repeat((values.astype(np.float64) / 257.0)[:, :, None], 3, axis=2)

    def check(array: np.ndarray, w: int, h: int) -> None:
        matches(expected, 1.0)(array, w, h)

    return check


def _rotated_check(array: np.ndarray, w: int, h: int) -> None:
    # Orientation 6 = stored image rotated 90° clockwise for display: left (red) goes on top.
    size_is(20, 40)(array, w, h)
    assert _close(array[:15].reshape(-1, 3).mean(0), (255, 0, 0), 25)
    assert _close(array[25:].reshape(-1, 3).mean(0), (0, 0, 255), 25)


def _transparent_white_check(array: np.ndarray, w: int, h: int) -> None:
    size_is(8, 8)(array, w, h)
    assert _close(array[:, :4], (255, 255, 255), 0)  # transparent half shows as white
    assert _close(array[:, 4:], (0, 128, 0), 0)


# --- the corpus -----------------------------------------------------------------------------


@cache
def good_cases() -> tuple[Case, ...]:
    """Images in awkward but valid encodings: each must decode to the right RGB pixels."""
    base = scene(24, 16, 7)
    cases = [
        Case("rgb.jpg", jpeg(32, 24, 1), check=size_is(32, 24)),
        Case("progressive.jpg", jpeg(32, 24, 2, progressive=True), check=size_is(32, 24)),
        Case("rgb.png", encode(Image.fromarray(base), "PNG"), check=matches(base, 0)),
        Case(
            "cmyk.jpg",
            encode(Image.new("CMYK", (16, 12), (0, 255, 255, 0)), "JPEG", quality=95),
            check=uniform((255, 0, 0), 16, 12, tol=12),
        ),
        Case(
            "cmyk.tif",
            encode(Image.new("CMYK", (10, 10), (255, 0, 255, 0)), "TIFF"),
            check=uniform((0, 255, 0), 10, 10, tol=1),
        ),
        Case("exif-rotated.jpg", exif_jpeg(6), check=_rotated_check),
        Case(
            "grey.jpg",
            encode(Image.new("L", (12, 9), 90), "JPEG", quality=95),
            check=uniform((90, 90, 90), 12, 9, tol=2),
        ),
        Case(
            "bilevel.png", encode(Image.new("1", (9, 9), 1), "PNG"), check=uniform((255,) * 3, 9, 9)
        ),
        Case(
            "la.png",
            encode(Image.new("LA", (6, 6), (0, 0)), "PNG"),
            check=uniform((255, 255, 255), 6, 6, tol=0),
        ),
        Case(
            "rgba-half-transparent.png",
            encode(Image.new("RGBA", (4, 4), (0, 0, 0, 128)), "PNG"),
            check=uniform((127, 127, 127), 4, 4, tol=1),
        ),
        Case("palette-transparency.png", _palette_png(), check=_transparent_white_check),
        Case("animated.gif", _animated("GIF"), check=uniform((255, 0, 0), 10, 10, tol=0)),
        Case("animated.webp", _animated("WEBP"), check=uniform((255, 0, 0), 10, 10, tol=2)),
        Case(
            "lossless.webp",
            encode(Image.fromarray(base), "WEBP", lossless=True),
            check=matches(base, 0),
        ),
        Case("multipage.tif", _multipage_tiff(), check=uniform((0, 0, 255), 7, 5, tol=0)),
        Case(
            "one-pixel.png",
            encode(Image.new("RGB", (1, 1), (1, 2, 3)), "PNG"),
            check=uniform((1, 2, 3), 1, 1, 0),
        ),
        Case("rgb.bmp", encode(Image.fromarray(base), "BMP"), check=matches(base, 0)),
        Case("rgb.ppm", encode(Image.fromarray(base), "PPM"), check=matches(base, 0)),
        Case("grey16-gradient.png", *_grey16(np.linspace(0, 65535, 64 * 4).reshape(4, 64))),
        Case("grey16-dark.png", *_grey16(np.full((5, 5), 200))),
        Case("grey16.tif", *_grey16(np.linspace(0, 65535, 30).reshape(5, 6), fmt="TIFF")),
        Case(
            "rgb16.png",
            png16_rgb(np.full((3, 4, 3), (65535, 32896, 0), np.uint16)),
            check=uniform((255, 128, 0), 4, 3, tol=0),
        ),
    ]
    return tuple(cases)


def _grey16(values: np.ndarray, fmt: str = "PNG") -> tuple[bytes, None, Check]:
    array = values.astype(np.uint16)
    return encode(Image.fromarray(array), fmt), None, _grey16_check(array)


def _palette_png() -> bytes:
    im = Image.new("P", (8, 8), 0)
    im.putpalette([0, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 6))
    for x in range(4, 8):
        for y in range(8):
            im.putpixel((x, y), 1)
    return encode(im, "PNG", transparency=0)


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    params: dict[str, object] = {"save_all": True, "append_images": frames[1:], "duration": 50}
    if fmt == "WEBP":
        params["lossless"] = True
    return encode(frames[0], fmt, **params)


def _multipage_tiff() -> bytes:
    first = Image.new("RGB", (7, 5), (0, 0, 255))
    second = Image.new("RGB", (70, 50), (255, 0, 0))
    return encode(first, "TIFF", save_all=True, append_images=[second])


@cache
def bad_cases() -> tuple[Case, ...]:
    """Broken or hostile files: each must fail with this stable code (and never crash)."""
    good_jpeg = jpeg(64, 48, 3)
    good_png = png(64, 48, 4)
    gif = _animated("GIF")
    cases = [
        Case("empty.jpg", b"", "empty_file"),
        Case("truncated.jpg", good_jpeg[: len(good_jpeg) // 2], "truncated"),
        Case("truncated.png", good_png[: len(good_png) // 2], "truncated"),
        Case("header-only.png", good_png[:33], "corrupt"),
        Case("header-only.gif", gif[:13], "corrupt"),
        Case("truncated-frame-header.gif", gif[:130], "truncated"),  # struct.error in Pillow
        Case("soi-then-garbage.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, "corrupt"),
        Case("random.bin", np.random.default_rng(1).bytes(4096), "not_an_image"),
        Case("notes.txt", b"just some words, no pixels\n" * 20, "not_an_image"),
        Case("page.html", b"<!DOCTYPE html><html><body><img src=x></body></html>", "not_an_image"),
        Case("data.xml", b'<?xml version="1.0"?><root><a/></root>', "not_an_image"),
        Case(
            "drawing.eps",
            b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
            "format_not_allowed",
        ),
        Case("binary.eps", b"\xc5\xd0\xd3\xc6" + b"\0" * 60, "format_not_allowed"),
        Case(
            "drawing.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>',
            "format_not_allowed",
        ),
        Case(
            "prolog.svg",
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
            "format_not_allowed",
        ),
        Case(
            "doc.pdf", b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n", "format_not_allowed"
        ),
        Case("layers.psd", b"8BPS\x00\x01" + b"\0" * 40, "format_not_allowed"),
        Case("inner.zip", zip_bytes({"a.jpg": good_jpeg}), "nested_archive"),
        Case("inner.tar", tar_bytes({"a.jpg": good_jpeg}), "nested_archive"),
        Case("inner.gz", gzip.compress(good_jpeg), "nested_archive"),
        Case("icon.ico", encode(Image.new("RGB", (16, 16), (1, 2, 3)), "ICO"), "not_an_image"),
        Case(
            "bomb-10gpx.png",
            raw_png(100_000, 100_000, idat=zlib.compress(b"\0" * 64)),
            "too_many_pixels",
        ),
        Case(
            "bomb-over-budget.png",
            raw_png(10_000, 7_000, idat=zlib.compress(b"\0" * 64)),
            "too_many_pixels",
        ),
        Case("bomb-sof.jpg", jpeg_with_size(60_000, 60_000), "too_many_pixels"),
        Case("bad-crc.png", raw_png(8, 8, bad_crc=True), "corrupt"),
        Case("zero-width.png", raw_png(0, 8), "corrupt"),
        Case("bad-idat.png", raw_png(8, 8, idat=b"not zlib at all"), "corrupt"),
        Case(
            "text-bomb.png",
            raw_png(8, 8, extra=_chunk(b"zTXt", b"k\0\0" + zlib.compress(b"A" * 50_000_000))),
            "corrupt",
        ),
    ]
    return tuple(cases)


def mutations(seed: int, count: int) -> list[tuple[str, bytes]]:
    """Valid files with random bytes flipped, cut or duplicated (fuzzing corpus)."""
    rng = np.random.default_rng(seed)
    sources = [c.data for c in good_cases()]
    out = []
    for i in range(count):
        data = bytearray(sources[i % len(sources)])
        action = i % 3
        if action == 0:
            for _ in range(int(rng.integers(1, 8))):
                data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        elif action == 1:
            data = data[: int(rng.integers(1, len(data)))]
        else:
            a = int(rng.integers(0, len(data)))
            data = data[:a] + data[a : a + 40] * 3 + data[a:]
        out.append((f"mutant-{i}", bytes(data)))
    return out
