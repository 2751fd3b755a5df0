"""Adapting the shipped model to a user's data: fine-tuning and recalibration on 100, 300 and 1,000 faces of three
shifts, scored before and after in every TTA mode on faces of the same shift it never saw.

- `camera`: FER-2013 faces as a webcam in a dim room gives them: darker (gamma), blurred, noisy, JPEG quality 40.
- `valence`: FER-2013's labels as positive (happy, surprise), negative (angry, disgust, fear, sad) and neutral;
  the shipped model reads them by summing its probabilities over each group.
- `subset`: faces of three of FER-2013's classes only (happy, sad, surprise), as a study of those would have; the
  fine-tuned model keeps the 7-class head.

Every face comes from FER-2013's validation split, which the shipped model never trained on, as a user's own
faces would be: the training faces of the largest size are drawn first (stratified), and every other face of the
shift is a test face (2,589 for `camera` and `valence`, what the three classes leave for `subset`); the smaller
sizes are drawn from the largest. `--seeds 0,1,2` fine-tunes each size once per training seed and reports the mean
beside each run: a seed moves a camera run by up to three points. `--ceiling` adds what the same fine-tuning wins
back from all of FER-2013's training faces, degraded as the camera degrades them.
Each size is written as a folder `<label>/<n>.png`, as a user's would be, and goes through the same commands:
`python -m train.train --dataset FOLDER --init-from <default>` and `fer-model calibrate FOLDER` (the shipped model
recalibrated, no training); every model is read through its folder's int8 graph, as `predict` reads it.

    python benchmarks/adapt.py --dataset ../shared/fer2013 [--sizes 100,300,1000] [--epochs 20] [--seeds 0,1,2]
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import RESULTS, report  # noqa: E402
from fer_model import EMOTIONS, EmotionRecognizer  # noqa: E402
from fer_model.calibration.fit import calibration_metrics  # noqa: E402
from fer_model.hub import DEFAULT_MODEL_DIR  # noqa: E402
from fer_model.calibration.folder import labelled_faces  # noqa: E402
from fer_model.calibration.tta import calibrated_probabilities, modes_for  # noqa: E402

VALENCE = {"positive": ("happy", "surprise"), "negative": ("angry", "disgust", "fear", "sad"), "neutral": ("neutral",)}
SUBSET = ("happy", "sad", "surprise")


def webcam_in_a_dim_room(face: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A face as a cheap webcam in a dim room sees it: darker, softer, noisier and JPEG-compressed."""
    pixels = np.asarray(face.convert("L"), dtype=np.float64) / 255
    dark = (pixels ** rng.uniform(1.3, 1.8)) * rng.uniform(0.45, 0.7)
    blurred = np.asarray(Image.fromarray(np.uint8(dark * 255)).filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.0))),
                         dtype=np.float64)
    noisy = np.clip(blurred + rng.normal(0, rng.uniform(4, 8), blurred.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, "JPEG", quality=40)
    return Image.open(io.BytesIO(buffer.getvalue()))


def relabel(shift: str, label: str) -> str:
    return next(group for group, members in VALENCE.items() if label in members) if shift == "valence" else label


def write_folder(split, indices, shift: str, folder: Path, seed: int) -> Path:
    """The faces at `indices` of a FER-2013 split, shifted, as FOLDER/<label>/<n>.png."""
    rng = np.random.default_rng(seed)
    names = split.features["label"].names
    for n, i in enumerate(tqdm(indices, desc=f"writing {folder}", leave=False, disable=len(indices) < 1000)):
        row = split[int(i)]
        face = webcam_in_a_dim_room(row["image"], rng) if shift == "camera" else row["image"]
        target = folder / relabel(shift, names[row["label"]])
        target.mkdir(parents=True, exist_ok=True)
        face.save(target / f"{n}.png")
    return folder


def stratified(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` indices with every label in its share (at least 10 of each)."""
    rng = np.random.default_rng(seed)
    picked = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        take = max(10, round(count * len(members) / len(labels)))
        picked += rng.choice(members, min(take, len(members)), replace=False).tolist()
    return rng.permutation(picked)[:count]


def scores(model_folder: Path, test_folder: Path, shift: str) -> dict:
    """Accuracy and ECE (15 bins) of a model's int8 graph on a labelled test folder, per TTA mode; a 7-label model
    on the valence folder reads each group as the sum of its members' probabilities."""
    recognizer = EmotionRecognizer.from_pretrained(model_folder)
    grouped = shift == "valence" and recognizer.labels == EMOTIONS
    faces, labels, _, sides = labelled_faces(recognizer, test_folder, labels=tuple(VALENCE) if grouped else None)
    result = {}
    for mode in modes_for(recognizer.config.preprocessing.crop_size):
        logits = recognizer.face_logits(faces, mode).astype(np.float64)
        probabilities = calibrated_probabilities(logits, recognizer.calibration, mode, sides)
        if grouped:
            probabilities = np.stack([probabilities[:, [EMOTIONS.index(m) for m in members]].sum(1)
                                      for members in VALENCE.values()], axis=1)
        metrics = calibration_metrics(probabilities, labels)
        result[mode] = {"accuracy": round(metrics["accuracy"], 4), "ece": round(metrics["ece"], 4)}
    return result


def mean_scores(runs: list[dict]) -> dict:
    """The mean accuracy and ECE of several runs' `scores`, mode by mode."""
    return {mode: {k: round(float(np.mean([run[mode][k] for run in runs])), 4) for k in runs[0][mode]}
            for mode in runs[0]}


def share_won_back(clean: dict, degraded: dict, adapted: dict) -> dict:
    """Per TTA mode, the part of the accuracy the shift cost (clean - degraded) that adaptation gave back."""
    return {mode: round((adapted[mode]["accuracy"] - degraded[mode]["accuracy"])
                        / (clean[mode]["accuracy"] - degraded[mode]["accuracy"]), 3) for mode in clean}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="FER-2013 in the datasets layout (its validation split is used)")
    p.add_argument("--sizes", default="100,300,1000")
    p.add_argument("--shifts", default="camera,valence,subset")
    p.add_argument("--test-faces", type=int, default=None, help="at most (default: every face not drawn for training)")
    p.add_argument("--seeds", default="0", help="training seeds: each size is fine-tuned once per seed")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--train-args", default="", help="more options for train.train, e.g. \"--ema-decay 0\"")
    p.add_argument("--work", default=None, help="folder for the data and models (default: a temporary one)")
    p.add_argument("--ceiling", action="store_true",
                   help="camera: also fine-tune on all of FER-2013's training faces, degraded the same way (10 epochs, "
                        "lr 3e-4): what adaptation wins back when data is plentiful")
    p.add_argument("--report", default="adapt", help="name of the results file (benchmarks/results/NAME.json)")
    args = p.parse_args()

    from datasets import load_dataset

    from fer_model.calibration.folder import recalibrate
    from train.train import main as train

    def fine_tune(folder: Path, out: Path, epochs: int, lr: float, seed: int, *more: str) -> None:
        train(["--dataset", str(folder.parent), "--init-from", str(DEFAULT_MODEL_DIR), "--epochs", str(epochs),
               "--lr", str(lr), "--warmup-epochs", "1", "--batch-size", "64", "--seed", str(seed),
               "--output-dir", str(out), *more])

    data = load_dataset(args.dataset)
    work = Path(args.work or tempfile.mkdtemp(prefix="fer_adapt_"))
    results = {}
    valid, sizes = data["validation"], [int(s) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    for shift in args.shifts.split(","):
        labels = np.array(valid["label"])
        usable = np.flatnonzero(np.isin(labels, [EMOTIONS.index(c) for c in SUBSET])) if shift == "subset" else \
            np.arange(len(labels))
        train_faces = usable[stratified(labels[usable], max(sizes), 1)]
        left = np.setdiff1d(usable, train_faces)
        test_faces = left[stratified(labels[left], args.test_faces, 1)] if args.test_faces else left
        test = write_folder(valid, test_faces, shift, work / shift / "test", 1)
        results[shift] = {"shipped": scores(DEFAULT_MODEL_DIR, test, shift), "sizes": {}}
        print(shift, "shipped", results[shift]["shipped"], flush=True)
        if shift == "camera":
            clean = work / "clean_test"
            write_folder(valid, test_faces, "none", clean, 1)
            results[shift]["shipped_on_clean_faces"] = scores(DEFAULT_MODEL_DIR, clean, shift)
        if shift == "camera" and args.ceiling:
            ceiling = work / shift / "ceiling"
            every = write_folder(data["train"], range(len(data["train"])), shift, ceiling / "data" / "train", 7)
            fine_tune(every, ceiling / "fine_tuned", 10, 3e-4, 0, "--faces", "whole")
            reached = scores(ceiling / "fine_tuned", test, shift)
            won_back = share_won_back(results[shift]["shipped_on_clean_faces"], results[shift]["shipped"], reached)
            results[shift]["ceiling"] = {"faces": len(data["train"]), "fine_tuned": reached, "share_won_back": won_back}
            print(shift, "ceiling", results[shift]["ceiling"], flush=True)
        for size in sizes:
            run = work / shift / str(size)
            picked = train_faces if size == max(sizes) else train_faces[stratified(labels[train_faces], size, size)]
            folder = write_folder(valid, picked, shift, run / "data" / "train", size)
            recalibrated = run / "recalibrated"
            figures = {}
            if shift == "camera":  # the same labels: the shipped model recalibrated alone, no training
                calibration = recalibrate(None, folder, recalibrated)
                figures["recalibrated"] = scores(recalibrated, test, shift)
                kept = calibration["graphs"]["int8"]["modes"]
                figures["recalibration_kept"] = {mode: graph["kept"] for mode, graph in kept.items()}
            runs = {}
            for seed in seeds:
                tuned = run / "fine_tuned" / f"seed{seed}"
                fine_tune(folder, tuned, args.epochs, args.lr, seed, *args.train_args.split())
                runs[seed] = scores(tuned, test, shift)
            figures["fine_tuned"] = mean_scores(list(runs.values()))
            if len(seeds) > 1:
                figures["fine_tuned_by_seed"] = runs
            if shift == "camera":
                figures["share_won_back"] = share_won_back(results[shift]["shipped_on_clean_faces"],
                                                           results[shift]["shipped"], figures["fine_tuned"])
            figures["calibration"] = json.loads((tuned / "metrics.json").read_text())["uncertainty"]["reason"]
            results[shift]["sizes"][size] = figures
            print(shift, size, figures, flush=True)
    previous = RESULTS / f"{args.report}.json"  # shifts measured before with the same recipe are kept beside these
    settings = {"epochs": args.epochs, "lr": args.lr, "train_args": args.train_args, "test_faces": args.test_faces,
                "seeds": seeds, "ceiling": args.ceiling}
    if previous.is_file() and {k: json.loads(previous.read_text()).get(k) for k in settings} == settings:
        results = {**json.loads(previous.read_text())["results"], **results}
    report(args.report, {**settings, "results": results})


if __name__ == "__main__":
    main()
