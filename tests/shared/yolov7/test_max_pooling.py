"""The shifted-view max-pools give exactly ``nn.MaxPool2d``'s values."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from shared.yolov7.layers import MP, SP, SPPCSPC, DownC
from shared.yolov7.max_pooling import MaxPool, max_pool_same, max_pool_strided

SHAPES = [(1, 8, 12, 20), (2, 3, 7, 11), (1, 4, 1, 1), (1, 2, 5, 3), (3, 1, 16, 16)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("k", [1, 3, 5, 9, 13, 2, 4])
def test_same_padding_pool_equals_torch(shape: tuple[int, int, int, int], k: int) -> None:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(k))
    expected = F.max_pool2d(x, k, 1, k // 2)
    got = max_pool_same(x, k)
    assert got.shape == expected.shape
    assert torch.equal(got, expected)


# MaxPool2d refuses a window larger than the input: only the shapes it accepts
STRIDED = [(shape, k) for shape in SHAPES for k in (1, 2, 3) if min(shape[-2:]) >= k]


@pytest.mark.parametrize(("shape", "k"), STRIDED)
def test_strided_pool_equals_torch(shape: tuple[int, int, int, int], k: int) -> None:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(10 + k))
    expected = F.max_pool2d(x, k, k)
    got = max_pool_strided(x, k)
    assert got.shape == expected.shape  # odd sizes drop the last row/column like torch
    assert torch.equal(got, expected)


def test_ties_infinities_and_nan_match_torch() -> None:
    x = torch.zeros(1, 2, 9, 9)
    x[0, 0, 4, 4] = float("nan")
    x[0, 1, 0, 0] = float("-inf")
    x[0, 1, 8, 8] = float("inf")
    for got, expected in (
        (max_pool_same(x, 5), F.max_pool2d(x, 5, 1, 2)),
        (max_pool_strided(x, 2), F.max_pool2d(x, 2, 2)),
    ):
        assert torch.equal(got.isnan(), expected.isnan())
        assert torch.equal(got.nan_to_num(0.5), expected.nan_to_num(0.5))


def test_half_precision_pads_with_minus_infinity() -> None:
    # all-negative input: a zero pad would win at the borders
    x = -torch.rand(1, 2, 6, 6).half() - 1
    assert torch.equal(max_pool_same(x, 5), F.max_pool2d(x.float(), 5, 1, 2).half())


def test_layers_use_the_fast_pools_and_keep_their_state_dict_keys() -> None:
    sppcspc = SPPCSPC(8, 8)
    assert all(isinstance(m, MaxPool) and m.stride == 1 for m in sppcspc.m)
    assert not any(".m." in key for key in sppcspc.state_dict())  # pools have no tensors
    mp, sp = MP().m, SP(5).m
    assert isinstance(mp, MaxPool) and (mp.k, mp.stride) == (2, 2)
    assert isinstance(sp, MaxPool) and (sp.k, sp.stride) == (5, 1)
    assert isinstance(SP(3, 2).m, torch.nn.MaxPool2d)  # a strided SP keeps torch's pool
    x = torch.randn(1, 8, 10, 14)
    assert torch.equal(SP(13)(x), F.max_pool2d(x, 13, 1, 6))
    assert torch.equal(MP()(x), F.max_pool2d(x, 2, 2))
    down = DownC(8, 16).eval()
    assert isinstance(down.mp, MaxPool) and down.mp.stride == 2
    assert down(x).shape == (1, 16, 5, 7)


def test_a_stride_other_than_one_or_the_window_is_refused() -> None:
    with pytest.raises(ValueError, match="stride must be 1 or the window"):
        MaxPool(3, stride=2)
