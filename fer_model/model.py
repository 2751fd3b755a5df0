"""The emotion CNN: a plain `nn.Module` built from a `ModelConfig`, and its inference forms (needs torch)."""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from . import runtime
from .config import ModelConfig


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class EmotionCNN(nn.Module):
    """VGG-style CNN for square grayscale faces: conv-BN-ReLU stages with max pooling, then a dropout MLP head.

    `forward` returns logits of shape (batch, num_classes); apply softmax for probabilities.
    """

    def __init__(self, config: ModelConfig | None = None, num_classes: int = 7, image_size: int = 48):
        super().__init__()
        self.config = config = config or ModelConfig()
        stages, cin = [], config.in_channels
        for width in config.widths:
            layers = [conv_bn_relu(cin if i == 0 else width, width) for i in range(config.convs_per_stage)]
            stages.append(nn.Sequential(*layers, nn.MaxPool2d(2)))
            cin = width
        self.features = nn.Sequential(*stages)
        side = image_size // 2 ** len(config.widths)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(cin * side * side, config.hidden, bias=False),
            nn.BatchNorm1d(config.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, num_classes),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def fuse_batchnorm(model: EmotionCNN) -> EmotionCNN:
    """An inference copy of `model` with every BatchNorm folded into the convolution or linear layer before
    it: the same outputs (up to rounding) with 9 fewer layers to run, a few percent less time a face on a CPU.
    The original keeps its layers, so it can still be trained, saved or explained."""
    fused = copy.deepcopy(model).eval()
    for sequence in [m for m in fused.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(sequence) - 1):
            layer, norm = sequence[i], sequence[i + 1]
            if isinstance(layer, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                sequence[i], sequence[i + 1] = fuse_conv_bn_eval(layer, norm), nn.Identity()
            elif isinstance(layer, nn.Linear) and isinstance(norm, nn.BatchNorm1d):
                sequence[i], sequence[i + 1] = fuse_linear_bn_eval(layer, norm), nn.Identity()
    return fused.to(memory_format=torch.channels_last)


class InferenceGraph(nn.Module):
    """What inference runs: `model` with its BatchNorms folded, returning the logits and the last stage's
    activation map before its pooling (`fer_model.classifier.FEATURES`, for saliency). Exported to ONNX."""

    def __init__(self, model: EmotionCNN):
        super().__init__()
        self.model = fuse_batchnorm(model)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.features
        last = features[-1]
        before_pool = last[:-1](features[:-1](x))
        return self.model.head(last[-1](before_pool)), before_pool


class TorchClassifier:
    """The `fer_model.classifier.Classifier` interface on torch: `model` folded, channels_last, on `device`.

    `threads` (default `fer_model.runtime.threads()`, i.e. `FER_THREADS`) sets torch's threads for the whole
    process: torch has no per-model setting."""

    name = "torch"

    def __init__(self, model: EmotionCNN, device: str | torch.device | None = None, threads: int | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.graph = InferenceGraph(self.model).to(self.device, memory_format=torch.channels_last).eval()
        torch.set_num_threads(threads or runtime.threads())

    @torch.inference_mode()
    def logits_and_features(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = torch.from_numpy(np.ascontiguousarray(inputs)).to(self.device).contiguous(memory_format=torch.channels_last)
        logits, features = self.graph(batch)
        return logits.float().cpu().numpy(), features.float().cpu().numpy()

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        return self.logits_and_features(inputs)[0]

    def head(self):
        """The head's weights as arrays (for saliency), as of the first call."""
        if not hasattr(self, "_head"):
            from .classifier import Head

            self._head = Head.from_state({k: v.detach().float().cpu().numpy()
                                          for k, v in self.model.state_dict().items() if k.startswith("head.")})
        return self._head
