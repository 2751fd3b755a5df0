"""Test-time augmentation: the views of a face batch whose probabilities are averaged.

- ``none``: the centre crop.
- ``flip``: the centre crop and its mirror image.
- ``ten_crop``: the four corner crops and the centre crop, each also mirrored (the same as
  ``flip`` for a model that sees whole faces).
"""
from __future__ import annotations

import torch

TTA_MODES = ("none", "flip", "ten_crop")


def center_crop(inputs: torch.Tensor, size: int) -> torch.Tensor:
    """The central `size` x `size` square of (N, C, H, W) inputs."""
    top, left = (inputs.shape[-2] - size) // 2, (inputs.shape[-1] - size) // 2
    return inputs[..., top:top + size, left:left + size]


def views(inputs: torch.Tensor, mode: str, size: int) -> list[torch.Tensor]:
    """The `size` x `size` views of (N, C, H, W) inputs that `mode` averages over."""
    if mode not in TTA_MODES:
        raise ValueError(f"unknown TTA mode {mode!r}; choose one of {', '.join(TTA_MODES)}")
    height, width = inputs.shape[-2:]
    if mode == "ten_crop" and (height, width) != (size, size):
        corners = [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size)]
        crops = [inputs[..., t:t + size, l:l + size] for t, l in corners] + [center_crop(inputs, size)]
    else:
        crops = [center_crop(inputs, size)]
    return crops + [c.flip(-1) for c in crops] if mode != "none" else crops


def tta_logits(model: torch.nn.Module, inputs: torch.Tensor, mode: str, size: int) -> torch.Tensor:
    """Logits of every view in one forward pass, shape (views, N, classes)."""
    crops = views(inputs, mode, size)
    batch = torch.cat(crops).contiguous(memory_format=torch.channels_last)  # oneDNN's fast path on CPUs
    return model(batch).float().view(len(crops), len(inputs), -1)


def average_probabilities(logits: torch.Tensor, temperature: float = 1.0,
                          class_bias: tuple[float, ...] | None = None) -> torch.Tensor:
    """Softmax of (views, N, classes) logits divided by `temperature`, plus `class_bias` (one offset per
    class) when given, averaged over the views."""
    scaled = logits / temperature
    if class_bias is not None:
        scaled = scaled + torch.as_tensor(class_bias, dtype=scaled.dtype, device=scaled.device)
    return scaled.softmax(dim=-1).mean(dim=0)
