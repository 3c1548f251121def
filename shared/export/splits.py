"""Train/validation/test split by image, deterministic from a seed.

Each image id gets a uniform draw ``u = unit_interval(image_id, seed)`` (a keyed hash, see
:mod:`shared.reports.sampling`); the image and **all** its objects go to ``train`` if
``u < f_train``, to ``val`` if ``u < f_train + f_val``, else to ``test``. The split never
depends on which other images exist or on the order they are read in, so an image stays in its
split as the collection grows; the split sizes match the fractions in expectation (by images,
not exactly, and not by objects).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shared.reports.errors import ReportError
from shared.reports.sampling import unit_interval

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class SplitSpec:
    """Fractions (train, val, test), summing to 1, and the seed."""

    fractions: tuple[float, float, float]
    seed: int = 0

    @classmethod
    def parse(cls, text: str, seed: int = 0) -> SplitSpec:
        """``"0.8,0.1,0.1"`` or ``"80,10,10"`` (normalised); two values mean no test split."""
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ReportError(
                "invalid_split",
                f"split {text!r} must be two or three comma-separated numbers (train,val[,test])",
            ) from None
        if len(values) not in (2, 3):
            raise ReportError(
                "invalid_split",
                f"split {text!r} must have two or three parts (train,val[,test]), "
                f"not {len(values)}",
            )
        if any(not math.isfinite(v) or v < 0 for v in values) or sum(values) <= 0:
            raise ReportError(
                "invalid_split", f"split {text!r}: parts must be non-negative with a positive sum"
            )
        values += [0.0] * (3 - len(values))
        total = sum(values)
        return cls(fractions=(values[0] / total, values[1] / total, values[2] / total), seed=seed)

    def assign(self, image_ids: np.ndarray) -> np.ndarray:
        """int8 [n] split index (0 train, 1 val, 2 test) of int [n] ``image_ids``."""
        u = unit_interval(image_ids.astype(np.int64), self.seed)
        train, val, _ = self.fractions
        return np.where(u < train, 0, np.where(u < train + val, 1, 2)).astype(np.int8)

    def describe(self) -> dict[str, object]:
        return {
            "by": "image",
            "fractions": dict(zip(SPLIT_NAMES, self.fractions, strict=True)),
            "seed": self.seed,
        }


def split_index(name: str) -> int:
    """``train``/``val``/``test`` → 0/1/2; anything else is an ``invalid_split`` error."""
    if name not in SPLIT_NAMES:
        raise ReportError(
            "invalid_split", f"unknown split part {name!r}; use one of {', '.join(SPLIT_NAMES)}"
        )
    return SPLIT_NAMES.index(name)
