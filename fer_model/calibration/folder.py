"""`fer-model calibrate`: a model's calibration re-fitted on a labelled folder of photos or face crops, no
training, and kept only where it is no worse on a held-out part of that folder.

    FOLDER/<label>/<image>   labels the model's own (happy, sad, ...); faces found and cropped as `predict` does
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import hub
from .fit import calibration_metrics, choose_calibration
from ..errors import FERError
from ..image_io import IMAGE_SUFFIXES
from ..predictor import EmotionRecognizer, single_faces
from .tta import average_probabilities, modes_for


class LabelledFolderError(FERError, ValueError):
    """A folder that cannot be read as FOLDER/<label>/<image> for this model."""


def labelled_faces(recognizer: EmotionRecognizer, folder: str | os.PathLike, progress=None,
                   labels: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray]:
    """The one face of every image under FOLDER/<label>/ (crops as `predict` makes them), its label's id among
    `labels` (default: the model's), the counts of images used and skipped (no face, several, unreadable), and
    each face's side in its photo."""
    folder, names = Path(folder), labels or recognizer.labels
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []
    if not classes:
        raise LabelledFolderError(f"{folder} has no class folders: lay it out as {folder}/<label>/<image>")
    unknown = [c for c in classes if c.lower() not in names]
    if unknown:
        raise LabelledFolderError(f"{', '.join(unknown)}: not among the model's labels ({', '.join(names)})")
    images = [(path, names.index(c.lower())) for c in classes for path in sorted((folder / c).rglob("*"))
              if path.suffix.lower() in IMAGE_SUFFIXES]
    crops, kept, counts, sides = single_faces(recognizer.find_faces, [path for path, _ in images], progress)
    size = recognizer.config.preprocessing.image_size
    return (np.stack(crops) if crops else np.zeros((0, size, size), np.uint8),
            np.array([images[i][1] for i in kept], dtype=np.int64), counts, np.array(sides, dtype=np.int64))


def held_out_split(labels: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices to fit on and indices held out: `fraction` of each class held out (at least one where it has two)."""
    rng = np.random.default_rng(seed)
    fit, held = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = min(len(members) - 1, max(1, round(fraction * len(members)))) if len(members) > 1 else 0
        held += members[:cut].tolist()
        fit += members[cut:].tolist()
    return np.array(sorted(fit)), np.array(sorted(held))


def recalibrate(source: str | None, folder: str | os.PathLike, out: str | os.PathLike, held_out: float = 0.5,
                seed: int = 0, progress=None) -> dict:
    """Fit the calibration of the model at `source` (each of its graphs: float, and int8 where it has one) on
    part of the labelled `folder`, keep it per TTA mode only where the held-out part's ECE and NLL are no worse
    than the model's own calibration gives, and write the model with it to `out`; where no mode of any graph
    changed, nothing is written (`report["written"]` False). A model with a large-face calibration has each of
    its two calibrations fitted on the faces of its size (`config.Calibration.for_side`). Returns the report."""
    model_folder = hub.resolve(source)
    config = hub.read_config(model_folder)
    recognizer = EmotionRecognizer.from_pretrained(model_folder, precision="fp32")
    faces, labels, counts, sides = labelled_faces(recognizer, folder, progress)
    if len(labels) < 2 * len(np.unique(labels)) or len(np.unique(labels)) < 2:
        raise LabelledFolderError(f"{counts['used']} usable faces in {folder}: calibrating needs at least two "
                                  "classes with two faces each (one to fit, one to check)")
    fit, held = held_out_split(labels, held_out, seed)
    modes = modes_for(config.preprocessing.crop_size)
    report = {"images": counts, "fit_faces": len(fit), "held_out_faces": len(held), "graphs": {}}
    large = np.array([config.calibration().is_large(side) for side in sides], bool)
    for precision in ("fp32", "int8") if config.int8 else ("fp32",):
        runner = recognizer if precision == "fp32" else EmotionRecognizer.from_pretrained(model_folder, precision="int8")
        for size, members in (("small", ~large), ("large", large)):
            if not members[fit].any() or not members[held].any():
                continue
            old = runner.calibration if size == "small" else runner.calibration.large_faces or runner.calibration
            calibration, graph = recalibrate_graph(runner, faces, labels, fit[members[fit]], held[members[held]],
                                                   modes, old)
            report["graphs"][precision if size == "small" else f"{precision}, large faces"] = graph
            if size == "large":
                own = config.int8.get("large_faces", {}) if precision == "int8" else config.large_faces
                calibration = {"large_faces": {**own, **calibration}}
            config = replace(config, **calibration) if precision == "fp32" else replace(
                config, int8={**config.int8, **calibration})
    report["written"] = any(graph["changed"] for graph in report["graphs"].values())
    if report["written"]:
        hub.copy_pretrained(model_folder, config, out)
    return report


def recalibrate_graph(recognizer: EmotionRecognizer, faces, labels, fit, held, modes, old) -> tuple[dict, dict]:
    """One graph's new calibration fields (each mode's own, or `old`, the `config.Calibration` it replaces, where
    the new is worse on `held`) and, per mode, the held-out metrics before and after and which was kept."""
    logits = {m: recognizer.face_logits(faces, m) for m in modes}
    fitted = choose_calibration({m: x[:, fit] for m, x in logits.items()}, labels[fit], len(recognizer.labels), old)
    fields = {"temperatures": {}, "class_biases": {}, "uncertainty": fitted.fields["uncertainty"]}
    graph = {"method": fitted.method, "reason": fitted.reason, "modes": {}}
    for mode in modes:
        new = (fitted.fields["temperatures"][mode], fitted.fields["class_biases"].get(mode))
        before = held_out_metrics(logits[mode][:, held], labels[held], old.temperature(mode), old.class_bias(mode))
        after = held_out_metrics(logits[mode][:, held], labels[held], *new)
        differs = new != (old.temperature(mode), old.class_bias(mode))
        keep_new = differs and after["ece"] <= before["ece"] and after["nll"] <= before["nll"]
        temperature, bias = new if keep_new else (old.temperature(mode), old.class_bias(mode))
        fields["temperatures"][mode] = temperature
        if bias is not None:
            fields["class_biases"][mode] = bias
        graph["modes"][mode] = {"kept": "new" if keep_new else "model's own", "before": before, "after": after,
                                "temperature": temperature, "class_bias": bias}
    graph["changed"] = any(m["kept"] == "new" for m in graph["modes"].values())
    if not graph["changed"]:
        fields["uncertainty"] = dict(old.uncertainty)
    return fields, graph


def held_out_metrics(logits, labels, temperature, class_bias) -> dict:
    metrics = calibration_metrics(average_probabilities(logits.astype(np.float64), temperature, class_bias), labels)
    return {k: round(metrics[k], 4) for k in ("accuracy", "ece", "nll")}
