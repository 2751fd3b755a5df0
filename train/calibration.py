"""Calibration of a trained model on its validation faces, per TTA mode (`fer_model.calibrate` fits it, as much
as the number of faces supports), with the metrics before and after; with real faces of other sources beside
them, a second calibration fitted on those alone, for faces as large as a photo's (`config.Calibration`)."""
from __future__ import annotations

import numpy as np

from fer_model.calibrate import FULL, REGULARISED, choose_calibration, fit_calibration, fit_uncertainty, flag_report
from fer_model.config import LARGE_FACES_MIN_SIDE
from fer_model.tta import average_probabilities


def calibrate(recognizer, faces, labels, modes, base=None, real=None, votes=None) -> tuple[dict, dict, dict]:
    """Fit the calibration of `recognizer`'s model on uint8 faces and their labels (validation) for every TTA
    mode of `modes`, falling back on `base` (a `config.Calibration`, e.g. the fine-tuned model's) when the
    faces are too few (`fer_model.calibrate.choose_calibration`). `real`: (faces, labels) of real faces of other
    sources, on which the large-face calibration is fitted (`fit_large_faces`) and scored.

    Returns the metrics of each mode (after calibration, with `temperature`, `class_bias`, `accuracy_before`
    and `calibration_before`, before meaning uncalibrated; and `real`, the same for the real faces under the
    large-face calibration), the calibration as config fields (`temperatures`, `class_biases`, `uncertainty`,
    and `large_faces` with `real`) and a report: the uncertainty fit's, with the `method` chosen and its `reason`
    (and `large_faces`, the large-face fit's thresholds and their report)."""
    from .evaluate import collect_logits

    logits = {mode: collect_logits(recognizer, faces, mode) for mode in modes}
    fitted = choose_calibration(logits, labels.numpy(), len(recognizer.labels), base)
    fields = {**fitted.fields, "large_faces": {}}
    results = {mode: {**scores(logits[mode], labels, recognizer.labels, fields["temperatures"][mode],
                               fields["class_biases"].get(mode), votes),
                      "temperature": fields["temperatures"][mode], "class_bias": fields["class_biases"].get(mode)}
               for mode in modes}
    plain = average_probabilities(logits[modes[0]].double().numpy(), results[modes[0]]["temperature"],
                                  results[modes[0]]["class_bias"])
    report = {**fitted.uncertainty, **fields["uncertainty"], **flag_report(plain, labels.numpy(), fields["uncertainty"]),
              "method": fitted.method, "reason": fitted.reason}
    if real is not None:
        real_logits = {mode: collect_logits(recognizer, real[0], mode) for mode in modes}
        fields["large_faces"], report["large_faces"] = fit_large_faces(
            {m: x.numpy() for m, x in real_logits.items()}, real[1].numpy(), len(recognizer.labels),
            fields["uncertainty"])
        for mode in modes:
            large = fields["large_faces"]
            results[mode]["real"] = scores(real_logits[mode], real[1], recognizer.labels, large["temperatures"][mode],
                                           large["class_biases"][mode])
    return results, fields, report


def fit_large_faces(logits_by_mode: dict, labels, num_classes: int, fallback: dict) -> tuple[dict, dict]:
    """The calibration of faces of `LARGE_FACES_MIN_SIDE` pixels and more, fitted on real faces of other sources
    (photos' faces, not FER-2013's 48-pixel crops): a temperature and class offsets per
    TTA mode (within `FULL`'s bounds from 500 faces on, `REGULARISED`'s below) and the uncertainty thresholds,
    each class weighing the same in the fit. Real collections are mostly neutral and happy (faces_in_the_wild:
    93%); weighing each face alike would fit that mix into the offsets and read every rarer expression as one of
    the two. A threshold the fit finds no band for is taken from `fallback` (the small faces' thresholds).
    Returns the config fields and the thresholds' report."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=num_classes)
    weights = 1.0 / counts[labels]
    bounds = FULL if len(labels) >= FULL["faces"] else REGULARISED
    fits = {m: fit_calibration(x, labels, True, bounds["temperature"], bounds["offset"], weights)
            for m, x in logits_by_mode.items()}
    first = next(iter(logits_by_mode))
    report = fit_uncertainty(average_probabilities(np.asarray(logits_by_mode[first], np.float64), *fits[first]), labels)
    fields = {"min_side": LARGE_FACES_MIN_SIDE, "temperatures": {m: t for m, (t, _) in fits.items()},
              "class_biases": {m: b for m, (_, b) in fits.items()},
              "uncertainty": {k: report[k] or fallback[k] for k in ("min_confidence", "min_margin")}}
    return fields, report


def scores(logits, labels, names, temperature, bias, votes=None) -> dict:
    """`train.evaluate.score` after calibration, with `accuracy_before` and `calibration_before` (uncalibrated)."""
    from .evaluate import score

    uncalibrated = score(logits, labels, names)
    return {**score(logits, labels, names, temperature, bias, votes), "accuracy_before": uncalibrated["accuracy"],
            "calibration_before": uncalibrated["calibration"]}


def real_summary(scores: dict) -> dict:
    """The figures of real faces that a model's metrics keep: accuracy, balanced accuracy, ECE before and after."""
    return {"accuracy": scores["accuracy"], "balanced_accuracy": scores["balanced_accuracy"],
            "ece": scores["calibration"]["ece"], "ece_before": scores["calibration_before"]["ece"],
            "faces": scores["num_examples"]}
