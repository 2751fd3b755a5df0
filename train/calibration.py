"""Calibration of a trained model on its validation faces, per TTA mode (`fer_model.calibrate` fits it, as much
as the number of faces supports), with the metrics before and after; with real faces of other sources beside
them, one calibration fitted on both, each set counting half, so that confidence means the same on both."""
from __future__ import annotations

import numpy as np

from fer_model.calibrate import choose_calibration, flag_report
from fer_model.tta import average_probabilities

REAL_SHARE = 0.5
"""The share of the calibration fit's weight that real faces (`real`) carry, the validation faces the rest: with
a half each, a single temperature and set of class offsets keep ECE under 0.06 on held-out persons of real faces
and under 0.025 on FER-2013's validation split (docs/training.md, "Real faces")."""


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
    weights = None
    if real is not None:  # each set carries its share of the weight, however many faces it has
        weights = np.concatenate([np.full(len(labels), (1 - REAL_SHARE) / len(labels)),
                                  np.full(len(real[1]), REAL_SHARE / len(real[1]))])
    fitted = choose_calibration({m: np.concatenate([x[m].numpy() for x in logits], axis=1) for m in modes},
                                fit_labels, len(recognizer.labels), base, weights)
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
              "method": fitted.method, "reason": fitted.reason}
    return results, fitted.fields, report


def scores(logits, labels, names, temperature, bias) -> dict:
    """`train.evaluate.score` after calibration, with `accuracy_before` and `calibration_before` (uncalibrated)."""
    from .evaluate import score

    uncalibrated = score(logits, labels, names)
    return {**score(logits, labels, names, temperature, bias), "accuracy_before": uncalibrated["accuracy"],
            "calibration_before": uncalibrated["calibration"]}
