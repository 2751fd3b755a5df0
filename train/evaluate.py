"""Evaluate a model on a FER-2013 split; prints one JSON object on the last line of stdout.

    python -m train.evaluate --model runs/fer --dataset ../shared/fer2013 --split validation --tta
    python -m train.evaluate            # the embedded default model on ../shared/fer2013's validation split
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import evaluate
import torch

from fer_model import EmotionRecognizer
from fer_model.hub import resolve
from fer_model.preprocess import normalize

from .report import classification_report, plot_confusion_matrix, plot_learning_curves

METRIC_DIR = Path(__file__).parent / "metrics" / "fer_metrics"


def load_metric() -> evaluate.EvaluationModule:
    """The project's metrics as a local evaluate module (no download)."""
    return evaluate.load(str(METRIC_DIR))


@torch.inference_mode()
def predict_labels(recognizer: EmotionRecognizer, faces: torch.Tensor, tta: bool = False,
                   batch_size: int = 512) -> torch.Tensor:
    """Predicted label ids for uint8 faces (N, H, W)."""
    pre = recognizer.config.preprocessing
    return torch.cat([recognizer.probabilities(normalize(faces[i:i + batch_size].to(recognizer.device), pre), tta)
                      .argmax(1).cpu() for i in range(0, len(faces), batch_size)])


def compute_metrics(recognizer: EmotionRecognizer, faces: torch.Tensor, labels: torch.Tensor, tta: bool = False) -> dict:
    return load_metric().compute(predictions=predict_labels(recognizer, faces, tta), references=labels,
                                 labels=list(recognizer.labels))


def evaluate_and_report(folder: str | Path, split, history: list | None = None, command: str | None = None,
                        dataset: str = "", split_sizes: dict | None = None, limit: int | None = None) -> dict:
    """Score the model saved in `folder` on `split` (plain and flip-TTA), write metrics.json, plots and the card."""
    from .card import write_model_card
    from .data import to_tensors

    folder = Path(folder)
    recognizer = EmotionRecognizer.from_pretrained(folder)
    faces, labels = to_tensors(split, recognizer.config.preprocessing.image_size, limit)
    metrics = compute_metrics(recognizer, faces, labels)
    tta = compute_metrics(recognizer, faces, labels, tta=True)
    (folder / "metrics.json").write_text(json.dumps({"validation": metrics, "validation_tta": tta}, indent=2) + "\n")
    (folder / "classification_report.txt").write_text(classification_report(metrics) + "\n")
    plot_confusion_matrix(metrics["confusion_matrix"], recognizer.labels, folder / "confusion_matrix.png",
                          title=f"Validation confusion matrix (accuracy {metrics['accuracy']:.1%})")
    if history:
        plot_learning_curves(history, folder / "learning_curves.png")
    if command:
        write_model_card(folder, metrics, command, dataset, split_sizes or {}, recognizer.config.to_dict(),
                         tta_metrics=tta)
    print(classification_report(metrics))
    print(f"validation accuracy {metrics['accuracy']:.4f} (flip TTA {tta['accuracy']:.4f}), macro F1 {metrics['macro_f1']:.4f}")
    return metrics


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description="Evaluate a FER model on a dataset split.")
    p.add_argument("--model", default=None, help="model folder or Hub repo id (default: the embedded default)")
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    p.add_argument("--dataset", default="../shared/fer2013", help="Hub dataset id, parquet folder, fer2013.csv or image folder")
    p.add_argument("--split", default="validation")
    p.add_argument("--tta", action="store_true", help="average with horizontally flipped faces")
    p.add_argument("--limit", type=int, default=None, help="evaluate on a seeded subset of this many images")
    p.add_argument("--out", default=None, help="folder for the PNGs (default: next to a local model)")
    args = p.parse_args(argv)

    from .data import load_fer_dataset, to_tensors

    recognizer = EmotionRecognizer.from_pretrained(args.model, args.revision)
    data = load_fer_dataset(args.dataset)
    if args.split not in data:
        p.error(f"split {args.split!r} not in {args.dataset} (splits: {sorted(data)})")
    faces, labels = to_tensors(data[args.split], recognizer.config.preprocessing.image_size, args.limit)
    metrics = compute_metrics(recognizer, faces, labels, args.tta)
    out = Path(args.out) if args.out else resolve(args.model, args.revision)
    out.mkdir(parents=True, exist_ok=True)
    plot_confusion_matrix(metrics["confusion_matrix"], recognizer.labels, out / f"confusion_matrix_{args.split}.png",
                          title=f"{args.split} confusion matrix (accuracy {metrics['accuracy']:.1%})")
    result = {"model": args.model or "embedded default", "dataset": args.dataset, "split": args.split,
              "tta": args.tta, **metrics}
    print(classification_report(metrics))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
