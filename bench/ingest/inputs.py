"""The benchmark's input folders: generated photo-like JPEGs or the demo archive's scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def photo(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(9, 16, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, width - 60)), int(rng.integers(0, height - 60))
        w, h = int(rng.integers(40, width // 4)), int(rng.integers(40, height // 4))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        box = (x0, y0, min(width - 1, x0 + w), min(height - 1, y0 + h))
        if rng.random() < 0.5:
            draw.rectangle(box, fill=colour)
        else:
            draw.ellipse(box, fill=colour)
    noisy = np.asarray(image, np.int16) + rng.integers(-6, 7, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def make_folder(
    directory: Path, count: int, size: tuple[int, int], seed: int, source: str = "photos"
) -> Path:
    """``count`` JPEGs: ``photos`` of ``size`` (quality 90), or ``demo`` scenes (the bundled
    generator's, as ``roisearch demo-data`` writes them: 200–320 px, their own quality;
    ``size`` is not used)."""
    from demo.scenes import encode_jpeg, generate_scene

    directory.mkdir(parents=True)
    for i in range(count):
        target = directory / f"{i:05d}.jpg"
        if source == "demo":
            scene = generate_scene(seed, i)
            target.write_bytes(encode_jpeg(scene.image, scene.jpeg_quality))
        else:
            photo(*size, seed * 100_000 + i).save(target, quality=90)
    return directory


def describe(source: str, size: tuple[int, int]) -> str:
    return "demo scenes (200-320 px)" if source == "demo" else f"JPEGs {size[0]}x{size[1]}"
