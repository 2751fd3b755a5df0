"""Evaluate a model on one split of a FER-2013 dataset; prints one JSON object on the last line of stdout.

    python -m train.evaluate --model runs/fer --dataset ../shared/fer2013 --split validation --tta ten_crop
    python -m train.evaluate --dataset ../shared/fer2013            # the embedded default, validation split

The confusion matrix and reliability diagram go to --out (default: evaluation/<model>/ in the
working directory). Probabilities are calibrated with the model's temperature and class bias for the TTA mode.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import evaluate
import torch

from fer_model import EMOTIONS, EmotionRecognizer
from fer_model.classifier import BACKENDS
from fer_model.config import PRECISIONS
from fer_model.predictor import DEFAULT_TTA
from fer_model.calibration.tta import TTA_MODES, average_probabilities

from .ferplus import agreement
from .report import classification_report, plot_confusion_matrix, plot_reliability

METRICS = Path(__file__).parent / "metrics"


def load_metric(name: str = "fer_metrics") -> evaluate.EvaluationModule:
    """One of the project's local evaluate modules (`fer_metrics`, `calibration`); nothing is downloaded."""
    return evaluate.load(str(METRICS / name))


def collect_logits(recognizer: EmotionRecognizer, faces: torch.Tensor, tta: str = "none",
                   batch_size: int = 256) -> torch.Tensor:
    """Logits of every TTA view for uint8 faces (N, H, W), through the recognizer's classifier (the ONNX
    graph by default): shape (views, N, classes), on the CPU."""
    return torch.from_numpy(recognizer.face_logits(faces.cpu().numpy(), tta, batch_size))


def score(logits: torch.Tensor, labels: torch.Tensor, names, temperature: float = 1.0,
          class_bias: tuple[float, ...] | None = None, votes=None) -> dict:
    """Accuracy, F1 and confusion matrix, plus `calibration` (ECE, NLL, Brier, bins), of the probabilities at
    `temperature` and `class_bias`; with FER+'s `votes` for the faces, also how they read against the raters
    (`train.ferplus.agreement`: majority accuracy, cross-entropy to the vote shares)."""
    probabilities = average_probabilities(logits, temperature, class_bias)
    metrics = load_metric().compute(predictions=probabilities.argmax(1), references=labels, labels=list(names))
    calibration = load_metric("calibration").compute(probabilities=probabilities.tolist(), references=labels.tolist())
    raters = agreement(probabilities.numpy(), votes) if votes is not None and tuple(names) == EMOTIONS else {}
    return {**metrics, "calibration": calibration, **raters}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description="Evaluate a FER model on one dataset split.")
    p.add_argument("--model", default=None, help="model folder or Hub repo id (default: the embedded default)")
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    p.add_argument("--backend", choices=BACKENDS, default="onnx", help="run the model's ONNX graph or its torch weights")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="the float or the int8 graph (default: int8 where the model has one, on the onnx backend)")
    p.add_argument("--dataset", required=True, help="Hub dataset id, parquet folder, fer2013.csv or image folder")
    p.add_argument("--split", default="validation")
    p.add_argument("--tta", choices=TTA_MODES, default=DEFAULT_TTA,
                   help=f"test-time augmentation (default: {DEFAULT_TTA}, as predict)")
    p.add_argument("--limit", type=int, default=None, help="evaluate on a seeded subset of this many images")
    p.add_argument("--faces", choices=["auto", "crop", "whole"], default="auto",
                   help="crop each image's face as predict does (auto: in image folders), or take images whole")
    p.add_argument("--out", default=None, help="folder for the plots (default: evaluation/<model>)")
    args = p.parse_args(argv)

    from .data import DatasetFormatError, faces_mode, load_split, split_votes, to_tensors

    recognizer = EmotionRecognizer.from_pretrained(args.model, args.revision, backend=args.backend, precision=args.precision)
    try:
        split = load_split(args.dataset, args.split, own_labels=recognizer.labels != EMOTIONS)
        face_mode = faces_mode(args.faces, args.dataset)
        faces, labels = to_tensors(split, recognizer.config.preprocessing.image_size, args.limit, face_mode)
    except DatasetFormatError as err:
        p.error(str(err))
    votes = split_votes(split, args.limit) if face_mode == "whole" else None
    temperature, class_bias = recognizer.calibration.temperature(args.tta), recognizer.calibration.class_bias(args.tta)
    metrics = score(collect_logits(recognizer, faces, args.tta), labels, recognizer.labels, temperature, class_bias,
                    votes)
    out = Path(args.out or Path("evaluation") / re.sub(r"[^\w.-]+", "_", args.model or "default").strip("_"))
    out.mkdir(parents=True, exist_ok=True)
    plot_confusion_matrix(metrics["confusion_matrix"], recognizer.labels, out / f"confusion_matrix_{args.split}.png",
                          title=f"{args.split} confusion matrix (accuracy {metrics['accuracy']:.1%}, TTA {args.tta})")
    plot_reliability(metrics["calibration"], out / f"reliability_{args.split}.png",
                     title=f"{args.split}, TTA {args.tta}, temperature {temperature:g}")
    result = {"model": args.model or "embedded default", "dataset": args.dataset, "split": args.split,
              "tta": args.tta, "backend": args.backend, "precision": recognizer.precision, "temperature": temperature, "class_bias": class_bias, "outputs": str(out), **metrics}
    print(classification_report(metrics))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
