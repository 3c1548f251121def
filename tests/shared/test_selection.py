"""The selection vocabulary: names given by callers, the one class-name resolution."""

from __future__ import annotations

import pytest

from shared.errors import InvalidInput
from shared.selection import Selection, SelectionError, resolve_classes, split_names


def test_split_names_takes_repeats_and_commas() -> None:
    assert split_names(["car, cat", "dog", " ", ""]) == ("car", "cat", "dog")
    assert split_names(None) == ()


def test_classes_resolve_by_name_or_id_to_sorted_unique_ids() -> None:
    names = ("cat", "dog", "car")
    assert resolve_classes(names, ["car", "0", "cat"]) == (0, 2)
    assert resolve_classes(names, []) == ()


def test_unknown_classes_are_named_with_the_space_classes() -> None:
    names = tuple(f"c{i}" for i in range(40))
    with pytest.raises(SelectionError) as info:
        resolve_classes(names, ["c1", "zebra", "40"])
    error = info.value
    assert isinstance(error, InvalidInput) and error.code == "unknown_class"
    assert "'zebra'" in error.message and "'40'" in error.message
    assert "this space has 40 classes: c0, c1," in error.message
    assert "c29, … (10 more)" in error.message and "c30" not in error.message
    assert error.details == {"unknown": ["zebra", "40"], "classes": list(names)}


def test_only_metadata_restrictions_narrow_the_candidates() -> None:
    assert not Selection().restricts_candidates
    assert not Selection(min_similarity=0.5, space_id=3).restricts_candidates
    assert Selection(classes=("cat",)).restricts_candidates
    assert Selection(min_score=0.0).restricts_candidates
    assert Selection(ingestions=(1,)).restricts_candidates
    assert Selection(min_box_side=4.0).restricts_candidates
