"""The end of a training run: calibrate, score every TTA mode, write plots, report and model card.

Run by `train.train` when training ends; run it by hand on a run folder whose training was cut short:

    python -m train.finish runs/fer --dataset ../shared/fer2013
"""
from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import replace
from pathlib import Path

from fer_model import EMOTIONS, EmotionRecognizer
from fer_model.hub import CONFIG_NAME, read_config, resolve
from fer_model.calibration.tta import modes_for

from .calibration import calibrate, real_summary
from .card import write_model_card
from .quantize import add_int8
from .report import (COMMAND_FILE, HISTORY_FILE, classification_report, plot_confusion_matrix, plot_learning_curves,
                     plot_reliability)


def finish_run(folder: str | Path, split, history: list | None = None, command: str | None = None,
               dataset: str = "", split_sizes: dict | None = None, limit: int | None = None,
               fine_tuned_from: str | None = None, teachers: list[str] | tuple[str, ...] = (),
               quantize_faces=None, base=None, faces: str = "whole", real_split=None) -> dict:
    """Fit the calibration (temperature and class bias) per TTA mode and the uncertainty thresholds on `split`
    (validation), store them in config.json, score every mode before and after, write metrics.json, the
    plots, the report and the card. With `quantize_faces` (uint8 training faces that set its ranges), also
    the int8 model, calibrated and scored the same way (`train.quantize`). With few validation faces the
    calibration falls back as `fer_model.calibration.fit` says, on `base` (the fine-tuned model's calibration) last.
    `real_split`: labelled photos of real faces from other sources (persons the run did not train on), cropped
    as predict crops them, calibrated on with the validation faces and scored apart (`train.calibration`).

    Returns the metrics of the plain (no TTA) mode."""
    from .data import split_votes, to_tensors

    folder = Path(folder)
    recognizer = EmotionRecognizer.from_pretrained(folder, precision="fp32")
    config = recognizer.config
    votes = split_votes(split, limit) if faces == "whole" and config.labels == EMOTIONS else None
    faces, labels = to_tensors(split, config.preprocessing.image_size, limit, faces)
    real = to_tensors(real_split, config.preprocessing.image_size, faces="crop") if real_split is not None else None
    modes = modes_for(config.preprocessing.crop_size)
    results, fields, uncertainty = calibrate(recognizer, faces, labels, modes, base, real, votes)
    temperatures = fields["temperatures"]
    config = replace(config, **fields)
    (folder / CONFIG_NAME).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    metrics = {"validation": results["none"], **{f"validation_{mode}": results[mode] for mode in modes[1:]},
               "uncertainty": uncertainty}
    if real is not None:
        metrics["real_faces"] = {mode: real_summary(results[mode].pop("real")) for mode in modes}
    if quantize_faces is not None:
        metrics["int8"] = add_int8(folder, quantize_faces, faces, labels, results, real, votes)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    best = max(modes, key=lambda mode: results[mode]["accuracy"])
    (folder / "classification_report.txt").write_text(
        "\n\n".join(f"TTA {mode}:\n{classification_report(results[mode])}" for mode in modes) + "\n")
    plot_confusion_matrix(results[best]["confusion_matrix"], config.labels, folder / "confusion_matrix.png",
                          title=f"Validation confusion matrix, TTA {best} (accuracy {results[best]['accuracy']:.1%})")
    plot_reliability(results[best]["calibration"], folder / "reliability.png",
                     before=results[best]["calibration_before"],
                     title=f"Validation, TTA {best}: temperature {temperatures[best]:g} and class bias")
    if history:
        plot_learning_curves(history, folder / "learning_curves.png")
    if command:
        write_model_card(folder, results, command.strip(), dataset, split_sizes or {}, config.to_dict(), history,
                         fine_tuned_from=fine_tuned_from, teachers=teachers, int8=metrics.get("int8"),
                         real=metrics.get("real_faces"))
    print(f"calibration: {uncertainty['method']} ({uncertainty['reason']})")
    print(f"uncertain when confidence < {uncertainty['min_confidence']} or margin < {uncertainty['min_margin']}: "
          f"{uncertainty['flagged_fraction']:.1%} of validation faces flagged")
    for mode in modes:
        r = results[mode]
        print(f"validation, TTA {mode:8}: accuracy {r['accuracy_before']:.4f} -> {r['accuracy']:.4f}, "
              + (f"FER+ majority {r['ferplus_accuracy']:.4f}, " if "ferplus_accuracy" in r else "")
              + f"macro F1 {r['macro_f1']:.4f}, ECE {r['calibration_before']['ece']:.4f} -> "
              f"{r['calibration']['ece']:.4f} (T={r['temperature']:g})")
    for mode, r in metrics.get("real_faces", {}).items():
        print(f"real faces, TTA {mode:8}: accuracy {r['accuracy']:.4f}, balanced {r['balanced_accuracy']:.4f}, "
              f"ECE {r['ece_before']:.4f} -> {r['ece']:.4f}")
    return results["none"]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", help="the run's --output-dir")
    p.add_argument("--dataset", required=True, help="the dataset the run was trained on")
    p.add_argument("--limit-val", type=int, default=None)
    args = p.parse_args(argv)
    from .data import DatasetFormatError

    try:
        return finish_folder(args.folder, args.dataset, args.limit_val)
    except DatasetFormatError as err:
        p.error(str(err))


