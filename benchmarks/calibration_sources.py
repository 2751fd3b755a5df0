"""Does a model's confidence hold on a source of faces its calibration never saw? Leave-one-source-out.

The sources: FER-2013's validation split (web crops, read whole) and each `source` of a real-face collection
(`faces_in_the_wild`: LFW news photos, IMFDB film stills), read through `predict`'s pipeline (detect, crop). Of a
collection with a `subject` column, the persons no run trains on are read (`train.data.person_splits`, calibration
and test persons); a source with no such person is read whole and marked `seen_in_training`, since the models of
this project fine-tune on the training persons.

For each source left out, every candidate calibration is fitted on the other sources (each source weighing the
same) and read on the one left out: accuracy, balanced accuracy, ECE, NLL, the faces read with at least 0.8
confidence (their share and accuracy), and the `uncertain` flag (thresholds fitted on the others: the share
flagged, the accuracy of the flagged and of the other faces). Candidates:

- `shipped`: the model's own calibration, by face size as `predict` applies it (fitted on FER-2013 validation
  and the calibration persons: not left out, an in-sample reference);
- `temperature`: one temperature;
- `temperature+offsets`: a temperature and one offset per class (within ±1), each face weighing the same within
  its source;
- `temperature+balanced offsets`: the same, each class weighing the same within its source (the shipped
  large-face method).

The candidate to ship is the one whose worst left-out source is best (ECE, then the >= 0.8 rule).

    python benchmarks/calibration_sources.py                       # the embedded default, its default TTA
    python benchmarks/calibration_sources.py --model runs/votes0.5 --name calibration_sources_votes0.5
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import report  # noqa: E402
from benchmarks.in_the_wild import pipeline_crops  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.calibration.fit import calibration_metrics, fit_calibration, fit_uncertainty, flag_report  # noqa: E402
from fer_model.calibration.tta import average_probabilities, calibrated_probabilities  # noqa: E402
from train.data import DatasetFormatError, load_split, person_splits, to_tensors  # noqa: E402

CANDIDATES = ("shipped", "temperature", "temperature+offsets", "temperature+balanced offsets")
CONFIDENT = 0.8
OFFSET_BOUND = 1.0


def sources(recognizer: EmotionRecognizer, fer2013: str | None, collection: str | None, tta: str) -> dict:
    """Per source: (views, N, K) logits, labels, each face's side in its photo (None: read as a small face) and
    whether its persons were trained on."""
    found = {}
    if fer2013:
        faces, labels = to_tensors(load_split(fer2013, "validation"), recognizer.config.preprocessing.image_size)
        found["fer2013"] = (recognizer.face_logits(faces.numpy(), tta), labels.numpy(), None, False)
    if collection:
        from datasets import concatenate_datasets

        parts = person_splits(collection, keep_columns=("source",))
        held = concatenate_datasets([parts["calibration"], parts["test"]])
        for name in sorted(set(parts["train"]["source"]) | set(held["source"])):
            seen = name not in held["source"]
            split = parts["train"] if seen else held
            rows = split.select(np.flatnonzero(np.asarray(split["source"]) == name))
            crops, kept, sides = pipeline_crops(recognizer, rows["image"], name)
            found[name] = (recognizer.face_logits(crops, tta), np.asarray(rows["label"])[kept], sides, seen)
    return found


def equal_source_weights(labels_by_source: list, balanced: bool) -> np.ndarray:
    """Per face, a weight that makes each source weigh the same (and, `balanced`, each class within it)."""
    weights = []
    for labels in labels_by_source:
        w = 1.0 / np.bincount(labels, minlength=labels.max() + 1)[labels] if balanced else np.ones(len(labels))
        weights.append(w / w.sum())
    return np.concatenate(weights)


def fit(candidate: str, logits: list, labels: list) -> tuple[float, tuple | None]:
    """A candidate's temperature and offsets, fitted on the (views, N, K) logits of several sources."""
    joined, y = np.concatenate(logits, axis=1), np.concatenate(labels)
    offsets = candidate != "temperature"
    weights = equal_source_weights(labels, balanced=candidate == "temperature+balanced offsets")
    return fit_calibration(joined, y, offsets, (0.2, 10.0), OFFSET_BOUND, weights)


