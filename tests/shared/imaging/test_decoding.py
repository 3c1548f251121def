"""decode_image on a generated corpus: awkward valid images decode to the right pixels, broken
and hostile files fail with their stable error code, and nothing else ever escapes."""

from __future__ import annotations

import pytest

from shared.imaging.decoding import ImageDecodeError, decode_image
from tests.shared.imaging.corpus import Case, bad_cases, good_cases, jpeg, mutations

BUDGET = 60_000_000

GOOD = good_cases()
BAD = bad_cases()


def test_the_corpus_is_large_enough() -> None:
    assert len(BAD) >= 20
    assert len({c.code for c in BAD}) >= 7
    assert len(GOOD) >= 15


@pytest.mark.parametrize("case", GOOD, ids=[c.name for c in GOOD])
def test_valid_images_decode_to_the_right_pixels(case: Case) -> None:
    decoded = decode_image(case.data, name=case.name, max_pixels=BUDGET)
    assert case.check is not None
    case.check(decoded.array, decoded.width, decoded.height)
    assert decoded.array.flags.c_contiguous
    assert decoded.scale == 1.0


@pytest.mark.parametrize("case", BAD, ids=[c.name for c in BAD])
def test_bad_files_fail_with_their_code(case: Case) -> None:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(case.data, name=case.name, max_pixels=BUDGET)
    assert info.value.code == case.code, info.value.message
    # The message names the item, for people reading the failed-items list.
    assert case.name in info.value.message


def test_pixel_budget_is_ours_not_pillows() -> None:
    data = jpeg(64, 48, 5)
    assert decode_image(data, name="ok.jpg", max_pixels=64 * 48).width == 64
    with pytest.raises(ImageDecodeError) as info:
        decode_image(data, name="big.jpg", max_pixels=64 * 48 - 1)
    assert info.value.code == "too_many_pixels"


@pytest.mark.parametrize("case", [c for c in BAD if c.name.startswith("bomb")], ids=str)
def test_bomb_messages_quote_the_configured_budget(case: Case) -> None:
    """Issue 19.8: messages quoted Pillow's limit (89,478,485 px), not ours."""
    with pytest.raises(ImageDecodeError) as info:
        decode_image(case.data, name=case.name, max_pixels=BUDGET)
    assert f"{BUDGET:,}" in info.value.message
    assert "89,478,485" not in info.value.message and "89478485" not in info.value.message


def test_large_jpeg_is_decoded_at_reduced_scale_with_original_size() -> None:
    decoded = decode_image(jpeg(2000, 1000, 6), name="big.jpg", max_pixels=BUDGET, target_size=256)
    assert (decoded.width, decoded.height) == (2000, 1000)
    # Draft mode picks the smallest DCT scale still covering the target (1/4 here).
    assert decoded.array.shape == (250, 500, 3)
    assert decoded.scale == 4.0
    small = decode_image(jpeg(300, 200, 6), name="small.jpg", max_pixels=BUDGET, target_size=256)
    assert small.array.shape == (200, 300, 3) and small.scale == 1.0


def test_mutated_files_never_raise_anything_but_decode_errors() -> None:
    outcomes: dict[str, int] = {}
    for name, data in mutations(seed=11, count=240):
        try:
            decoded = decode_image(data, name=name, max_pixels=BUDGET)
        except ImageDecodeError as exc:
            assert exc.code in {"truncated", "corrupt", "not_an_image", "too_many_pixels"}, exc
            outcomes[exc.code] = outcomes.get(exc.code, 0) + 1
        else:
            assert decoded.array.ndim == 3 and decoded.array.shape[2] == 3
            outcomes["decoded"] = outcomes.get("decoded", 0) + 1
    # The fuzzing really exercised both paths.
    assert outcomes.get("decoded", 0) > 10 and sum(outcomes.values()) - outcomes["decoded"] > 50
