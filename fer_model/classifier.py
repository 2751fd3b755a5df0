"""The emotion CNN behind one interface, on ONNX Runtime (the default) or on torch.

    classifier = OnnxClassifier(folder / "model.onnx")     # no torch needed (TorchClassifier: fer_model.model)
    logits = classifier.logits(inputs)                      # float32 (N, 1, S, S) -> (N, classes)
    logits, features = classifier.logits_and_features(inputs)   # and the last stage's map before pooling

Both run the same network, BatchNorms folded: `fer_model.export` writes the graph that the ONNX
backend reads, and checks it against torch when it does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import ModelLoadError
from .runtime import session_options

BACKENDS = ("onnx", "torch")
ONNX_NAME = "model.onnx"
INT8_NAME = "model_int8.onnx"
WEIGHTS_NAME = "model.safetensors"
INPUT, LOGITS, FEATURES = "faces", "logits", "features"
"""The graph's input and outputs: `features` is the last stage's activation map before its max pooling."""
BATCHNORM_EPS = 1e-5  # torch's BatchNorm1d default, which EmotionCNN's head uses


class Classifier(Protocol):
    """Logits of normalized faces (N, 1, S, S), float32 numpy in and out. Safe to call from many threads."""

    name: str

    def logits(self, inputs: np.ndarray) -> np.ndarray: ...

    def logits_and_features(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def head(self) -> "Head": ...


class OnnxClassifier:
    """`model.onnx` on ONNX Runtime's CPU provider, `threads` intra-op threads that do not spin."""

    name = "onnx"

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelLoadError(f"no {self.path.name} in {self.path.parent}: save the model again with "
                                 "save_pretrained (it writes the ONNX export), or load it with backend='torch'")
        self._head = None
        try:
            self.session = ort.InferenceSession(str(self.path), session_options(threads),
                                                providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own types for unreadable graphs
            raise ModelLoadError(f"{self.path} is not a valid ONNX model: {str(err).splitlines()[0]}") from err

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        return self.session.run([LOGITS], {INPUT: inputs})[0]

    def logits_and_features(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, features = self.session.run([LOGITS, FEATURES], {INPUT: inputs})
        return logits, features

    def head(self) -> "Head":
        """The head's weights, from the `model.safetensors` beside the graph (for saliency), read once."""
        if self._head is None:
            from safetensors.numpy import load_file

            weights = self.path.parent / WEIGHTS_NAME
            if not weights.is_file():
                raise ModelLoadError(f"saliency maps need {WEIGHTS_NAME} beside {self.path.name} in {self.path.parent}")
            self._head = Head.from_state(load_file(weights))
        return self._head


class Head:
    """EmotionCNN's head as arrays, BatchNorm folded: pooled features -> hidden (ReLU) -> logits.

    `hidden = relu(W1 @ flat + b1)`, `logits = W2 @ hidden + b2`; enough to differentiate a logit
    with respect to the last stage's features exactly (`fer_model.explain`)."""

    def __init__(self, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray):
        self.w1, self.b1, self.w2, self.b2 = w1, b1, w2, b2

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> "Head":
        """From an EmotionCNN state dict (numpy arrays, any float dtype)."""
        get = lambda key: np.asarray(state[f"head.{key}"], dtype=np.float64)  # noqa: E731
        scale = get("3.weight") / np.sqrt(get("3.running_var") + BATCHNORM_EPS)
        w1 = get("2.weight") * scale[:, None]
        b1 = get("3.bias") - get("3.running_mean") * scale
        return cls(w1, b1, get("6.weight"), get("6.bias"))