def read_out(probabilities, labels, limits) -> dict:
    """The figures of one left-out source under one calibration."""
    p, y = np.asarray(probabilities, np.float64), np.asarray(labels)
    metrics = calibration_metrics(p, y)
    recall = [float((p[y == c].argmax(1) == c).mean()) for c in np.unique(y)]
    confident = p.max(1) >= CONFIDENT
    flags = flag_report(p, y, limits) if limits is not None else {}
    return {"accuracy": round(metrics["accuracy"], 4), "balanced_accuracy": round(float(np.mean(recall)), 4),
            "ece": round(metrics["ece"], 4), "nll": round(metrics["nll"], 4),
            "confident_share": round(float(confident.mean()), 4),
            "confident_accuracy": round(float((p[confident].argmax(1) == y[confident]).mean()), 4)
            if confident.any() else None,
            **{k: v if v is None else round(v, 4) for k, v in flags.items()}}


def leave_one_out(found: dict, recognizer: EmotionRecognizer, tta: str) -> dict:
    """Every candidate read on every source left out (see the module's docstring)."""
    table = {}
    for left in found:
        logits, labels, sides, seen = found[left]
        others = [name for name in found if name != left]
        row = {"faces": int(len(labels)), "seen_in_training": seen, "fitted_on": others}
        row["shipped"] = read_out(calibrated_probabilities(logits, recognizer.calibration, tta, sides), labels,
                                  [recognizer.calibration.for_side(s).uncertainty for s in sides] if sides
                                  else recognizer.calibration.uncertainty)
        for candidate in CANDIDATES[1:]:
            temperature, offsets = fit(candidate, [found[o][0] for o in others], [found[o][1] for o in others])
            fitted = [average_probabilities(np.asarray(found[o][0], np.float64), temperature, offsets) for o in others]
            limits = fit_uncertainty(np.concatenate(fitted), np.concatenate([found[o][1] for o in others]))
            limits = {k: limits[k] for k in ("min_confidence", "min_margin")}
            probabilities = average_probabilities(np.asarray(logits, np.float64), temperature, offsets)
            row[candidate] = {**read_out(probabilities, labels, limits), "temperature": temperature,
                              "offsets": offsets, "thresholds": limits}
        table[left] = row
    return table


def worst_case(table: dict) -> dict:
    """Per candidate, its worst left-out source: the highest ECE and the lowest accuracy at >= 0.8 confidence."""
    return {c: {"worst_ece": max(row[c]["ece"] for row in table.values()),
                "worst_confident_accuracy": min(row[c]["confident_accuracy"] or 1.0 for row in table.values())}
            for c in CANDIDATES}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model folder or Hub id (default: the embedded default)")
    p.add_argument("--precision", choices=["int8", "fp32"], default=None, help="default: int8 where the model has it")
    p.add_argument("--tta", default=None, help="TTA mode (default: the model's default)")
    p.add_argument("--fer2013", default="../shared/fer2013", help="FER-2013 (its validation split is one source)")
    p.add_argument("--dataset", default="../shared/faces_in_the_wild",
                   help="real faces with a source column (and a subject column to read held-out persons)")
    p.add_argument("--name", default="calibration_sources", help="results go to benchmarks/results/NAME.json")
    args = p.parse_args(argv)
    recognizer = EmotionRecognizer.from_pretrained(args.model, precision=args.precision)
    tta = args.tta or recognizer.tta
    try:
        found = sources(recognizer, args.fer2013, args.dataset, tta)
    except DatasetFormatError as err:
        raise SystemExit(f"error: {err}") from None
    if len(found) < 2:
        raise SystemExit("error: leaving one source out needs at least two sources")
    table = leave_one_out(found, recognizer, tta)
    return report(args.name, {"model": args.model or "embedded default", "precision": recognizer.precision,
                               "tta": tta, "left_out": table, "worst_case": worst_case(table)})


if __name__ == "__main__":
    main()
