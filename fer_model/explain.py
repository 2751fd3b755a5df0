"""What the model looked at: class-activation maps on the last convolutional stage.

- ``gradcam`` (Selvaraju et al., 2017), the default: activations weighted by the spatially averaged gradient.
- ``hirescam`` (Draelos & Carin, 2020): gradient x activation, summed over channels, in principle
  more faithful for a head that flattens the feature map into a linear layer, as `EmotionCNN`'s does.

`benchmarks/saliency.py` compares them by deletion (blanking the most salient pixels should hurt the
predicted class the most): both beat random pixels, and which leads changes from model to model
(Grad-CAM ahead, level, then behind on three defaults), so the method the literature names stays the default.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .model import EmotionCNN


SALIENCY_METHODS = ("gradcam", "hirescam")


def class_activation_map(model: EmotionCNN, inputs: torch.Tensor, targets: torch.Tensor | None = None,
                         method: str = "gradcam") -> torch.Tensor:
    """Saliency of normalized inputs (N, 1, S, S) for `targets` (default: the predicted class).

    Uses the last stage's activations before pooling and the gradient of the target logit; the
    positive part, upsampled to S x S and scaled to 0..1 per face, is returned (N, S, S).
    """
    if method not in SALIENCY_METHODS:
        raise ValueError(f"unknown saliency method {method!r}; choose one of {', '.join(SALIENCY_METHODS)}")
    stage = model.features[-1]
    activations = []
    hook = stage[-2].register_forward_hook(lambda module, args, output: activations.append(output))
    try:
        with torch.enable_grad():
            logits = model(inputs.detach().requires_grad_(True))
            targets = logits.argmax(1) if targets is None else targets
            chosen = logits.gather(1, targets.view(-1, 1)).sum()
            gradients, = torch.autograd.grad(chosen, activations[0])
    finally:
        hook.remove()
    weights = gradients if method == "hirescam" else gradients.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activations[0]).sum(1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=inputs.shape[-2:], mode="bilinear", align_corners=False).squeeze(1)
    return cam / cam.flatten(1).max(1).values.clamp_min(1e-8).view(-1, 1, 1)


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """A 0..1 heatmap (H, W) as an RGB uint8 image with matplotlib's 'jet' colours."""
    from matplotlib import colormaps

    return (colormaps["jet"](np.clip(heatmap, 0, 1))[..., :3] * 255).astype(np.uint8)


def overlay(image: Image.Image, heatmaps: list[np.ndarray], squares: list[tuple[float, float, float]],
            alpha: float = 0.6) -> Image.Image:
    """`image` with each heatmap blended over its face's square crop (centre x, centre y, side), more
    opaque where the heat is higher, so that parts the model ignored stay as they are."""
    canvas = np.asarray(image.convert("RGB")).astype(np.float32)
    height, width = canvas.shape[:2]
    for heatmap, (cx, cy, side) in zip(heatmaps, squares):
        side = max(1, int(round(side)))
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        heat = np.asarray(Image.fromarray((heatmap * 255).astype(np.uint8)).resize((side, side), Image.BILINEAR)) / 255
        colour = colorize(heat)
        left, top, right, bottom = max(0, x0), max(0, y0), min(width, x0 + side), min(height, y0 + side)
        if right <= left or bottom <= top:
            continue
        window = (slice(top - y0, bottom - y0), slice(left - x0, right - x0))
        weight = alpha * heat[window][..., None]
        canvas[top:bottom, left:right] = (1 - weight) * canvas[top:bottom, left:right] + weight * colour[window]
    return Image.fromarray(canvas.round().astype(np.uint8))
