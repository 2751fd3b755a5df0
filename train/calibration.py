"""Calibration of a trained model on its validation faces, per TTA mode (`fer_model.calibrate` fits it, as much
as the number of faces supports), with the metrics before and after."""
from __future__ import annotations

from fer_model.calibrate import choose_calibration, flag_report
from fer_model.tta import average_probabilities


def calibrate(recognizer, faces, labels, modes, base=None) -> tuple[dict, dict, dict]:
    """Fit the calibration of `recognizer`'s model on uint8 faces and their labels (validation) for every TTA
    mode of `modes`, falling back on `base` (a `config.Calibration`, e.g. the fine-tuned model's) when the
    faces are too few (`fer_model.calibrate.choose_calibration`).

    Returns the metrics of each mode (after calibration, with `temperature`, `class_bias`, `accuracy_before`
    and `calibration_before`, before meaning uncalibrated), the calibration as config fields (`temperatures`,
    `class_biases`, `uncertainty`) and a report: the uncertainty fit's, with the `method` chosen and its `reason`."""
    from .evaluate import collect_logits, score

    logits = {mode: collect_logits(recognizer, faces, mode) for mode in modes}
    fitted = choose_calibration({m: x.numpy() for m, x in logits.items()}, labels.numpy(), len(recognizer.labels), base)
    results = {}
    for mode in modes:
        temperature, bias = fitted.fields["temperatures"][mode], fitted.fields["class_biases"].get(mode)
        uncalibrated = score(logits[mode], labels, recognizer.labels)
        results[mode] = {**score(logits[mode], labels, recognizer.labels, temperature, bias),
                         "temperature": temperature, "class_bias": bias,
                         "accuracy_before": uncalibrated["accuracy"], "calibration_before": uncalibrated["calibration"]}
    plain = average_probabilities(logits[modes[0]].double().numpy(), results[modes[0]]["temperature"],
                                  results[modes[0]]["class_bias"])
    report = {**fitted.uncertainty, **fitted.fields["uncertainty"],
              **flag_report(plain, labels.numpy(), fitted.fields["uncertainty"]),
              "method": fitted.method, "reason": fitted.reason}
    return results, fitted.fields, report
