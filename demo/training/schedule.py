"""Learning-rate schedule and the exponential moving average of the weights."""

from __future__ import annotations

import copy
import math
from typing import Generic, TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)


def learning_rate_factor(step: int, total: int, warmup: int, final: float = 0.05) -> float:
    """Multiplier of the base rate at ``step`` of ``total``: linear warm-up from 0 over
    ``warmup`` steps, then a half cosine from 1 down to ``final``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))


class WeightAverage(Generic[M]):
    """EMA of a model's parameters and buffers (BatchNorm statistics included).

    decay(u) = ``decay`` · (1 − exp(−u / ``ramp``)) after u updates: early on the average
    follows the model closely (its first weights are random and should be forgotten fast),
    later it averages over roughly 1 / (1 − decay) steps.
    """

    def __init__(self, model: M, decay: float = 0.999, ramp: float = 400.0) -> None:
        self.model: M = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.ramp = ramp
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.ramp))
        current = model.state_dict()
        for name, value in self.model.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(current[name].detach(), alpha=1 - d)
            else:
                value.copy_(current[name])
