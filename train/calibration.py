"""Temperature scaling (Guo et al., 2017): one softmax temperature per TTA mode, fitted on validation by NLL."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fer_model.tta import average_probabilities


def nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> float:
    """Mean negative log-likelihood of `labels` under the view-averaged probabilities of (views, N, K) logits."""
    probabilities = average_probabilities(logits, temperature)
    return F.nll_loss(probabilities.clamp_min(1e-12).log(), labels).item()


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, low: float = 0.05, high: float = 20.0,
                    iterations: int = 60) -> float:
    """The temperature in [low, high] that minimises `nll`, by golden-section search on log T (NLL is
    unimodal in T for one view and in practice for averaged views)."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = math.log(low), math.log(high)
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(logits, labels, math.exp(c)), nll(logits, labels, math.exp(d))
    for _ in range(iterations):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(logits, labels, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(logits, labels, math.exp(d))
    return round(math.exp((a + b) / 2), 4)
