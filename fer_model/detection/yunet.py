"""YuNet (libfacedetection, BSD-3): accurate down to ~10 px faces, five keypoints; on ONNX Runtime.

The bundled `models/yunet.onnx` is libfacedetection's trained network, exported by `tools/export_yunet.py`
and checked there against the library's own C++ code. Its outputs are decoded here as libfacedetection
does: per stride 8, 16 and 32, one anchor per cell, score sqrt(sigmoid(class) x sigmoid(objectness)).
`web/fer.js` mirrors this file stage by stage.
"""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from ..runtime import session_options
from .base import Face, Framing, downscaled, largest_first, nms, sigmoid

MODEL_FILE = Path(__file__).parent / "models" / "yunet.onnx"
STRIDES = (8, 16, 32)
OUTPUTS = tuple(f"{kind}_{stride}" for stride in STRIDES for kind in ("cls", "obj", "bbox", "kps"))
MULTIPLE = 32  # the network's input sides must be multiples of its largest stride
ENGINES = ("onnxruntime", "opencv")


class YuNetDetector:
    """YuNet run on a copy whose longer side is at most `max_side` pixels.

    `score_threshold` (0..1) keeps the candidates YuNet is sure of; `min_face` drops boxes narrower
    than this many pixels of the original image; overlapping candidates above `nms_iou` are merged by
    keeping the best (libfacedetection's 0.5). Keypoints: right eye, left eye, nose tip, right and left
    mouth corners (the person's right and left). `engine` runs the network on ONNX Runtime (default,
    `threads` threads) or on OpenCV's dnn module (the path the product took before; for comparisons).
    """

    name = "yunet"
    framing = Framing(scale=1.12, shift_y=-0.03)  # benchmarks/fit_framing.py

    def __init__(self, max_side: int = 416, score_threshold: float = 0.7, min_face: float = 16,
                 nms_iou: float = 0.5, model_file: str | Path = MODEL_FILE, engine: str = "onnxruntime",
                 threads: int | None = None):
        if engine not in ENGINES:
            raise ValueError(f"unknown YuNet engine {engine!r}; choose one of {', '.join(ENGINES)}")
        self.max_side = max_side
        self.score_threshold = score_threshold
        self.min_face = min_face
        self.nms_iou = nms_iou
        self.model_file = str(model_file)
        self.engine = engine
        if engine == "onnxruntime":
            import onnxruntime as ort

            self._session = ort.InferenceSession(self.model_file, session_options(threads),
                                                 providers=["CPUExecutionProvider"])
        else:
            self._local = threading.local()  # one cv2.dnn.Net per thread: they are not safe to share
            self._net  # fail here, not on the first photo, where OpenCV cannot run the model

    @property
    def _net(self) -> cv2.dnn.Net:
        if not hasattr(self._local, "net"):
            self._local.net = cv2.dnn.readNetFromONNX(self.model_file)
        return self._local.net

    def detect(self, image: np.ndarray) -> list[Face]:
        small, scale = downscaled(image, self.max_side)
        boxes, scores, points = decode(self._forward(network_input(small)), self.score_threshold)
        faces = [Face(tuple(int(round(v / scale)) for v in boxes[i]), float(scores[i]),
                      tuple(map(tuple, (points[i] / scale).round(1).tolist())))
                 for i in nms(boxes, scores, self.nms_iou)]
        return largest_first(faces, self.min_face)

    def _forward(self, blob: np.ndarray) -> list[np.ndarray]:
        if self.engine == "onnxruntime":
            return self._session.run(list(OUTPUTS), {"input": blob})
        self._net.setInput(blob)
        return self._net.forward(list(OUTPUTS))


def network_input(rgb: np.ndarray) -> np.ndarray:
    """An RGB uint8 image as YuNet's input: BGR, 0..255 float32 (1, 3, H, W), padded with black to
    multiples of 32 on the right and bottom."""
    height, width = rgb.shape[:2]
    padded = cv2.copyMakeBorder(rgb, 0, -height % MULTIPLE, 0, -width % MULTIPLE, cv2.BORDER_CONSTANT, 0)
    return np.ascontiguousarray(padded[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)


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
