"""What every face detector returns, and the box arithmetic they share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

Box = tuple[int, int, int, int]
"""x, y, width, height in original-image pixels."""


@dataclass(frozen=True)
class Face:
    """One detected face: its box, a score in 0..1 and, where the detector gives them, (x, y) keypoints."""

    box: Box
    score: float
    keypoints: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True)
class Framing:
    """How a detector's box maps onto FER-2013's framing of a face.

    The crop is a square of side `scale` x the box's mean side, centred `shift_y` box heights
    below the box's centre (negative: above). Fitted per detector by `benchmarks/fit_framing.py`.
    """

    scale: float
    shift_y: float = 0.0

    def square(self, box: Box) -> tuple[float, float, float]:
        """Centre x, centre y and side of the FER-style square crop around `box`."""
        x, y, w, h = box
        return x + w / 2, y + h / 2 + self.shift_y * h, self.scale * (w + h) / 2


class FaceDetector(Protocol):
    """Finds faces in an RGB uint8 image (H, W, 3); returns them largest first. Safe to call from many threads."""

    name: str
    framing: Framing

    def detect(self, image: np.ndarray) -> list[Face]: ...

    def face_in_crop(self, image: np.ndarray) -> float:
        """0..1: how sure the detector is that a small image, in which it found no face, is a face crop."""


def clip_box(box: Box, width: int, height: int) -> Box:
    """`box` (x, y, w, h) cut to the image: a face the detector saw running over an edge is reported inside it."""
    x0, y0 = min(max(box[0], 0), width), min(max(box[1], 0), height)
    x1, y1 = min(max(box[0] + box[2], x0), width), min(max(box[1] + box[3], y0), height)
    return x0, y0, x1 - x0, y1 - y0


def downscaled(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """`image` shrunk so that its longer side is at most `max_side`, and the factor applied.

    A box filter (INTER_AREA) by the largest whole factor, then bilinear for the rest (less than 2x):
    antialiased like INTER_AREA alone, and several times faster than it at a fractional factor.
    """
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale == 1.0:
        return image, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    step = min(int(1 / scale), height, width)
    if step >= 2:  # OpenCV's fast box filter needs whole multiples: drop the last step - 1 rows/columns at most
        width, height = width - width % step, height - height % step
        image = cv2.resize(image[:height, :width], (width // step, height // step), interpolation=cv2.INTER_AREA)
    factor = size[0] / width if width >= height else size[1] / height  # along the longer side
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), factor


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of one box `a` (x0, y0, x1, y1) with every row of `b`."""
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Greedy non-maximum suppression of (x, y, w, h) boxes: indices, best score first, of the boxes that
    overlap no better-scoring kept box by more than `threshold` IoU."""
    corners = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1) if len(boxes) else boxes
    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if not kept or iou(corners[i], corners[kept]).max() <= threshold:
            kept.append(int(i))
    return kept


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(x, -88, 88)))


def largest_first(faces: list[Face], min_size: float) -> list[Face]:
    """Faces whose box is at least `min_size` pixels on its shorter side, largest first."""
    kept = [f for f in faces if min(f.box[2], f.box[3]) >= min_size]
    return sorted(kept, key=lambda f: f.box[2] * f.box[3], reverse=True)
