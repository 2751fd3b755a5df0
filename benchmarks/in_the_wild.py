"""How a model reads real faces from other sources than FER-2013, through the whole `predict` pipeline (detect,
crop as predict crops, classify; a tight crop with no face found is classified whole), beside FER-2013's
validation split read the same way.

Each face is read with the calibration of its size, as `predict` reads it (`config.Calibration`); the
figures say how many were large faces. Per TTA mode: accuracy, balanced accuracy (the mean recall of the classes present), per-class recall, the
confusion matrix (also a plot), ECE, and the share flagged `uncertain` with the accuracy of flagged and other
faces; for a collection with neutral faces, how often they read as angry or sad; for a split with FER+'s votes
(FER-2013 validation), the raters' majority accuracy and the cross-entropy to their vote shares (`train.ferplus`). Accuracy and balanced accuracy
come with a 95% interval from resampling the persons (images, where the collection names none): with a few faces
in a class, one face moves balanced accuracy by several points.

The collection is any labelled set: a `datasets` folder (`../shared/faces_in_the_wild`), a Parquet file or a
`FOLDER/<label>/<image>` tree. One with a `subject` column is read by person, as the trainer splits it
(`train.data.load_by_person`, the same seed and share): `--persons test` (the default) reads the persons the
trainer neither trained nor calibrated on; `calibration` those it selected and calibrated on; `held-out` both;
`all` every image.

    python benchmarks/in_the_wild.py                                   # the embedded default
    python benchmarks/in_the_wild.py --model runs/wild --name in_the_wild_runs_wild
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import RESULTS, report  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.calibration.fit import calibration_metrics, flag_report  # noqa: E402
from fer_model.image_io import load_image  # noqa: E402
from fer_model.predictor import box_side  # noqa: E402
from fer_model.calibration.tta import calibrated_probabilities, modes_for  # noqa: E402
from train.data import DatasetFormatError, load_split, person_splits, read_splits  # noqa: E402
from train.evaluate import load_metric  # noqa: E402
from train.ferplus import agreement  # noqa: E402
from train.report import plot_confusion_matrix  # noqa: E402

PERSONS = ("test", "calibration", "held-out", "all")


def collection(source: str, persons: str):
    """The labelled images of `source` to read: by person where it names them (see the module's docstring)."""
    from datasets import concatenate_datasets

    whole = read_splits(source, keep_columns=("subject",))
    if "subject" not in next(iter(whole.values())).column_names or persons == "all":
        return concatenate_datasets(list(whole.values()))
    parts = person_splits(source)
    return concatenate_datasets([parts["calibration"], parts["test"]]) if persons == "held-out" else parts[persons]


def pipeline_crops(recognizer: EmotionRecognizer, images, desc: str) -> tuple[np.ndarray, np.ndarray, list]:
    """The crop `predict` classifies for each image (its largest face; a tight crop whole), which images gave
    one, and each crop's side in its photo (which calibration reads it)."""
    crops, found, sides = [], [], []
    for image in tqdm(images, desc=desc, unit="image"):
        faces = recognizer.find_faces(np.asarray(load_image(image)))
        found.append(bool(faces))
        if faces:
            crops.append(faces[0][2])
            sides.append(box_side(faces[0][0]))
    size = recognizer.config.preprocessing.image_size
    return (np.stack(crops) if crops else np.zeros((0, size, size), np.uint8)), np.array(found), sides


def read(recognizer: EmotionRecognizer, split, name: str, plot: Path | None = None, faces: tuple | None = None) -> dict:
    """Every figure of the module's docstring for one labelled split, per TTA mode. `faces`: the split's
    `pipeline_crops`, where already found (the detector's, the same for every classifier)."""
    crops, found, sides = faces if faces is not None else pipeline_crops(recognizer, split["image"], name)
    if not found.any():
        raise DatasetFormatError(f"no face found in any of the {len(found)} images of {name}")
    labels = np.asarray(split["label"])[found]
    votes = np.asarray(split["votes"])[found] if "votes" in split.column_names else None
    groups = np.asarray(split["subject"])[found] if "subject" in split.column_names else np.arange(len(labels))
    names = list(recognizer.labels)
    calibration, metric = recognizer.calibration, load_metric()
    figures = {"images": len(found), "no_face": int((~found).sum()),
               "large_faces": sum(calibration.is_large(side) for side in sides),
               "support": dict(zip(names, np.bincount(labels, minlength=len(names)).tolist()))}
    for mode in modes_for(recognizer.config.preprocessing.crop_size):
        p = calibrated_probabilities(recognizer.face_logits(crops, mode), calibration, mode, sides)
        scores = metric.compute(predictions=p.argmax(1), references=labels, labels=names)
        present = [n for n in names if scores["per_class"][n]["support"]]
        flags = flag_report(p, labels, [calibration.for_side(side).uncertainty for side in sides])
        figures[mode] = {
            "accuracy": round(scores["accuracy"], 4), "balanced_accuracy": round(scores["balanced_accuracy"], 4),
            **intervals_by_group(labels, p.argmax(1), groups, len(names)),
            "recall": {n: round(scores["per_class"][n]["recall"], 4) for n in present},
            "ece": round(calibration_metrics(p, labels)["ece"], 4),
            "mean_confidence": round(float(p.max(1).mean()), 4),
            "uncertain": round(flags["flagged_fraction"], 4),
            "accuracy_uncertain": flags["accuracy_flagged"] and round(flags["accuracy_flagged"], 4),
            "accuracy_certain": flags["accuracy_not_flagged"] and round(flags["accuracy_not_flagged"], 4),
            "neutral_read_as": neutral_misreads(scores["confusion_matrix"], names),
            **({k: round(v, 4) for k, v in agreement(p, votes).items()} if votes is not None else {}),
            "confusion_matrix": scores["confusion_matrix"]}
        if plot is not None and mode == recognizer.tta:
            plot_confusion_matrix(scores["confusion_matrix"], names, plot,
                                  title=f"{name}, TTA {mode}: accuracy {scores['accuracy']:.1%}, "
                                        f"balanced {scores['balanced_accuracy']:.1%}")
    return figures


def intervals_by_group(labels, predicted, groups, num_classes: int, resamples: int = 2000, seed: int = 0) -> dict:
    """95% intervals of accuracy and balanced accuracy (the mean recall of the classes present in each resample)
    over `resamples` bootstrap draws of whole groups (persons) with replacement."""
    _, group = np.unique(groups, return_inverse=True)
    confusion = np.zeros((group.max() + 1, num_classes, num_classes))
    np.add.at(confusion, (group, labels, predicted), 1)
    draws = np.random.default_rng(seed).multinomial(len(confusion), np.full(len(confusion), 1 / len(confusion)),
                                                    size=resamples)
    drawn = np.einsum("rg,gij->rij", draws, confusion)
    correct, support = np.einsum("rii->ri", drawn), drawn.sum(2)
    recall = np.divide(correct, support, out=np.full_like(correct, np.nan), where=support > 0)
    figures = {"accuracy": correct.sum(1) / support.sum(1), "balanced_accuracy": np.nanmean(recall, 1)}
    return {f"{name}_95": np.round(np.percentile(values, [2.5, 97.5]), 4).tolist() for name, values in figures.items()}


def neutral_misreads(matrix, names) -> dict | None:
    """The shares of neutral faces read as neutral, angry and sad."""
    row = np.asarray(matrix)[names.index("neutral")] if "neutral" in names else None
    if row is None or not row.sum():
        return None
    return {label: round(float(row[names.index(label)] / row.sum()), 4) for label in ("neutral", "angry", "sad")}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="../shared/faces_in_the_wild",
                   help="labelled real faces: a datasets folder, a Parquet file or FOLDER/<label>/<image>")
    p.add_argument("--persons", choices=PERSONS, default="test", help="which persons of a set with a subject column")
    p.add_argument("--fer2013", default="../shared/fer2013", help="FER-2013 (its validation split is read beside)")
    p.add_argument("--model", default=None, help="model folder or Hub id (default: the embedded default)")
    p.add_argument("--precision", choices=["int8", "fp32"], default=None, help="default: int8 where the model has it")
    p.add_argument("--name", default="in_the_wild", help="results go to benchmarks/results/NAME.json and NAME.png")
    args = p.parse_args(argv)
    recognizer = EmotionRecognizer.from_pretrained(args.model, precision=args.precision)
    try:
        wild = collection(args.dataset, args.persons)
        fer = load_split(args.fer2013, "validation") if args.fer2013 else None
        figures = {"model": args.model or "embedded default", "precision": recognizer.precision,
                   "dataset": args.dataset, "persons": args.persons,
                   "real_faces": read(recognizer, wild, Path(args.dataset).name, RESULTS / f"{args.name}.png")}
        if fer is not None:
            figures["fer2013_validation"] = read(recognizer, fer, "FER-2013 validation")
    except DatasetFormatError as err:
        raise SystemExit(f"error: {err}") from None
    return report(args.name, figures)


if __name__ == "__main__":
    main()
