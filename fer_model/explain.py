"""What the model looked at: class-activation maps on the last convolutional stage, computed exactly from
the classifier's `features` output and its head's weights, so that no autograd (and no torch) is needed.

- ``gradcam`` (Selvaraju et al., 2017), the default: activations weighted by the spatially averaged gradient.
- ``hirescam`` (Draelos & Carin, 2020): gradient x activation, summed over channels, in principle
  more faithful for a head that flattens the feature map into a linear layer, as `EmotionCNN`'s does.

The gradient of a logit with respect to the last stage's map (before its 2x2 max pooling) is the head's
chain rule written out: logit = W2 relu(W1 pool(A) + b1) + b2, the pooling passing each window's gradient
to its (first) largest element, as torch's does. docs/calibration.md compares the two methods by deletion.
"""
from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

SALIENCY_METHODS = ("gradcam", "hirescam")


def class_activation_map(classifier, inputs: np.ndarray, targets: np.ndarray | None = None,
                         method: str = "gradcam") -> np.ndarray:
    """Saliency of normalized inputs (N, 1, S, S) for `targets` (label ids; default: the predicted class).

    The positive part, upsampled bilinearly to S x S and scaled to 0..1 per face, is returned (N, S, S)."""
    if method not in SALIENCY_METHODS:
        raise ValueError(f"unknown saliency method {method!r}; choose one of {', '.join(SALIENCY_METHODS)}")
    logits, features = classifier.logits_and_features(inputs)
    targets = logits.argmax(1) if targets is None else np.asarray(targets)
    gradients = feature_gradients(classifier.head(), features.astype(np.float64), targets)
    weights = gradients if method == "hirescam" else gradients.mean(axis=(2, 3), keepdims=True)
    cams = np.maximum((weights * features).sum(1), 0).astype(np.float32)
    side = inputs.shape[-1]
    cams = np.stack([cv2.resize(cam, (side, side), interpolation=cv2.INTER_LINEAR) for cam in cams])
    return cams / np.maximum(cams.reshape(len(cams), -1).max(1), 1e-8)[:, None, None]


def feature_gradients(head, features: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """d logit[target] / d features for features (N, C, H, W) taken before the head's 2x2 max pooling."""
    n, c, h, w = features.shape
    ph, pw = h // 2, w // 2
    windows = (features[:, :, :2 * ph, :2 * pw].reshape(n, c, ph, 2, pw, 2)
               .transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ph, pw, 4))
    winner = windows.argmax(-1)
    hidden = windows.max(-1).reshape(n, -1) @ head.w1.T + head.b1
    d_pooled = ((head.w2[targets] * (hidden > 0)) @ head.w1).reshape(n, c, ph, pw)
    d_windows = np.zeros_like(windows)
    np.put_along_axis(d_windows, winner[..., None], d_pooled[..., None], axis=-1)
    gradients = np.zeros_like(features)
    gradients[:, :, :2 * ph, :2 * pw] = (d_windows.reshape(n, c, ph, pw, 2, 2).transpose(0, 1, 2, 4, 3, 5)
                                         .reshape(n, c, 2 * ph, 2 * pw))
    return gradients


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
