"""Calibration fitted to labelled faces: a softmax temperature (Guo et al., 2017) and one logit offset per class
for each TTA mode, and the uncertainty thresholds; how much of it to fit is chosen from how much data there is.

    fields, report = choose_calibration({"none": logits, "flip": ...}, labels, num_classes, base=model.calibration)

| faces to fit on | what is fitted (`Fitted.method`) |
| --- | --- |
| >= 500, every class >= 30 | `full`: temperature, class offsets (within ±5) and thresholds |
| >= 50, >= 2 classes | `regularised`: temperature in 0.5-5, class offsets within ±1 |
| >= 50, one class | `temperature`: a temperature in 0.5-5 alone |
| fewer | `base`: the base model's calibration, kept as it is (none without one) |

Thresholds are only fitted with `full`; otherwise, or where the fit finds none, the base model's are kept
(`DEFAULT_UNCERTAINTY` without one), so that they are never 0 by accident. Fitting needs torch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tta import average_probabilities

FULL = {"faces": 500, "per_class": 30, "temperature": (0.05, 20.0), "offset": 5.0}
REGULARISED = {"faces": 50, "temperature": (0.5, 5.0), "offset": 1.0}
TEMPERATURE = {"faces": 50, "temperature": (0.5, 5.0)}
DEFAULT_UNCERTAINTY = {"min_confidence": 0.5, "min_margin": 0.2}
"""Thresholds for a model with no base to take them from: near the shipped model's (0.53, and 0.23 to 0.30)."""


def calibration_metrics(probabilities, labels, num_bins: int = 15) -> dict:
    """ECE (bin-weighted |accuracy - confidence| of the top class over `num_bins` equal-width bins), NLL, Brier
    score, accuracy, mean confidence and the reliability bins of (N, K) probabilities."""
    p, y = np.asarray(probabilities, dtype=np.float64), np.asarray(labels)
    confidence, correct = p.max(1), (p.argmax(1) == y).astype(float)
    edges = np.linspace(0, 1, num_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, num_bins - 1)
    bins, ece = [], 0.0
    for b in range(num_bins):
        members = which == b
        count = int(members.sum())
        accuracy = float(correct[members].mean()) if count else None
        mean_confidence = float(confidence[members].mean()) if count else None
        if count:
            ece += count / len(y) * abs(accuracy - mean_confidence)
        bins.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": count,
                     "accuracy": accuracy, "confidence": mean_confidence})
    return {"ece": float(ece), "nll": float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean()),
            "brier": float(((p - np.eye(p.shape[1])[y]) ** 2).sum(1).mean()), "accuracy": float(correct.mean()),
            "mean_confidence": float(confidence.mean()), "bins": bins}


def nll(logits, labels, temperature: float = 1.0, class_bias=None) -> float:
    """Mean negative log-likelihood of `labels` under the view-averaged probabilities of (views, N, K) logits."""
    probabilities = np.asarray(average_probabilities(np.asarray(logits, dtype=np.float64), temperature, class_bias))
    return float(-np.log(np.clip(probabilities[np.arange(len(labels)), np.asarray(labels)], 1e-12, None)).mean())


