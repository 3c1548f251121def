"""Write ``.npy`` files row by row: header first, rows appended, nothing held in memory.

The NPY format (version 1.0) is a magic string, a little-endian uint16 header length and a
Python-literal header dict (``descr``, ``fortran_order``, ``shape``) padded with spaces and a
newline so that the data starts on a 64-byte boundary, then the raw C-order data.

Streams whose row count is known up front use :func:`npy_header`. Files use
:class:`NpyFileWriter`, which reserves a header wide enough for any row count and rewrites it
with the real count on close (padding spaces are allowed by the format).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import numpy as np

MAGIC = b"\x93NUMPY\x01\x00"
ALIGN = 64
# Header room for a row count of up to 20 digits (any int64).
_WIDEST_COUNT = 10**19


def npy_header(dtype: np.dtype, shape: tuple[int, ...], *, min_length: int = 0) -> bytes:
    """The NPY 1.0 header for a C-order array; at least ``min_length`` bytes long."""
    shape_text = repr(tuple(int(n) for n in shape))  # "(3, 4)", "(3,)", "()" as numpy writes
    text = f"{{'descr': {np.lib.format.dtype_to_descr(dtype)!r}, 'fortran_order': False, "
    text += f"'shape': {shape_text}, }}"
    length = len(MAGIC) + 2 + len(text) + 1
    total = max(length, min_length)
    total += -total % ALIGN
    padded = text + " " * (total - length) + "\n"
    return MAGIC + (len(padded)).to_bytes(2, "little") + padded.encode("latin1")


class NpyFileWriter:
    """Append rows of shape ``row_shape`` and dtype ``dtype`` to ``path``; count fixed on close."""

    def __init__(self, path: Path, dtype: np.dtype | type, row_shape: tuple[int, ...]) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(row_shape)
        self.rows = 0
        self._reserved = len(npy_header(self.dtype, (_WIDEST_COUNT, *self.row_shape)))
        self._file = path.open("wb")
        self._file.write(npy_header(self.dtype, (0, *self.row_shape), min_length=self._reserved))

    def append(self, rows: np.ndarray) -> None:
        """Rows ``[n, *row_shape]`` (converted to the writer's dtype)."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.row_shape:
            raise ValueError(f"rows of shape {rows.shape[1:]} given; {self.row_shape} expected")
        self._file.write(rows.tobytes())
        self.rows += rows.shape[0]

    def close(self) -> None:
        if self._file.closed:
            return
        header = npy_header(self.dtype, (self.rows, *self.row_shape), min_length=self._reserved)
        assert len(header) == self._reserved
        self._file.seek(0)
        self._file.write(header)
        self._file.close()

    def __enter__(self) -> NpyFileWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
