"""Decode untrusted image bytes into RGB arrays, or fail with a stable error code.

Rules (engineering notes §7): only allow-listed formats are opened (EPS would run
Ghostscript; SVG/PDF are not raster images); ``Image.open`` is lazy, so ``load()`` runs inside
the error boundary; decompression bombs are errors, judged against our own pixel budget before
any pixel is decoded; EXIF orientation is applied; 16-bit, CMYK, palette, alpha and greyscale
images are converted properly; animated and multi-page images give their first frame.

Coordinate frame: ``DecodedImage.width``/``height`` are the EXIF-oriented original size. With
``target_size`` a JPEG may be decoded at a reduced DCT scale (draft mode, ~3x faster); then
``array`` is smaller and ``scale`` (original px per array px) maps array coordinates back.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from shared.errors import InvalidInput, Unsupported

ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM")

# Formats we recognise by their magic bytes and refuse on purpose.
_REFUSED_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%!PS", "EPS/PostScript"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"%PDF", "PDF"),
    (b"8BPS", "PSD"),
    (b"<svg", "SVG"),
    (b"<?xml", "XML/SVG"),
)
_ARCHIVE_SIGNATURES: tuple[bytes, ...] = (
    b"PK\x03\x04",  # zip
    b"\x1f\x8b",  # gzip
    b"BZh",  # bzip2
    b"\xfd7zXZ\x00",  # xz
    b"7z\xbc\xaf",
    b"Rar!",
)
_TAR_MAGIC_OFFSET = 257  # "ustar" sits in the first header block, not at offset 0

_ORIENTATION_TAG = 0x0112


class ImageDecodeError(InvalidInput):
    """A file that cannot become an image; ``code`` is stable, ``message`` is for people.

    Codes of a broken image: ``corrupt``, ``truncated``, ``too_many_pixels``; the others are
    raised as :class:`UnsupportedImageError`.
    """


class UnsupportedImageError(ImageDecodeError, Unsupported):
    """Not an image roisearch accepts, rather than a broken one: ``empty_file``,
    ``not_an_image``, ``format_not_allowed``, ``nested_archive``."""


@dataclass(frozen=True)
class DecodedImage:
    """array: RGB uint8 [h, w, 3]; width/height: oriented original size in pixels."""

    array: np.ndarray
    width: int
    height: int
    format: str

    @property
    def scale(self) -> float:
        """Original pixels per array pixel (1.0 unless decoded in draft mode)."""
        return self.width / self.array.shape[1]


def _sniff_refused(data: bytes) -> str | None:
    head = data[:512].lstrip()
    for magic, label in _REFUSED_SIGNATURES:
        if head.startswith(magic):
            if magic == b"<?xml" and b"<svg" not in data[:4096]:
                return None
            return label
    return None


def _claimed_format(data: bytes) -> str | None:
    """The allowed format whose signature ``data`` starts with (Pillow's own checks)."""
    prefix = data[:16]
    for fmt in ALLOWED_FORMATS:
        entry = Image.OPEN.get(fmt)
        accept = entry[1] if entry is not None else None
        result = accept(prefix) if accept is not None else False
        if result and not isinstance(result, str):
            return fmt
    return None


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow mode → RGB uint8 without saturating high-bit-depth images."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        wide = np.asarray(im).astype(np.float64)
        # I;16 is 16-bit by definition (a dark 16-bit image stays dark); mode I does not say
        # its depth, so values above 255 are taken as 16-bit data.
        top = 65535.0 if mode != "I" or wide.max(initial=0) > 255 else 255.0
        grey = np.clip(np.rint(wide * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        grey = np.clip(np.rint(np.asarray(im, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        # Transparent pixels become white, as an image viewer shows them.
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8).copy()


def decode_image(
    data: bytes, *, name: str, max_pixels: int, target_size: int | None = None
) -> DecodedImage:
    """Decode ``data`` (the file named ``name``, used in messages) or raise ImageDecodeError.

    ``target_size``: the model's input long side; a much larger JPEG is decoded at the
    smallest DCT scale that still covers it (never below ``target_size``).
    """
    if not data:
        raise UnsupportedImageError("empty_file", f"{name} is empty (0 bytes)")
    refused = _sniff_refused(data)
    if refused:
        raise UnsupportedImageError(
            "format_not_allowed", f"{name} is {refused}, which roisearch does not open"
        )
    if (
        any(data.startswith(sig) for sig in _ARCHIVE_SIGNATURES)
        or data[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + 5] == b"ustar"
    ):
        raise UnsupportedImageError("nested_archive", f"{name} is an archive, not an image")
    try:
        with warnings.catch_warnings():
            # Our budget (checked below with the real size) decides, not Pillow's fixed
            # 89,478,485: its warning would refuse images the configured budget allows, and
            # quote its own limit instead of ours.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im: Image.Image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            fmt = im.format or "unknown"
            w0, h0 = im.size
            if w0 < 1 or h0 < 1:
                raise ImageDecodeError("corrupt", f"{name} declares an empty {w0}x{h0} image")
            if w0 * h0 > max_pixels:
                raise ImageDecodeError(
                    "too_many_pixels",
                    f"{name} is {w0}x{h0} = {w0 * h0:,} pixels, over the budget of "
                    f"{max_pixels:,} (possible decompression bomb)",
                )
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)
            orientation = im.getexif().get(_ORIENTATION_TAG, 1)
            if target_size and fmt in ("JPEG", "MPO") and max(w0, h0) >= 2 * target_size:
                scale = target_size / max(w0, h0)
                im.draft("RGB", (max(1, round(w0 * scale)), max(1, round(h0 * scale))))
            ImageFile.LOAD_TRUNCATED_IMAGES = False
            im.load()
            if orientation != 1:  # exif_transpose copies the image even when upright
                im = ImageOps.exif_transpose(im) or im
            array = _to_rgb(im)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        claimed = _claimed_format(data)
        if claimed is not None:
            # Pillow gives up on a broken header with the same error as on a text file.
            raise ImageDecodeError(
                "corrupt", f"{name} starts like a {claimed} file but its header cannot be read"
            ) from None
        raise UnsupportedImageError(
            "not_an_image",
            f"{name} is not an image in an allowed format ({', '.join(ALLOWED_FORMATS)})",
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's hard stop (twice its limit) comes before the size is known to us.
        raise ImageDecodeError(
            "too_many_pixels",
            f"{name} is over the budget of {max_pixels:,} pixels (possible decompression bomb)",
        ) from None
    except MemoryError:
        raise ImageDecodeError("too_many_pixels", f"{name} needs too much memory") from None
    except Exception as exc:
        # Pillow's plugins raise many exception types on hostile input (OSError, SyntaxError,
        # ValueError, struct.error when a header ends early, ...): all are per-item errors.
        text = str(exc) or type(exc).__name__
        short = isinstance(exc, EOFError | struct.error) or "truncated" in text
        code = "truncated" if short else "corrupt"
        raise ImageDecodeError(code, f"{name} could not be decoded: {text}") from None
    width, height = (h0, w0) if orientation in (5, 6, 7, 8) else (w0, h0)
    return DecodedImage(array=array, width=width, height=height, format=fmt)
