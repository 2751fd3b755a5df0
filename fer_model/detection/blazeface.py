"""MediaPipe BlazeFace full-range (Apache-2.0) in OpenCV's dnn module: runs wherever OpenCV >= 4.8 does.

The 192x192 model is run on the whole (letterboxed) image and, for small faces, on overlapping
tiles; its 2304 SSD anchors are decoded here and overlapping candidates merged by weighted NMS.
"""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from .base import Face, Framing, iou, largest_first, sigmoid

MODEL_FILE = Path(__file__).parent / "models" / "blazeface_full_range.tflite"
INPUT = 192
GRID = 48  # one anchor per 4x4 cell, fixed size
ANCHORS = np.stack(np.meshgrid((np.arange(GRID) + 0.5) / GRID, (np.arange(GRID) + 0.5) / GRID), -1).reshape(-1, 2)


class BlazeFaceDetector:
    """BlazeFace full-range with six keypoints (eyes, nose, mouth, ears).

    The whole image is searched with a border of `padding` x its longer side (a face that fills the
    frame is otherwise missed); faces under ~1/20 of the image side are missed by that one 192 px pass,
    so images whose longer side exceeds `tile_above` pixels are also searched in 2x2 overlapping tiles.
    """

    name = "blazeface"
    framing = Framing(scale=1.241, shift_y=-0.056)  # benchmarks/fit_framing.py

    def __init__(self, score_threshold: float = 0.65, min_face: float = 16, tile_above: int = 480,
                 padding: float = 0.25, nms_iou: float = 0.3):
        if not hasattr(cv2.dnn, "readNetFromTFLite"):
            raise ImportError(f"OpenCV {cv2.__version__} cannot read TFLite models (OpenCV >= 4.8 can)")
        self.score_threshold = score_threshold
        self.min_face = min_face
        self.tile_above = tile_above
        self.padding = padding
        self.nms_iou = nms_iou
        self._local = threading.local()  # one cv2.dnn.Net per thread: a shared one gives wrong boxes

    @property
    def _net(self) -> cv2.dnn.Net:
        if not hasattr(self._local, "net"):
            self._local.net = cv2.dnn.readNetFromTFLite(str(MODEL_FILE))
        return self._local.net

    def detect(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        windows = [(0, 0, width, height, self.padding)]
        if max(height, width) > self.tile_above:
            tw, th = int(width * 0.6), int(height * 0.6)
            windows += [(x, y, tw, th, 0.0) for y in (0, height - th) for x in (0, width - tw)]
        boxes, scores, points = zip(*(self._detect_window(image, *window) for window in windows))
        faces = weighted_nms(np.concatenate(boxes), np.concatenate(scores), np.concatenate(points), self.nms_iou)
        return largest_first(faces, self.min_face)

    def _detect_window(self, image: np.ndarray, x0: int, y0: int, w: int, h: int, padding: float):
        """Candidates above the threshold in one window (with a black border of `padding` x its longer
        side), as corner boxes and keypoints in image pixels."""
        border = padding * max(w, h)
        side = max(w, h) + 2 * border
        scale = INPUT / side
        patch = cv2.resize(image[y0:y0 + h, x0:x0 + w], (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
        canvas = np.zeros((INPUT, INPUT, 3), np.float32)
        offset = round(border * scale)
        canvas[offset:offset + patch.shape[0], offset:offset + patch.shape[1]] = patch
        x0, y0 = x0 - offset / scale, y0 - offset / scale
        self._net.setInput((canvas.transpose(2, 0, 1)[None] / 127.5 - 1).astype(np.float32))
        logits, regression = self._net.forward(["reshaped_classifier_face_4", "reshaped_regressor_face_4"])
        scores = sigmoid(logits[0, :, 0])
        keep = scores >= self.score_threshold
        reg, anchors = regression[0, keep] / INPUT, ANCHORS[keep]
        centre, size = anchors + reg[:, :2], reg[:, 2:4]
        boxes = np.concatenate([centre - size / 2, centre + size / 2], 1) * side + [x0, y0, x0, y0]
        points = (anchors[:, None] + reg[:, 4:].reshape(-1, 6, 2)) * side + [x0, y0]
        return boxes, scores[keep], points


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, points: np.ndarray, threshold: float) -> list[Face]:
    """MediaPipe's weighted NMS: each cluster of overlapping candidates becomes their score-weighted mean."""
    order, faces = np.argsort(-scores), []
    while len(order):
        cluster = order[iou(boxes[order[0]], boxes[order]) > threshold]
        weights = scores[cluster][:, None]
        x0, y0, x1, y1 = (boxes[cluster] * weights).sum(0) / weights.sum()
        keypoints = (points[cluster] * weights[:, :, None]).sum(0) / weights.sum()
        faces.append(Face((int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0))),
                          float(scores[order[0]]), tuple(map(tuple, keypoints.round(1).tolist()))))
        order = np.setdiff1d(order, cluster, assume_unique=True)
        order = order[np.argsort(-scores[order])]
    return faces