def finish_folder(folder: str | Path, dataset: str, limit_val: int | None = None,
                  fine_tuned_from: str | None = None) -> dict:
    """`finish_run` on a run's folder, from what its command.txt and metrics.jsonl recorded: the faces, the
    teachers, the model it was fine-tuned from (or `fine_tuned_from`) and its real faces' held-out persons."""
    from .data import DatasetFormatError, faces_mode, read_splits
    from .quantize import range_faces

    folder = Path(folder)
    history_file = folder / HISTORY_FILE
    history = [json.loads(line) for line in history_file.read_text().splitlines()] if history_file.is_file() else None
    command = recorded_command(folder)
    run, config = training_arguments(command), read_config(folder)
    splits = read_splits(dataset, own_labels=config.labels != EMOTIONS)
    faces = faces_mode(run.faces if run is not None else "auto", dataset)
    if "validation" not in splits:
        raise DatasetFormatError(f"{dataset} has no validation split to calibrate on (splits: {sorted(splits)})")
    split = splits["validation"]
    sizes = {"validation": len(split) if limit_val is None else min(limit_val, len(split))}
    if run is not None and "train" in splits:
        sizes = {"train": min(len(splits["train"]), run.limit_train or len(splits["train"])), **sizes}
    size = config.preprocessing.image_size
    quantize_faces = range_faces(splits["train"], size, faces=faces) if "train" in splits else None
    source = fine_tuned_from or (run.init_from if run is not None else None)
    base = read_config(resolve(source)) if source else None
    return finish_run(folder, split, history, command, dataset, sizes, limit_val, fine_tuned_from=source,
                      teachers=run.teacher if run is not None else (), quantize_faces=quantize_faces,
                      base=base.calibration() if base and base.labels == config.labels else None,
                      faces=faces, real_split=extra_persons(run))


def recorded_command(folder: Path) -> str:
    """The commands that made a run folder, as its command.txt recorded them."""
    command_file = Path(folder) / COMMAND_FILE
    return command_file.read_text().strip() if command_file.is_file() else "(command not recorded)"


def extra_persons(run, part: str = "calibration"):
    """The real faces of a run's extra dataset that it trained on (`part` "train") or selected and calibrated
    on ("calibration"), split by person as the run split them; None for a run without one."""
    if run is None or not run.extra_dataset:
        return None
    from .data import person_splits

    return person_splits(run.extra_dataset, run.extra_held_out)[part]


def training_arguments(command: str):
    """The parsed arguments of a run's last recorded `python -m train.train` command, or None."""
    from .options import parse_args

    lines = [shlex.split(line) for line in command.strip().splitlines()]
    runs = [words for words in lines if words[:3] == ["python", "-m", "train.train"]]
    if not runs:
        return None
    words = runs[-1]
    try:
        return parse_args(words[3:])
    except SystemExit:
        return None


if __name__ == "__main__":
    main()
