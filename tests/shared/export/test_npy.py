"""NPY headers and the row-appending file writer."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from shared.export.npy import NpyFileWriter, npy_header


@pytest.mark.parametrize(
    ("dtype", "shape"),
    [("<f4", (5, 3)), ("<i8", (7,)), ("<f8", (2, 4)), ("<f4", (0, 16)), ("<U5", (3,))],
)
def test_header_then_raw_data_is_what_numpy_reads(dtype: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    if dtype.startswith("<U"):
        array = np.array(["cat", "horse", "x"], dtype=dtype)
    else:
        array = rng.normal(size=shape).astype(dtype)
    header = npy_header(array.dtype, array.shape)
    assert len(header) % 64 == 0
    loaded = np.load(io.BytesIO(header + array.tobytes()), allow_pickle=False)
    assert loaded.dtype == array.dtype and np.array_equal(loaded, array)


def test_file_writer_fixes_the_count_on_close(tmp_path: Path) -> None:
    path = tmp_path / "v.npy"
    parts = [np.random.default_rng(i).normal(size=(n, 4)) for i, n in enumerate((3, 0, 5))]
    with NpyFileWriter(path, np.float32, (4,)) as writer:
        for part in parts:
            writer.append(part)
    loaded = np.load(path)
    assert loaded.shape == (8, 4) and loaded.dtype == np.float32
    assert np.array_equal(loaded, np.vstack(parts).astype(np.float32))
    assert np.load(path, mmap_mode="r").shape == (8, 4)


def test_empty_file_and_wrong_rows(tmp_path: Path) -> None:
    with (
        NpyFileWriter(tmp_path / "e.npy", np.int64, ()) as writer,
        pytest.raises(ValueError, match="expected"),
    ):
        writer.append(np.zeros((2, 3)))
    assert np.load(tmp_path / "e.npy").shape == (0,)
