"""Calibration of a trained model on its validation faces, per TTA mode (`fer_model.calibrate` fits it, as much
as the number of faces supports), with the metrics before and after; with real faces of other sources beside
them, one calibration fitted on both, weighted so that confidence means the same on both (`real_share`)."""
from __future__ import annotations

import numpy as np

from fer_model.calibrate import calibration_metrics, choose_calibration, flag_report
from fer_model.predictor import DEFAULT_TTA
from fer_model.tta import average_probabilities

ECE_BOUNDS = {"validation": 0.025, "real": 0.06}
"""The ECE each set should stay under: FER-2013's validation split as before real faces came in, and real faces."""
REAL_SHARES = tuple(round(0.1 * k, 1) for k in range(11))
"""The shares of the fit's weight that real faces may carry (the validation faces the rest): `real_share` tries each."""


def calibrate(recognizer, faces, labels, modes, base=None, real=None) -> tuple[dict, dict, dict]:
    """Fit the calibration of `recognizer`'s model on uint8 faces and their labels (validation) for every TTA
    mode of `modes`, falling back on `base` (a `config.Calibration`, e.g. the fine-tuned model's) when the
    faces are too few (`fer_model.calibrate.choose_calibration`). `real`: (faces, labels) of real faces of other
    sources, fitted on with the validation faces (`REAL_SHARE` of the weight) and scored apart.

    Returns the metrics of each mode (after calibration, with `temperature`, `class_bias`, `accuracy_before`
    and `calibration_before`, before meaning uncalibrated; and `real`, the same for the real faces), the
    calibration as config fields (`temperatures`, `class_biases`, `uncertainty`) and a report: the uncertainty
    fit's, with the `method` chosen and its `reason`."""
    from .evaluate import collect_logits

    sets = [(faces, labels)] + ([real] if real is not None else [])
    logits = [{mode: collect_logits(recognizer, f, mode) for mode in modes} for f, _ in sets]
    fit_labels = np.concatenate([y.numpy() for _, y in sets])
    joined = {m: np.concatenate([x[m].numpy() for x in logits], axis=1) for m in modes}
    weights, share = None, None
    if real is not None:
        mode = DEFAULT_TTA if DEFAULT_TTA in modes else modes[0]
        share = real_share(mode, [x[mode].numpy() for x in logits], [y.numpy() for _, y in sets],
                           len(recognizer.labels), base)
        weights = share_weights(len(labels), len(real[1]), share)
    fitted = choose_calibration(joined, fit_labels, len(recognizer.labels), base, weights)
    results = {}
    for mode in modes:
        temperature, bias = fitted.fields["temperatures"][mode], fitted.fields["class_biases"].get(mode)
        scored = [scores(x[mode], y, recognizer.labels, temperature, bias) for x, (_, y) in zip(logits, sets)]
        results[mode] = {**scored[0], "temperature": temperature, "class_bias": bias}
        if real is not None:
            results[mode]["real"] = scored[1]
    plain = average_probabilities(logits[0][modes[0]].double().numpy(), results[modes[0]]["temperature"],
                                  results[modes[0]]["class_bias"])
    report = {**fitted.uncertainty, **fitted.fields["uncertainty"],
              **flag_report(plain, labels.numpy(), fitted.fields["uncertainty"]),
              "method": fitted.method, "reason": fitted.reason, **({"real_share": share} if real is not None else {})}
    return results, fitted.fields, report


def share_weights(validation: int, real: int, share: float) -> np.ndarray:
    """Per face, its weight in the fit: the real faces `share` of the whole, the validation faces the rest."""
    return np.concatenate([np.full(validation, (1 - share) / validation), np.full(real, share / real)])


def real_share(mode: str, logits: list, labels: list, num_classes: int, base=None) -> float:
    """The share of the fit's weight real faces carry (one of `REAL_SHARES`) whose calibration keeps the larger of
    each set's ECE over its bound (`ECE_BOUNDS`) lowest, on TTA `mode`'s (views, N, K) `logits` of the
    validation faces and of the real faces."""
    joined, every_label = np.concatenate(logits, axis=1), np.concatenate(labels)

    def worst(share: float) -> float:
        fitted = choose_calibration({mode: joined}, every_label, num_classes, base,
                                    share_weights(len(labels[0]), len(labels[1]), share))
        temperature, bias = fitted.fields["temperatures"][mode], fitted.fields["class_biases"].get(mode)
        eces = [calibration_metrics(average_probabilities(x.astype(np.float64), temperature, bias), y)["ece"]
                for x, y in zip(logits, labels)]
        return max(eces[0] / ECE_BOUNDS["validation"], eces[1] / ECE_BOUNDS["real"])

    return min(REAL_SHARES, key=worst)


def scores(logits, labels, names, temperature, bias) -> dict:
    """`train.evaluate.score` after calibration, with `accuracy_before` and `calibration_before` (uncalibrated)."""
    from .evaluate import score

    uncalibrated = score(logits, labels, names)
    return {**score(logits, labels, names, temperature, bias), "accuracy_before": uncalibrated["accuracy"],
            "calibration_before": uncalibrated["calibration"]}


def real_summary(scores: dict) -> dict:
    """The figures of real faces that a model's metrics keep: accuracy, balanced accuracy, ECE before and after."""
    return {"accuracy": scores["accuracy"], "balanced_accuracy": scores["balanced_accuracy"],
            "ece": scores["calibration"]["ece"], "ece_before": scores["calibration_before"]["ece"],
            "faces": scores["num_examples"]}
