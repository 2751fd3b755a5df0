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


def fit_uncertainty(probabilities: torch.Tensor, labels: torch.Tensor, band: float = 0.1, min_count: int = 30) -> dict:
    """Thresholds below which a prediction is more often wrong than right: the largest top probability
    (`min_confidence`) and the largest gap between the top two (`min_margin`) whose band just below
    (`band` wide, at least `min_count` faces) is correct at most half of the time. Also reports how
    many faces the two together flag and how accurate the flagged and the other faces are."""
    top2 = probabilities.topk(2, dim=1).values
    correct = (probabilities.argmax(1) == labels).float()
    limits = {}
    for name, value in (("min_confidence", top2[:, 0]), ("min_margin", top2[:, 0] - top2[:, 1])):
        ok = [0.0]
        for t in torch.arange(0.02, 1.0, 0.01).tolist():
            inside = (value >= t - band) & (value < t)
            if inside.sum() >= min_count and correct[inside].mean() <= 0.5:
                ok.append(round(t, 2))
        limits[name] = max(ok)
    flagged = (top2[:, 0] < limits["min_confidence"]) | (top2[:, 0] - top2[:, 1] < limits["min_margin"])
    report = {"flagged_fraction": float(flagged.float().mean()),
              "accuracy_flagged": float(correct[flagged].mean()) if flagged.any() else None,
              "accuracy_not_flagged": float(correct[~flagged].mean()) if (~flagged).any() else None}
    return {**limits, **report}
