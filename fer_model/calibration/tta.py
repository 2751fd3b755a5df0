"""Test-time augmentation: the views of a face batch whose probabilities are averaged.

- ``none``: the centre crop.
- ``flip``: the centre crop and its mirror image.
- ``ten_crop``: the four corner crops and the centre crop, each also mirrored (the same as
  ``flip`` for a model that sees whole faces).

Inputs are numpy arrays; `center_crop` and `average_probabilities` also take torch tensors (training
crops with the first, the calibration fit differentiates the second).
"""
from __future__ import annotations

import numpy as np

TTA_MODES = ("none", "flip", "ten_crop")


def modes_for(crop_size: int | None) -> tuple[str, ...]:
    """The TTA modes a model has: ten-crop only where it sees crops of its faces (`crop_size`)."""
    return TTA_MODES if crop_size else ("none", "flip")


def center_crop(inputs, size: int):
    """The central `size` x `size` square of (..., H, W) inputs."""
    top, left = (inputs.shape[-2] - size) // 2, (inputs.shape[-1] - size) // 2
    return inputs[..., top:top + size, left:left + size]


def views(inputs: np.ndarray, mode: str, size: int) -> np.ndarray:
    """The `size` x `size` views of (N, C, H, W) inputs that `mode` averages over, as one contiguous
    float32 batch of shape (views x N, C, size, size), view-major."""
    if mode not in TTA_MODES:
        raise ValueError(f"unknown TTA mode {mode!r}; choose one of {', '.join(TTA_MODES)}")
    height, width = inputs.shape[-2:]
    if mode == "ten_crop" and (height, width) != (size, size):
        corners = [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size)]
        crops = [inputs[..., t:t + size, l:l + size] for t, l in corners] + [center_crop(inputs, size)]
    else:
        crops = [center_crop(inputs, size)]
    crops = crops + [c[..., ::-1] for c in crops] if mode != "none" else crops
    return np.ascontiguousarray(np.concatenate(crops), dtype=np.float32)


def softmax(x):
    """Softmax over the last axis of a numpy array or a torch tensor."""
    if isinstance(x, np.ndarray):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    return x.softmax(-1)


def average_probabilities(logits, temperature=1.0, class_bias=None):
    """Softmax of (views, N, classes) logits divided by `temperature`, plus `class_bias` (one offset per
    class) when given, averaged over the views."""
    scaled = logits / temperature
    if class_bias is not None:
        if isinstance(class_bias, (tuple, list)):
            class_bias = np.asarray(class_bias, dtype=np.float32)
            if not isinstance(scaled, np.ndarray):
                import torch

                class_bias = torch.as_tensor(class_bias, dtype=scaled.dtype, device=scaled.device)
        scaled = scaled + class_bias
    return softmax(scaled).mean(0)


def calibrated_probabilities(logits, calibration, tta: str, sides=None) -> np.ndarray:
    """`average_probabilities` of (views, N, classes) numpy logits under a `config.Calibration`'s `tta` mode,
    each face under the calibration of its side in pixels (`sides`, N of them; None: the base calibration)."""
    logits = np.asarray(logits)
    large = np.zeros(logits.shape[1], bool)
    if sides is not None:
        large[:] = [calibration.is_large(side) for side in sides]
    probabilities = np.empty(logits.shape[1:], logits.dtype)
    for members, c in ((~large, calibration), (large, calibration.large_faces)):
        if members.any():
            probabilities[members] = average_probabilities(logits[:, members], c.temperature(tta), c.class_bias(tta))
    return probabilities
