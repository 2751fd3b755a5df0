"""Calibration fitted on validation by NLL, per TTA mode: a softmax temperature (Guo et al., 2017) and one
logit offset per class, for a model whose predicted class frequencies drift from the data's."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from fer_model.tta import average_probabilities


def nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float,
        class_bias: tuple[float, ...] | None = None) -> float:
    """Mean negative log-likelihood of `labels` under the view-averaged probabilities of (views, N, K) logits."""
    return mean_nll(average_probabilities(logits, temperature, class_bias), labels).item()


def mean_nll(probabilities: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.nll_loss(probabilities.clamp_min(1e-12).log(), labels)


def fit_calibration(logits: torch.Tensor, labels: torch.Tensor,
                    class_bias: bool = True) -> tuple[float, tuple[float, ...] | None]:
    """The temperature, and with `class_bias` the per-class offsets (summing to 0), that minimise `nll`
    of (views, N, K) logits; L-BFGS on log T, in float64."""
    logits = logits.double()
    log_temperature = torch.zeros((), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(logits.shape[-1], dtype=torch.float64, requires_grad=class_bias)
    optimizer = torch.optim.LBFGS([log_temperature, bias] if class_bias else [log_temperature],
                                  max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = mean_nll(average_probabilities(logits, log_temperature.exp(), bias if class_bias else None), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = round(log_temperature.exp().item(), 4)
    return temperature, tuple(round(b, 4) for b in (bias - bias.mean()).tolist()) if class_bias else None


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


def calibrate(recognizer, faces: torch.Tensor, labels: torch.Tensor, modes) -> tuple[dict, dict, dict]:
    """Fit the calibration of `recognizer`'s model on uint8 faces and their labels (validation) for every TTA
    mode of `modes`, and the uncertainty thresholds on the plain mode.

    Returns the metrics of each mode (after calibration, with `temperature`, `class_bias`, `accuracy_before`
    and `calibration_before`), the fitted calibration as config fields (`temperatures`, `class_biases`,
    `uncertainty`) and the full uncertainty report."""
    from .evaluate import collect_logits, score

    results, temperatures, biases, plain = {}, {}, {}, None
    for mode in modes:
        logits = collect_logits(recognizer, faces, mode)
        temperatures[mode], biases[mode] = fit_calibration(logits, labels)
        uncalibrated = score(logits, labels, recognizer.labels)
        results[mode] = {**score(logits, labels, recognizer.labels, temperatures[mode], biases[mode]),
                         "temperature": temperatures[mode], "class_bias": biases[mode],
                         "accuracy_before": uncalibrated["accuracy"], "calibration_before": uncalibrated["calibration"]}
        if mode == "none":
            plain = average_probabilities(logits, temperatures[mode], biases[mode])
    uncertainty = fit_uncertainty(plain, labels)
    fields = {"temperatures": temperatures, "class_biases": biases,
              "uncertainty": {k: uncertainty[k] for k in ("min_confidence", "min_margin")}}
    return results, fields, uncertainty
