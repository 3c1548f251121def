"""The detection loss: CIoU values, which slots it trains, and that it can be minimised."""

from __future__ import annotations

import torch

from demo.training.loss import LossWeights, ciou, detection_loss


def test_ciou_of_identical_boxes_is_one() -> None:
    boxes = torch.tensor([[5.0, 5.0, 2.0, 3.0], [0.0, 0.0, 1.0, 1.0]])
    assert torch.allclose(ciou(boxes, boxes), torch.ones(2), atol=1e-5)


def test_ciou_penalises_distance_and_shape() -> None:
    target = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    near = ciou(torch.tensor([[0.5, 0.0, 2.0, 2.0]]), target)
    far = ciou(torch.tensor([[1.5, 0.0, 2.0, 2.0]]), target)
    disjoint = ciou(torch.tensor([[5.0, 0.0, 2.0, 2.0]]), target)
    assert 1 > near > far > 0 > disjoint
    # same IoU-ish overlap, wrong aspect costs extra
    square = ciou(torch.tensor([[0.0, 0.0, 2.0, 2.0]]) * 1.0, torch.tensor([[0.0, 0.0, 2.0, 2.0]]))
    stretched = ciou(torch.tensor([[0.0, 0.0, 4.0, 1.0]]), torch.tensor([[0.0, 0.0, 2.0, 2.0]]))
    assert stretched < square


def _raws(batch: int = 2, nc: int = 3, requires_grad: bool = True) -> list[torch.Tensor]:
    torch.manual_seed(0)
    shapes = [(batch, 2, 8, 8, nc + 5), (batch, 2, 4, 4, nc + 5)]
    return [(torch.randn(s) * 0.1).requires_grad_(requires_grad) for s in shapes]


ANCHORS = torch.tensor([[[8.0, 8.0], [16.0, 12.0]], [[24.0, 24.0], [40.0, 40.0]]])
STRIDES = (8.0, 16.0)


def test_box_and_class_gradients_reach_only_assigned_slots() -> None:
    raws = _raws()
    targets = torch.tensor([[1, 2, 21.0, 27.0, 9.0, 9.0]])  # centre (2.625, 3.375) cells
    loss, parts = detection_loss(raws, targets, ANCHORS, STRIDES)
    loss.backward()
    assert parts.positives > 0
    grad = raws[0].grad
    assert grad is not None
    # image 0 has no object: only objectness is trained there
    assert grad[0, ..., :4].abs().sum() == 0 and grad[0, ..., 5:].abs().sum() == 0
    assert grad[0, ..., 4].abs().sum() > 0
    # image 1: box/class gradients exactly on the assigned cells of anchor 0 (9x9 fits 8x8)
    touched = grad[1, ..., :4].abs().sum(-1).nonzero().tolist()
    assert sorted(touched) == [[0, 2, 2], [0, 3, 2], [0, 3, 3], [1, 2, 2], [1, 3, 2], [1, 3, 3]]


def test_empty_image_batch_trains_objectness_only() -> None:
    raws = _raws()
    loss, parts = detection_loss(raws, torch.zeros(0, 6), ANCHORS, STRIDES)
    assert parts.positives == 0 and parts.box == 0 and parts.classes == 0
    assert loss > 0


def test_loss_can_be_driven_down() -> None:
    raws = _raws()
    targets = torch.tensor([[0, 1, 20.0, 28.0, 9.0, 9.0], [1, 0, 40.0, 30.0, 30.0, 26.0]])
    optimiser = torch.optim.Adam(raws, lr=0.05)
    losses = []
    for _ in range(30):
        loss, _ = detection_loss(raws, targets, ANCHORS, STRIDES, LossWeights())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