def fit_calibration(logits, labels, class_bias: bool = True, temperature_range=FULL["temperature"],
                    offset_bound: float = FULL["offset"], weights=None) -> tuple[float, tuple[float, ...] | None]:
    """The temperature (within `temperature_range`) and, with `class_bias`, the per-class offsets (within
    ±`offset_bound`; returned centred on 0, which changes no probability) that minimise `nll` of (views, N, K)
    logits, each face counting its `weights` (default: equally); L-BFGS in float64 on smooth bounded parameters."""
    from ..errors import require

    torch = require("torch", "fitting a calibration")
    logits = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    weights = torch.ones(len(labels), dtype=torch.float64) if weights is None else torch.as_tensor(
        np.asarray(weights), dtype=torch.float64)
    low, high = np.log(temperature_range[0]), np.log(temperature_range[1])
    u = torch.full((), float(np.arctanh(-(low + high) / (high - low))), dtype=torch.float64, requires_grad=True)
    v = torch.zeros(logits.shape[-1], dtype=torch.float64, requires_grad=class_bias)

    def parameters():
        temperature = (low + (high - low) * (torch.tanh(u) + 1) / 2).exp()  # log T from low to high; T = 1 at u0
        bias = offset_bound * torch.tanh(v)
        return temperature, bias - bias.mean()

    optimizer = torch.optim.LBFGS([u, v] if class_bias else [u], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        temperature, bias = parameters()
        probabilities = average_probabilities(logits, temperature, bias if class_bias else None)
        loss = -(weights * probabilities.clamp_min(1e-12).log()[torch.arange(len(labels)), labels]).sum() / weights.sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature, bias = (t.detach() for t in parameters())
    return round(temperature.item(), 4), tuple(round(b, 4) for b in bias.tolist()) if class_bias else None


def fit_uncertainty(probabilities, labels, band: float = 0.1, min_count: int = 30) -> dict:
    """Thresholds below which a prediction is more often wrong than right: the largest top probability
    (`min_confidence`) and the largest gap between the top two (`min_margin`) whose band just below
    (`band` wide, at least `min_count` faces) is correct at most half of the time (0 where no band is).
    Also reports how many faces the two together flag and how accurate the flagged and the other faces are."""
    p, y = np.asarray(probabilities, dtype=np.float64), np.asarray(labels)
    top2 = -np.sort(-p, axis=1)[:, :2]
    correct = (p.argmax(1) == y).astype(float)
    limits = {}
    for name, value in (("min_confidence", top2[:, 0]), ("min_margin", top2[:, 0] - top2[:, 1])):
        ok = [0.0]
        for t in np.arange(0.02, 1.0, 0.01):
            inside = (value >= t - band) & (value < t)
            if inside.sum() >= min_count and correct[inside].mean() <= 0.5:
                ok.append(round(float(t), 2))
        limits[name] = max(ok)
    return {**limits, **flag_report(p, y, limits)}


def flag_report(probabilities, labels, limits) -> dict:
    """How many faces the thresholds `limits` (a dict, or one per face) flag as uncertain, and how accurate the
    flagged and the others are."""
    p, y = np.asarray(probabilities, dtype=np.float64), np.asarray(labels)
    top2 = -np.sort(-p, axis=1)[:, :2]
    correct = p.argmax(1) == y
    each = [limits] * len(y) if isinstance(limits, dict) else limits
    flagged = (top2[:, 0] < [x.get("min_confidence", 0) for x in each]) | (
        top2[:, 0] - top2[:, 1] < [x.get("min_margin", 0) for x in each])
    return {"flagged_fraction": float(flagged.mean()),
            "accuracy_flagged": float(correct[flagged].mean()) if flagged.any() else None,
            "accuracy_not_flagged": float(correct[~flagged].mean()) if (~flagged).any() else None}


@dataclass
class Fitted:
    """What `choose_calibration` chose: the config fields, the method and why, and the thresholds' report."""

    fields: dict
    method: str
    reason: str
    uncertainty: dict


def choose_calibration(logits_by_mode: dict, labels, num_classes: int, base=None, weights=None) -> Fitted:
    """Fit as much calibration as the labelled faces support (see the module's table), per TTA mode of
    `logits_by_mode` ((views, N, K) logits each), each face counting its `weights` (default: equally). `base`:
    the `config.Calibration` to fall back on and to take thresholds from (None for a model with none:
    temperature 1, no offsets, `DEFAULT_UNCERTAINTY`)."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=num_classes)
    n, present = len(labels), int((counts > 0).sum())
    base_fields = base_calibration(base, logits_by_mode)
    if n >= FULL["faces"] and counts.min() >= FULL["per_class"]:
        method, reason = "full", f"{n} faces, every class at least {FULL['per_class']}"
        fits = {m: fit_calibration(x, labels, True, FULL["temperature"], FULL["offset"], weights)
                for m, x in logits_by_mode.items()}
    elif n >= REGULARISED["faces"] and present >= 2:
        method = "regularised"
        reason = (f"{n} faces, {int((counts < FULL['per_class']).sum())} of {num_classes} classes under "
                  f"{FULL['per_class']}: temperature in {REGULARISED['temperature']}, offsets within "
                  f"±{REGULARISED['offset']}")
        fits = {m: fit_calibration(x, labels, True, REGULARISED["temperature"], REGULARISED["offset"], weights)
                for m, x in logits_by_mode.items()}
    elif n >= TEMPERATURE["faces"]:
        method, reason = "temperature", f"{n} faces of one class: a temperature alone, in {TEMPERATURE['temperature']}"
        fits = {m: fit_calibration(x, labels, False, TEMPERATURE["temperature"]) for m, x in logits_by_mode.items()}
    else:
        kept = "the base model's calibration is kept" if base else "no calibration (temperature 1, no offsets)"
        return Fitted(base_fields, "base", f"only {n} faces (a temperature needs {TEMPERATURE['faces']}): {kept}", {})
    fields = {"temperatures": {m: t for m, (t, _) in fits.items()},
              "class_biases": {m: b for m, (_, b) in fits.items() if b is not None},
              "uncertainty": dict(base_fields["uncertainty"])}
    report = {}
    if method == "full":
        plain = average_probabilities(np.asarray(logits_by_mode["none"], dtype=np.float64),
                                      *fits["none"]) if "none" in fits else None
        report = fit_uncertainty(plain, labels) if plain is not None else {}
        fitted_limits = {k: report[k] for k in ("min_confidence", "min_margin") if report.get(k)}
        fields["uncertainty"].update(fitted_limits)
        if len(fitted_limits) < 2:
            reason += "; thresholds the fit found no band for are kept from the base model"
    return Fitted(fields, method, reason, report)


def base_calibration(base, modes) -> dict:
    """`base`'s calibration of `modes` as config fields (temperature 1 and no offsets without a base)."""
    return {"temperatures": {m: base.temperature(m) if base else 1.0 for m in modes},
            "class_biases": {m: base.class_bias(m) for m in modes if base and base.class_bias(m) is not None},
            "uncertainty": dict(base.uncertainty) if base and base.uncertainty else dict(DEFAULT_UNCERTAINTY)}
