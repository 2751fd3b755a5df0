"""The one ONNX export of a trained model (needs torch): the file every runtime reads.

One self-contained `model.onnx` (opset 17, weights inside, dynamic batch), BatchNorms folded, input
`faces` (N, 1, S, S) normalized, outputs `logits` (N, classes) and `features` (the last stage's map
before pooling). Checked against torch on ONNX Runtime when it is written.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch

from .classifier import FEATURES, INPUT, LOGITS, OnnxClassifier
from .model import EmotionCNN, InferenceGraph

OPSET = 17
TOLERANCE = 1e-4
"""Largest |logit difference| between ONNX Runtime and torch that `export_onnx` accepts."""


def export_onnx(model: EmotionCNN, path: str | Path, input_size: int) -> Path:
    """Write `model` as ONNX to `path` and check it: ONNX Runtime's logits and features on random faces
    (batches of 1 and 5) within `TOLERANCE` of torch's, else `RuntimeError`."""
    path = Path(path)
    graph = InferenceGraph(model).float().cpu().eval()
    example = torch.zeros(1, 1, input_size, input_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated; it writes one file, needs no onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(graph, (example,), buffer, dynamo=False, opset_version=OPSET, input_names=[INPUT],
                          output_names=[LOGITS, FEATURES], do_constant_folding=True,
                          dynamic_axes={name: {0: "batch"} for name in (INPUT, LOGITS, FEATURES)})
    path.write_bytes(buffer.getvalue())
    check(graph, OnnxClassifier(path, threads=1), input_size)
    return path


@torch.inference_mode()
def check(graph: InferenceGraph, exported: OnnxClassifier, input_size: int) -> float:
    """The largest |difference| between torch and the exported graph; `RuntimeError` above `TOLERANCE`."""
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for batch in (1, 5):
        inputs = torch.randn(batch, 1, input_size, input_size, generator=generator)
        expected = [t.numpy() for t in graph(inputs)]
        got = exported.logits_and_features(inputs.numpy())
        worst = max(worst, *(float(np.abs(e - g).max()) for e, g in zip(expected, got)))
    if worst > TOLERANCE:
        raise RuntimeError(f"the ONNX export differs from torch by {worst:.2e} (more than {TOLERANCE:g})")
    return worst
