"""Human-readable results: classification report text, confusion-matrix, learning-curve and reliability plots."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from fer_model.runtime import cpu_name  # noqa: E402

COMMAND_FILE = "command.txt"
"""The exact command of a training run, written into its folder when it starts."""
HISTORY_FILE = "metrics.jsonl"
"""A run's epochs, one JSON line each (`train.train` writes it; `train.finish` and the card read it)."""


def device_name(device: torch.device | str = "cpu") -> str:
    """The GPU's or CPU's model name (e.g. "NVIDIA H100 80GB HBM3"), for run records and benchmark reports."""
    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()


def classification_report(metrics: dict) -> str:
    """A fixed-width per-class precision/recall/F1 table with accuracy and macro averages."""
    lines = [f"{'':>10} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>9}"]
    for name, m in metrics["per_class"].items():
        lines.append(f"{name:>10} {m['precision']:9.4f} {m['recall']:9.4f} {m['f1']:9.4f} {m['support']:9d}")
    lines.append(f"{'macro avg':>10} {metrics['macro_precision']:9.4f} {metrics['macro_recall']:9.4f} "
                 f"{metrics['macro_f1']:9.4f} {metrics['num_examples']:9d}")
    lines.append(f"{'accuracy':>10} {metrics['accuracy']:29.4f} {metrics['num_examples']:9d}")
    if "ferplus_accuracy" in metrics:
        lines.append(f"{'FER+ maj.':>10} {metrics['ferplus_accuracy']:29.4f} {metrics['ferplus_faces']:9d}"
                     f"   (cross-entropy to the raters' vote shares {metrics['ferplus_cross_entropy']:.4f})")
    return "\n".join(lines)


def plot_confusion_matrix(matrix, labels, path: str | Path, title: str = "Confusion matrix") -> Path:
    """Row-normalized confusion matrix (true class per row) with counts and rates in each cell."""
    matrix = np.asarray(matrix)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
           xlabel="predicted", ylabel="true", title=title)
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{rates[i, j]:.0%}\n{matrix[i, j]}", ha="center", va="center", fontsize=8,
                    color="white" if rates[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_learning_curves(history: list[dict], path: str | Path) -> Path:
    """Loss and accuracy per epoch, train beside validation."""
    epochs = [h["epoch"] for h in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    style = {"marker": "o", "markersize": 3}  # a run of one epoch is still visible
    loss_ax.plot(epochs, [h["train_loss"] for h in history], label="train (augmented, training loss)", **style)
    loss_ax.plot(epochs, [h["val_loss"] for h in history], label="validation", **style)
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    acc_ax.plot(epochs, [h["train_accuracy"] for h in history], label="train (augmented)", **style)
    acc_ax.plot(epochs, [h["val_accuracy"] for h in history], label="validation", **style)
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_reliability(calibration: dict, path: str | Path, before: dict | None = None, title: str = "") -> Path:
    """Reliability diagram: accuracy against mean confidence per bin (with `before` scaling, when given),
    the diagonal of perfect calibration, and the number of faces in each bin."""
    fig, (ax, count_ax) = plt.subplots(2, 1, figsize=(6, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", label="perfect calibration")
    for result, name, color in ((before, "before scaling", "tab:orange"), (calibration, "calibrated", "tab:blue")):
        if result:
            bins = [b for b in result["bins"] if b["count"]]
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", color=color,
                    label=f"{name} (ECE {result['ece']:.3f})")
    ax.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title=title or "Reliability")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    bins = calibration["bins"]
    count_ax.bar([(b["lower"] + b["upper"]) / 2 for b in bins], [b["count"] for b in bins],
                 width=bins[0]["upper"] - bins[0]["lower"], color="tab:blue", alpha=0.7)
    count_ax.set(xlabel="confidence (top probability)", ylabel="faces")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
