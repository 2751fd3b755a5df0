"""How much the large-face calibration should weigh rare classes: cross-fitted on the calibration persons of
`faces_in_the_wild` (the persons the trainer selects and calibrates on), by person. `--persons held-out` adds
the test persons: twice the faces of the rare classes, for what a calibration fitted on persons a model never
saw gives on others (never to choose with: the test persons judge the choice).

Each halving fits a temperature and class offsets (as `train.calibration.fit_large_faces` does) on the faces of
half of the persons and reads the other half: balanced accuracy, accuracy and ECE, averaged over the halvings.
Each face weighs `(1 / its class's count) ** power` (power 0: every face alike; 1: every class alike), or
`1 / max(count, floor)`: every class alike, but a class of fewer than `floor` faces less. The shipped fit
(`train.calibration.fit_large_faces`) is power 1.

    python benchmarks/class_weighting.py [--model FOLDER --name class_weighting_NAME] [--persons held-out]
        [--halvings 20]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import report  # noqa: E402
from benchmarks.in_the_wild import collection, pipeline_crops  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.calibrate import FULL, calibration_metrics, fit_calibration  # noqa: E402
from fer_model.predictor import DEFAULT_TTA  # noqa: E402
from fer_model.tta import average_probabilities  # noqa: E402

WEIGHTINGS = {**{f"power {p}": (lambda c, p=p: (1.0 / c) ** p) for p in (0, 0.5, 0.75, 1)},
              **{f"floor {f}": (lambda c, f=f: 1.0 / np.maximum(c, f)) for f in (5, 10, 20, 30)}}
"""How a face of a class of `c` faces (numpy) weighs in the fit, by name."""


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="../shared/faces_in_the_wild")
    p.add_argument("--model", default=None, help="model folder (default: the embedded default)")
    p.add_argument("--halvings", type=int, default=20)
    p.add_argument("--persons", choices=("calibration", "held-out"), default="calibration")
    p.add_argument("--name", default="class_weighting", help="results go to benchmarks/results/NAME.json")
    args = p.parse_args(argv)
    recognizer = EmotionRecognizer.from_pretrained(args.model)
    persons = collection(args.dataset, args.persons)
    crops, found, _ = pipeline_crops(recognizer, persons["image"], f"{args.persons} persons")
    labels, subjects = np.asarray(persons["label"])[found], np.asarray(persons["subject"])[found]
    logits = recognizer.face_logits(crops, DEFAULT_TTA)
    rng = np.random.default_rng(0)
    rows = {name: [] for name in WEIGHTINGS}
    for _ in range(args.halvings):
        half = rng.permutation(np.unique(subjects))[: len(np.unique(subjects)) // 2]
        fit = np.isin(subjects, half)
        counts = np.maximum(np.bincount(labels[fit], minlength=len(recognizer.labels)), 1)
        for name, weigh in WEIGHTINGS.items():
            fitted = fit_calibration(logits[:, fit], labels[fit], True, FULL["temperature"], FULL["offset"],
                                     weigh(counts[labels[fit]].astype(np.float64)))
            probabilities = np.asarray(average_probabilities(logits[:, ~fit], *fitted))
            predicted, truth = probabilities.argmax(1), labels[~fit]
            rows[name].append([np.mean([(predicted[truth == c] == c).mean() for c in np.unique(truth)]),
                                (predicted == truth).mean(), calibration_metrics(probabilities, truth)["ece"]])
    figures = {name: dict(zip(("balanced_accuracy", "accuracy", "ece"), np.round(np.mean(r, 0), 4).tolist()))
               | {"balanced_accuracy_sd": round(float(np.std(np.array(r)[:, 0])), 4)} for name, r in rows.items()}
    return report(args.name, {"model": args.model or "embedded default", "precision": recognizer.precision,
                              "persons": args.persons, "tta": DEFAULT_TTA, "faces": int(found.sum()),
                              "halvings": args.halvings, "by_weighting": figures})


if __name__ == "__main__":
    main()
