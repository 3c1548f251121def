"""Target assignment: anchor-ratio matching and the neighbouring cells."""

from __future__ import annotations

import torch

from demo.training.targets import assign_targets, match_anchors, neighbour_cells


def test_anchor_matches_by_side_ratio() -> None:
    sizes = torch.tensor([[10.0, 10.0], [10.0, 45.0]])
    anchors = torch.tensor([[10.0, 10.0], [50.0, 50.0], [10.0, 40.0]])
    match = match_anchors(sizes, anchors, ratio_limit=4.0)
    # box 0: same as anchor 0; 5× smaller than anchor 1; 4× smaller in h than anchor 2 (not < 4)
    assert match[:, 0].tolist() == [True, False, False]
    # box 1: 4.5× taller than anchor 0; 5× narrower than anchor 1; close to anchor 2
    assert match[:, 1].tolist() == [False, False, True]


def test_neighbours_follow_the_nearer_edges() -> None:
    owner, xs, ys = neighbour_cells(torch.tensor([[2.3, 5.7]]), width=10, height=10)
    cells = sorted(zip(xs.tolist(), ys.tolist(), strict=True))
    assert cells == [(1, 5), (2, 5), (2, 6)]
    assert owner.tolist() == [0, 0, 0]


def test_no_neighbours_outside_the_grid() -> None:
    _, xs, ys = neighbour_cells(torch.tensor([[0.2, 0.3], [9.8, 9.6]]), width=10, height=10)
    assert sorted(zip(xs.tolist(), ys.tolist(), strict=True)) == [(0, 0), (9, 9)]


def test_assignment_offsets_and_sizes_in_cells() -> None:
    # one 20x20 box centred at (37, 85) px; level strides 8 and 16; anchors fit level 0 only
    targets = torch.tensor([[1, 3, 37.0, 85.0, 20.0, 20.0]])
    anchors = torch.tensor([[[18.0, 22.0], [200.0, 200.0]], [[300.0, 300.0], [400.0, 400.0]]])
    levels = assign_targets(targets, anchors, (8.0, 16.0), [(40, 40), (20, 20)])
    assert len(levels[1]) == 0
    pos = levels[0]
    assert len(pos) == 3  # centre (4.625, 10.625): home (4, 10) + right (5, 10) + down (4, 11)
    assert sorted(zip(pos.cell_x.tolist(), pos.cell_y.tolist(), strict=True)) == [
        (4, 10),
        (4, 11),
        (5, 10),
    ]
    assert pos.image.tolist() == [1, 1, 1] and pos.classes.tolist() == [3, 3, 3]
    assert pos.anchor.tolist() == [0, 0, 0]
    centre = torch.tensor([37.0, 85.0]) / 8
    cells = torch.stack([pos.cell_x, pos.cell_y], 1).float()
    assert torch.allclose(pos.offset + cells, centre.expand(3, 2))
    assert ((pos.offset > -0.5) & (pos.offset < 1.5)).all()
    assert torch.allclose(pos.size, torch.tensor([2.5, 2.5]).expand(3, 2))
    assert torch.allclose(pos.anchor_size, torch.tensor([18.0, 22.0]).expand(3, 2) / 8)


def test_a_box_may_go_to_several_anchors_and_levels() -> None:
    targets = torch.tensor([[0, 0, 100.0, 100.0, 40.0, 40.0]])
    anchors = torch.tensor([[[30.0, 30.0], [45.0, 40.0]], [[60.0, 60.0], [500.0, 500.0]]])
    levels = assign_targets(targets, anchors, (8.0, 16.0), [(40, 40), (20, 20)])
    assert set(levels[0].anchor.tolist()) == {0, 1}
    assert set(levels[1].anchor.tolist()) == {0}


def test_no_targets_gives_empty_levels() -> None:
    anchors = torch.ones(3, 3, 2) * 10
    levels = assign_targets(torch.zeros(0, 6), anchors, (8.0, 16.0, 32.0), [(4, 4)] * 3)
    assert [len(level) for level in levels] == [0, 0, 0]
