"""The int8 version of a trained model: static quantization of its `model.onnx` (QDQ, per-channel 7-bit
weights, uint8 activations whose ranges are set on training faces; 7 bits so that CPUs without VNNI cannot
saturate their 16-bit sums and read the graph as those with it do), then its own calibration per TTA mode
and uncertainty thresholds fitted on validation as `train.finish` fits the float model's. Written as
`model_int8.onnx` and the `int8` entry of `config.json`, which `EmotionRecognizer` and the browser then use.

    python -m train.quantize runs/fer --dataset ../shared/fer2013 [--quantize-faces 1024]
"""
from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from fer_model import EMOTIONS, EmotionRecognizer
from fer_model.classifier import INPUT, INT8_NAME, ONNX_NAME, OnnxClassifier
from fer_model.hub import CONFIG_NAME, read_config
from fer_model.preprocess import normalize
from fer_model.calibration.tta import center_crop, modes_for

from .calibration import calibrate, real_summary
from .card import replace_int8_section
from .low_bits import lower_int8

QUANTIZE_FACES = 1024
"""Training faces whose activations set the int8 ranges."""


def range_faces(train_split, image_size: int, count: int = QUANTIZE_FACES, faces: str = "whole") -> np.ndarray:
    """The training faces (uint8, a seeded subset of `count`, `faces` as `to_tensors` takes it) whose
    activations set the int8 ranges: the same ones whether the trainer, `train.finish` or this command quantizes."""
    from .data import to_tensors

    return to_tensors(train_split, image_size, count, faces)[0].numpy()


def quantize_onnx(source: Path, target: Path, inputs: np.ndarray) -> Path:
    """`source` (a float ONNX graph) statically quantized to int8 as `target`, ranges from `inputs`."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{INPUT: inputs[i:i + 64]} for i in range(0, len(inputs), 64)])

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))
        quantize_static(str(prepared), str(target), Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
    return target


def add_int8(folder: str | Path, quantize_faces, faces, labels, float_results: dict | None = None,
             real=None, votes=None, gzip_bytes: int | None = None, train_faces=None) -> dict:
    """Write the int8 model of `folder` and its calibration (fitted on uint8 `faces` and `labels`, validation,
    and on `real` faces of other sources where given, as `train.calibration.calibrate` fits them); returns its
    scores per TTA mode, with the float model's accuracy beside them when `float_results` are given, and the
    FER+ raters' majority accuracy with their `votes` for the faces. With `gzip_bytes`, its weights are lowered
    to fewer bits to gzip to about that (`train.low_bits`, distilled on uint8 `train_faces`)."""
    folder = Path(folder)
    config = read_config(folder)
    pre = config.preprocessing
    ranges = np.ascontiguousarray(center_crop(normalize(np.asarray(quantize_faces), pre), pre.input_size))
    quantize_onnx(folder / ONNX_NAME, folder / INT8_NAME, ranges)
    lowered = lower_int8(folder, ranges, train_faces, gzip_bytes) if gzip_bytes else {}
    recognizer = EmotionRecognizer(OnnxClassifier(folder / INT8_NAME), config)
    modes = modes_for(pre.crop_size)
    results, fields, uncertainty = calibrate(recognizer, faces, labels, modes, base=config.calibration(), real=real,
                                             votes=votes)
    config = replace(config, int8={"file": INT8_NAME, **fields})
    (folder / CONFIG_NAME).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    summary = {mode: {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"], "ece": r["calibration"]["ece"],
                      "temperature": r["temperature"],
                      **{k: r[k] for k in ("ferplus_accuracy", "ferplus_ece", "ferplus_cross_entropy") if k in r},
                      **({"float_accuracy": float_results[mode]["accuracy"]} if float_results else {}),
                      **({"real": real_summary(r["real"])} if "real" in r else {})}
               for mode, r in results.items()}
    for mode, r in summary.items():
        versus = f" (float {r['float_accuracy']:.4f})" if "float_accuracy" in r else ""
        real_line = (f"; real faces {r['real']['accuracy']:.4f}, balanced {r['real']['balanced_accuracy']:.4f}, "
                     f"ECE {r['real']['ece']:.4f}" if "real" in r else "")
        raters = f", FER+ majority {r['ferplus_accuracy']:.4f}" if "ferplus_accuracy" in r else ""
        print(f"int8, TTA {mode:8}: accuracy {r['accuracy']:.4f}{versus}{raters}, ECE {r['ece']:.4f}{real_line}")
    return {"by_tta": summary, "uncertainty": uncertainty, "quantize_faces": len(ranges),
            "bytes": (folder / INT8_NAME).stat().st_size, **lowered}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", help="a model folder with model.onnx (a run's --output-dir)")
    p.add_argument("--dataset", required=True, help="the dataset the model was trained on")
    p.add_argument("--quantize-faces", type=int, default=QUANTIZE_FACES, help="training faces that set the int8 ranges")
    p.add_argument("--int8-gzip-bytes", type=int, default=None,
                   help="lower the int8 weights' bits until the file gzips to about this (the browser page's "
                        "download; default: 7 bits everywhere)")
    args = p.parse_args(argv)
    if args.int8_gzip_bytes is not None and args.int8_gzip_bytes <= 0:
        p.error(f"--int8-gzip-bytes must be a positive number of bytes, not {args.int8_gzip_bytes}")

    import torch

    from .data import DatasetFormatError, faces_mode, read_splits, split_votes, to_tensors
    from .finish import extra_persons, recorded_command, training_arguments

    config = read_config(args.folder)
    try:
        splits = read_splits(args.dataset, own_labels=config.labels != EMOTIONS)
    except DatasetFormatError as err:
        p.error(str(err))
    run = training_arguments(recorded_command(args.folder))
    size, mode = config.preprocessing.image_size, faces_mode(run.faces if run is not None else "auto", args.dataset)
    faces, labels = to_tensors(splits["validation"], size, faces=mode)
    votes = split_votes(splits["validation"]) if mode == "whole" and config.labels == EMOTIONS else None
    real_split = extra_persons(run)
    real = to_tensors(real_split, size, faces="crop") if real_split is not None else None
    train_faces = None
    if args.int8_gzip_bytes:  # distilled on every face the run trained on
        extra = extra_persons(run, "train")
        train_faces = torch.cat([to_tensors(splits["train"], size, faces=mode)[0],
                                 *([to_tensors(extra, size, faces="crop")[0]] if extra is not None else [])])
    figures = add_int8(args.folder, range_faces(splits["train"], size, args.quantize_faces, mode), faces, labels,
                       real=real, votes=votes, gzip_bytes=args.int8_gzip_bytes, train_faces=train_faces)
    metrics_file = Path(args.folder) / "metrics.json"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        for mode, r in figures["by_tta"].items():
            key = "validation" if mode == "none" else f"validation_{mode}"
            if key in metrics:
                r["float_accuracy"] = metrics[key]["accuracy"]
        metrics_file.write_text(json.dumps({**metrics, "int8": figures}, indent=2) + "\n")
    replace_int8_section(Path(args.folder) / "README.md", figures)
    return figures


if __name__ == "__main__":
    main()
