"""Deterministic train/val/test split by image."""

from __future__ import annotations

import numpy as np
import pytest

from shared.export.splits import SplitSpec, split_index
from shared.reports.errors import ReportError


def test_parse_normalises_and_accepts_two_parts() -> None:
    assert SplitSpec.parse("80,10,10").fractions == pytest.approx((0.8, 0.1, 0.1))
    assert SplitSpec.parse("0.9, 0.1", seed=3) == SplitSpec((0.9, 0.1, 0.0), seed=3)


@pytest.mark.parametrize("text", ["", "0.8", "a,b", "1,2,3,4", "-1,2", "0,0,0", "nan,1"])
def test_bad_splits_are_named(text: str) -> None:
    with pytest.raises(ReportError) as info:
        SplitSpec.parse(text)
    assert info.value.code == "invalid_split" and repr(text) in info.value.message


def test_assignment_is_per_image_deterministic_and_proportional() -> None:
    spec = SplitSpec.parse("0.7,0.2,0.1", seed=11)
    images = np.arange(1, 20_001)
    parts = spec.assign(images)
    assert np.array_equal(parts, spec.assign(images))
    shuffled = np.random.default_rng(0).permutation(images)
    assert np.array_equal(spec.assign(shuffled), parts[shuffled - 1])  # order does not matter
    shares = np.bincount(parts, minlength=3) / images.size
    assert shares == pytest.approx([0.7, 0.2, 0.1], abs=0.015)
    other = SplitSpec.parse("0.7,0.2,0.1", seed=12).assign(images)
    assert (other != parts).mean() > 0.3


def test_split_index() -> None:
    assert [split_index(n) for n in ("train", "val", "test")] == [0, 1, 2]
    with pytest.raises(ReportError):
        split_index("holdout")
