"""Reading faces against a person's resting face (`EmotionRecognizer.personalize`): does it help, and where?

For every person of a labelled collection with a `subject` column (`../shared/faces_in_the_wild`) who has a neutral
photo and another photo, the first neutral photo (sorted by its path) is the baseline and every other photo of
theirs is read plainly and personalized, through `predict`'s pipeline (its largest face). Per TTA mode: accuracy,
balanced accuracy, per-class recall and how often neutral faces stay neutral, plain and personalized, with 95%
intervals from resampling persons; and how many faces the gate opened for (`fer_model.baseline`). Pseudo-clips:
each person's photos strung together, the neutral one first, read as `predict_video(..., baseline="track")` reads
a track (`TrackBaselines`: the resting face found from the clip itself).

`--persons test` (the default) reads the persons no run trains or calibrates on; `train` the training persons, the
only ones the gate and the strength may be set on (`--strength`, `--gate LOW HIGH` try other values).

    python benchmarks/personal.py
    python benchmarks/personal.py --persons train --gate 0.85 0.95 --name personal_train
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import report  # noqa: E402
from benchmarks.in_the_wild import intervals_by_group, pipeline_crops  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.baseline import GATE, STRENGTH, Baseline, TrackBaselines  # noqa: E402
from fer_model.preprocess import normalize  # noqa: E402
from fer_model.calibration.tta import modes_for  # noqa: E402
from train.data import DatasetFormatError, person_splits  # noqa: E402

PERSONS = ("test", "calibration", "train")


def pairs(split, neutral: int) -> tuple[list[int], list[int], list[str]]:
    """Row indices of each person's baseline (their first neutral photo by path) and of the photos read against it,
    and whose those are; persons with no neutral photo or no other photo are left out."""
    from datasets import Image

    paths = [image["path"] or "" for image in split.cast_column("image", Image(decode=False))["image"]]
    subjects, labels = split["subject"], split["label"]
    baselines, others, owners = [], [], []
    for person in sorted(set(subjects)):
        rows = sorted((i for i, s in enumerate(subjects) if s == person), key=lambda i: paths[i])
        rest = [i for i in rows if labels[i] == neutral]
        if rest and len(rows) > 1:
            baselines.append(rest[0])
            others += [i for i in rows if i != rest[0]]
            owners += [person] * (len(rows) - 1)
    return baselines, others, owners


def scores(predicted, labels, persons, names) -> dict:
    """Accuracy, balanced accuracy (the classes present), per-class recall, neutral kept neutral, and intervals."""
    recall = {names[c]: round(float((predicted[labels == c] == c).mean()), 4) for c in np.unique(labels)}
    neutral = names.index("neutral")
    return {"accuracy": round(float((predicted == labels).mean()), 4),
            "balanced_accuracy": round(float(np.mean(list(recall.values()))), 4),
            **intervals_by_group(labels, predicted, persons, len(names)), "recall": recall,
            "neutral_kept": recall.get("neutral"),
            "read_as_neutral": round(float((predicted == neutral).mean()), 4)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="../shared/faces_in_the_wild", help="labelled faces with a subject column")
    p.add_argument("--persons", choices=PERSONS, default="test")
    p.add_argument("--model", default=None, help="model folder or Hub id (default: the embedded default)")
    p.add_argument("--strength", type=float, default=STRENGTH)
    p.add_argument("--gate", type=float, nargs=2, default=GATE, metavar=("LOW", "HIGH"))
    p.add_argument("--name", default="personal", help="results go to benchmarks/results/NAME.json")
    args = p.parse_args(argv)
    recognizer = EmotionRecognizer.from_pretrained(args.model)
    names = list(recognizer.labels)
    try:
        split = person_splits(args.dataset)[args.persons]
    except DatasetFormatError as err:
        raise SystemExit(f"error: {err}") from None
    baselines, others, owners = pairs(split, names.index("neutral"))
    if not others:
        raise SystemExit("error: no person has a neutral photo and another photo")
    rows = baselines + others
    crops, found, sides = pipeline_crops(recognizer, [split[i]["image"] for i in rows], "faces")
    if not found[:len(baselines)].all():
        raise SystemExit("error: a baseline photo has no face the detector finds")
    pre = recognizer.config.preprocessing
    inputs = normalize(crops, pre)
    side_of = dict(zip(np.flatnonzero(found), sides))
    base_of = dict(zip(sorted(set(owners)), range(len(baselines))))
    read = [k for k in range(len(baselines), len(rows)) if found[k]]
    labels = np.asarray([split[rows[k]]["label"] for k in read])
    persons = np.asarray([owners[k - len(baselines)] for k in read])
    position = {k: j for j, k in enumerate(np.flatnonzero(found))}
    figures = {"model": args.model or "embedded default", "persons": args.persons, "strength": args.strength,
               "gate": list(args.gate), "people": len(baselines), "faces": len(read)}
    for mode in modes_for(pre.crop_size):
        plain = recognizer.plain_probabilities(inputs[[position[k] for k in read]], mode, [side_of[k] for k in read])
        personal, clips, opened = np.empty_like(plain), np.empty_like(plain), []
        for person in np.unique(persons):
            mine = persons == person
            b = base_of[person]
            baseline = Baseline(inputs[[position[b]]], [side_of[b]], args.strength, tuple(args.gate))
            faces = inputs[[position[k] for k, m in zip(read, mine) if m]]
            personal[mine] = baseline.apply(plain[mine], faces, recognizer.plain_probabilities, mode)
            opened += (baseline.weights(faces) > 0).tolist()
            track = TrackBaselines(names, args.strength, tuple(args.gate))
            track.apply(0, recognizer.plain_probabilities(inputs[[position[b]]], mode, [side_of[b]])[0],
                        inputs[position[b]])
            clips[mine] = [track.apply(0, p, face)[0] for p, face in zip(plain[mine], faces)]
        figures[mode] = {"plain": scores(plain.argmax(1), labels, persons, names),
                         "personalized": scores(personal.argmax(1), labels, persons, names),
                         "pseudo_clip_track": scores(clips.argmax(1), labels, persons, names),
                         "gate_opened": round(float(np.mean(opened)), 4)}
    return report(args.name, figures)


if __name__ == "__main__":
    main()
