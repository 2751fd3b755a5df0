"""YuNet (libfacedetection, BSD-3) in OpenCV's dnn module: accurate down to ~10 px faces, five keypoints.

The bundled `models/yunet.onnx` is libfacedetection's trained network, exported by `tools/export_yunet.py`
and checked there against the library's own C++ code. Its outputs are decoded here as libfacedetection
does: per stride 8, 16 and 32, one anchor per cell, score sqrt(sigmoid(class) x sigmoid(objectness)).
"""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from .base import Face, Framing, downscaled, largest_first, sigmoid

MODEL_FILE = Path(__file__).parent / "models" / "yunet.onnx"
STRIDES = (8, 16, 32)
OUTPUTS = tuple(f"{kind}_{stride}" for stride in STRIDES for kind in ("cls", "obj", "bbox", "kps"))
MULTIPLE = 32  # the network's input sides must be multiples of its largest stride


class YuNetDetector:
    """YuNet run on a copy whose longer side is at most `max_side` pixels.

    `score_threshold` (0..1) keeps the candidates YuNet is sure of; `min_face` drops boxes narrower
    than this many pixels of the original image; overlapping candidates above `nms_iou` are merged by
    keeping the best (libfacedetection's 0.5). Keypoints: right eye, left eye, nose tip, right and left
    mouth corners (the person's right and left).
    """

    name = "yunet"
    framing = Framing(scale=1.12, shift_y=-0.03)  # benchmarks/fit_framing.py

    def __init__(self, max_side: int = 416, score_threshold: float = 0.7, min_face: float = 16,
                 nms_iou: float = 0.5, model_file: str | Path = MODEL_FILE):
        self.max_side = max_side
        self.score_threshold = score_threshold
        self.min_face = min_face
        self.nms_iou = nms_iou
        self.model_file = str(model_file)
        self._local = threading.local()  # one cv2.dnn.Net per thread: they are not safe to share
        self._net  # fail here, not on the first photo, where OpenCV cannot run the model

    @property
    def _net(self) -> cv2.dnn.Net:
        if not hasattr(self._local, "net"):
            try:
                self._local.net = cv2.dnn.readNetFromONNX(self.model_file)
            except cv2.error as err:
                raise ImportError(f"OpenCV {cv2.__version__} cannot run {self.model_file}: {err}") from err
        return self._local.net

    def detect(self, image: np.ndarray) -> list[Face]:
        small, scale = downscaled(image, self.max_side)
        height, width = small.shape[:2]
        padded = cv2.copyMakeBorder(small, 0, -height % MULTIPLE, 0, -width % MULTIPLE, cv2.BORDER_CONSTANT, 0)
        self._net.setInput(cv2.dnn.blobFromImage(padded, swapRB=True))  # BGR, 0..255
        boxes, scores, points = decode(self._net.forward(list(OUTPUTS)), self.score_threshold)
        keep = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self.score_threshold, self.nms_iou)
        faces = [Face(tuple(int(round(v / scale)) for v in boxes[i]), float(scores[i]),
                      tuple(map(tuple, (points[i] / scale).round(1).tolist()))) for i in np.ravel(keep)]
        return largest_first(faces, self.min_face)


def decode(outputs: list[np.ndarray], threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates scoring at least `threshold`: boxes (x, y, w, h), scores and five (x, y) keypoints each,
    in the network's input pixels."""
    boxes, scores, points = [], [], []
    for stride, (cls, obj, bbox, kps) in zip(STRIDES, zip(*[iter(outputs)] * 4)):
        columns = cls.shape[3]
        score = np.sqrt(sigmoid(cls.ravel()) * sigmoid(obj.ravel()))
        cells = np.flatnonzero(score >= threshold)
        anchors = np.stack([cells % columns, cells // columns], 1).astype(np.float32) * stride
        offsets = bbox.reshape(4, -1)[:, cells].T
        size = np.exp(offsets[:, 2:]) * stride
        boxes.append(np.concatenate([offsets[:, :2] * stride + anchors - size / 2, size], 1))
        scores.append(score[cells])
        points.append(kps.reshape(5, 2, -1)[:, :, cells].transpose(2, 0, 1) * stride + anchors[:, None])
    return np.concatenate(boxes), np.concatenate(scores), np.concatenate(points)
