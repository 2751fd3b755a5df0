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
SMALLEST_FACE = 24
"""Faces this many pixels wide are found in a photo of any size: levels finer than the whole photo at `max_side`
are added until such a face is `SMALLEST_SEEN` pixels there."""
SMALLEST_SEEN = 12
"""The narrowest face, in the network's pixels, that YuNet finds reliably (at 10-11 px it misses some)."""
LEVEL_STEP = 3.0
"""Scale between pyramid levels: a level finds faces from `SMALLEST_SEEN` to `TILE_OVERLAP` of its pixels wide."""
CROP_PADS, CROP_SIDE = (0.0, 0.25, 0.5), 192
"""`face_in_crop` pads an image by these shares of its side (its border repeated) and reads it at this size."""
TILE, TILE_OVERLAP = 640, 160
"""A level larger than `TILE` pixels is read in tiles that overlap by `TILE_OVERLAP`, so that a face of up to that
width is whole in one of them; the cost grows with the photo's pixels, not faster."""


class YuNetDetector:
    """YuNet run on a copy whose longer side is at most `max_side` pixels, and, in a large photo, on finer
    levels read in tiles (`pyramid_sides`, `tiles`), so that faces of `SMALLEST_FACE` pixels are found at any size.

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
        """Every face of `image`, read at each level of `pyramid_sides` (in tiles where a level is large)."""
        height, width = image.shape[:2]
        found, sides = [], pyramid_sides(width, height, self.max_side)
        for side in sides:
            level, scale = downscaled(image, side)
            smallest = 0 if side == sides[-1] else 2 * SMALLEST_SEEN  # a finer level sees those LEVEL_STEP x larger
            views = tiles(level)
            largest = TILE_OVERLAP if len(views) > 1 and side != sides[0] else np.inf  # a coarser level sees those whole
            for left, top, tile, (x0, y0, x1, y1) in views:
                boxes, scores, points = decode(self._forward(network_input(tile)), self.score_threshold)
                boxes[:, :2] += (left, top)
                points += (left, top)
                cx, cy = boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2
                owned = ((cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1) & (boxes[:, 2:].min(1) >= smallest)
                         & (boxes[:, 2:].max(1) <= largest))
                found.append((boxes[owned] / scale, scores[owned], points[owned] / scale))
        boxes, scores, points = (np.concatenate(parts) for parts in zip(*found))
        faces = [Face(tuple(int(round(v)) for v in boxes[i]), float(scores[i]), tuple(map(tuple, points[i].round(1).tolist())))
                 for i in nms(boxes, scores, self.nms_iou)]
        return largest_first(faces, self.min_face)

    def face_in_crop(self, image: np.ndarray) -> float:
        """How sure YuNet is that a small image is a face crop (one it finds no face in, as it fills the frame):
        its best score over the image padded by each of `CROP_PADS` and read at `CROP_SIDE` pixels."""
        best = 0.0
        for pad in CROP_PADS:
            border = int(round(max(image.shape[:2]) * pad / 2))
            padded = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_REPLICATE)
            framed = cv2.resize(padded, (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_LINEAR)
            scores = decode(self._forward(network_input(framed)), 0.0)[1]
            best = max(best, float(scores.max()) if len(scores) else 0.0)
        return best

    def _forward(self, blob: np.ndarray) -> list[np.ndarray]:
        if self.engine == "onnxruntime":
            return self._session.run(list(OUTPUTS), {"input": blob})
        self._net.setInput(blob)
        return self._net.forward(list(OUTPUTS))


def pyramid_sides(width: int, height: int, max_side: int) -> list[int]:
    """The longer side of each level YuNet reads: the whole photo at `max_side`, then `LEVEL_STEP` times finer
    until a `SMALLEST_FACE` face is `SMALLEST_SEEN` pixels (a photo of up to about 1,000 px: one level)."""
    longest = max(width, height)
    finest = min(longest, round(longest * SMALLEST_SEEN / SMALLEST_FACE))
    sides = [min(longest, max_side)]
    while finest > sides[-1] * 1.25:
        sides.append(min(finest, round(sides[-1] * LEVEL_STEP)))
    return sides


def tiles(level: np.ndarray) -> list[tuple[int, int, np.ndarray, tuple[float, float, float, float]]]:
    """(left, top, view, owned) of the `TILE`-sized views that cover `level`, overlapping by `TILE_OVERLAP` at
    least (one view where it fits); `owned` (x0, y0, x1, y1, in the level) is the part whose faces the view
    reports, split midway through each overlap, so that every face is reported once, by a view it is whole in."""
    def spans(size: int) -> list[tuple[int, float, float]]:
        starts = [0] if size <= TILE else list(range(0, size - TILE, TILE - TILE_OVERLAP)) + [size - TILE]
        cuts = [0.0] + [(start + before + TILE) / 2 for before, start in zip(starts, starts[1:])] + [float(size)]
        return [(start, cuts[i], cuts[i + 1]) for i, start in enumerate(starts)]

    height, width = level.shape[:2]
    return [(left, top, level[top:top + TILE, left:left + TILE], (x0, y0, x1, y1))
            for top, y0, y1 in spans(height) for left, x0, x1 in spans(width)]


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
