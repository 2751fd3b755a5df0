"""Calibration of a trained model, per TTA mode, with the metrics before and after: on its validation faces alone
as much as their number supports (`fer_model.calibration.fit`); with real faces of other sources or FER+'s votes beside
them, one temperature shared by every source and no class offsets (`calibrate`)."""
from __future__ import annotations

import numpy as np

from fer_model.calibration.fit import (FULL, base_calibration, choose_calibration, fit_calibration, fit_uncertainty,
                                 flag_report)
from fer_model.calibration.tta import average_probabilities


def calibrate(recognizer, faces, labels, modes, base=None, real=None, votes=None) -> tuple[dict, dict, dict]:
    """Fit the calibration of `recognizer`'s model on uint8 faces and their labels (validation) for every TTA
    mode of `modes`, and score every mode before and after.

    - Validation alone: as much calibration as its faces support (`fer_model.calibration.fit.choose_calibration`: a
      temperature and class offsets from 500 faces on), falling back on `base` (a `config.Calibration`, e.g. the
      fine-tuned model's) when they are too few.
    - With `real` faces of other sources ((faces, labels)) or FER+'s `votes` for the faces: one temperature per
      mode shared by every source and face size, and no class offsets (`fit_across_sources`). Offsets fitted on
      one source's labels refit its class mix into every reading (docs/calibration.md, "Sources it never saw"):
      on FER-2013's labels they undo what the raters' votes taught; on the real faces' 93% neutral or happy
      they read other collections' faces far too surely. Validation faces count by their own labels: fitted to
      FER+'s majority instead, the temperature is lower and faces of a source it never saw read too surely.

    Returns the metrics of each mode (after calibration, with `temperature`, `class_bias`, `accuracy_before`
    and `calibration_before`, before meaning uncalibrated; and `real`, the same for the real faces), the
    calibration as config fields (`temperatures`, `class_biases`, `uncertainty`, `large_faces`: none) and a
    report: the uncertainty fit's, with the `method` chosen and its `reason`."""
    from .evaluate import collect_logits

    logits = {mode: collect_logits(recognizer, faces, mode) for mode in modes}
    real_logits = {mode: collect_logits(recognizer, real[0], mode) for mode in modes} if real is not None else None
    if real is None and votes is None:
        fitted = choose_calibration(logits, labels.numpy(), len(recognizer.labels), base)
        fields, method, reason, uncertainty = fitted.fields, fitted.method, fitted.reason, fitted.uncertainty
    else:
        sources = [({m: x.numpy() for m, x in logits.items()}, labels.numpy())]
        if real is not None:
            sources.append(({m: x.numpy() for m, x in real_logits.items()}, real[1].numpy()))
        fields, uncertainty = fit_across_sources(sources, base_calibration(base, modes)["uncertainty"])
        method = "across sources"
        reason = f"one temperature per mode, no class offsets, fitted on {len(sources)} source(s) weighing the same"
    fields = {**fields, "large_faces": {}}
    results = {mode: {**scores(logits[mode], labels, recognizer.labels, fields["temperatures"][mode],
                               fields["class_biases"].get(mode), votes),
                      "temperature": fields["temperatures"][mode], "class_bias": fields["class_biases"].get(mode)}
               for mode in modes}
    plain = average_probabilities(logits[modes[0]].double().numpy(), results[modes[0]]["temperature"],
                                  results[modes[0]]["class_bias"])
    report = {**uncertainty, **fields["uncertainty"], **flag_report(plain, labels.numpy(), fields["uncertainty"]),
              "method": method, "reason": reason}
    if real is not None:
        for mode in modes:
            results[mode]["real"] = scores(real_logits[mode], real[1], recognizer.labels,
                                           fields["temperatures"][mode], None)
    return results, fields, report


def fit_across_sources(sources: list, fallback: dict) -> tuple[dict, dict]:
    """One temperature per TTA mode for several sources of labelled faces (`sources`: ({mode: (views, N, K)
    logits}, labels) each), each source weighing the same whatever its size, and the uncertainty thresholds fitted
    on all of them at the first mode's temperature (a threshold the fit finds no band for is `fallback`'s).
    Returns the config fields (no class offsets) and the thresholds' report."""
    modes = list(sources[0][0])
    labels = np.concatenate([y for _, y in sources])
    weights = np.concatenate([np.full(len(y), 1.0 / len(y)) for _, y in sources])
    temperatures = {m: fit_calibration(np.concatenate([x[m] for x, _ in sources], axis=1), labels, False,
                                       FULL["temperature"], weights=weights)[0] for m in modes}
    plain = np.concatenate([average_probabilities(np.asarray(x[modes[0]], np.float64), temperatures[modes[0]])
                            for x, _ in sources])
    report = fit_uncertainty(plain, labels)
    return ({"temperatures": temperatures, "class_biases": {},
             "uncertainty": {k: report[k] or fallback[k] for k in ("min_confidence", "min_margin")}}, report)


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
