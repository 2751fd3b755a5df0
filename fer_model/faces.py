"""Face detection with OpenCV's Haar cascades, run on a downscaled copy, boxes mapped back to the original."""
from __future__ import annotations

import threading

import cv2
import numpy as np

Box = tuple[int, int, int, int]
"""x, y, width, height in original-image pixels."""

EYE_CHECK_SIZE = 96


class FaceDetector:
    """Frontal-face detector tuned for few false positives.

    The face cascade runs on a copy whose longer side is at most `max_side`; boxes smaller than
    `min_face_fraction` of the image's shorter side are dropped and overlapping boxes merged. With
    `require_eye`, a box is kept only if an eye cascade finds an eye in its upper part (this removes
    round textures such as coins or the moon that the face cascade alone accepts).
    """

    def __init__(self, max_side: int = 480, scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_face_fraction: float = 0.08, min_face_pixels: int = 24, overlap: float = 0.3,
                 require_eye: bool = True):
        self.max_side = max_side
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face_fraction = min_face_fraction
        self.min_face_pixels = min_face_pixels
        self.overlap = overlap
        self.require_eye = require_eye
        self._local = threading.local()  # a CascadeClassifier must not be shared between threads

    def _cascade(self, name: str) -> cv2.CascadeClassifier:
        cascades = self._local.__dict__.setdefault("cascades", {})
        if name not in cascades:
            cascades[name] = cv2.CascadeClassifier(cv2.data.haarcascades + name)
            if cascades[name].empty():
                raise RuntimeError(f"OpenCV could not load its cascade {cv2.data.haarcascades + name}")
        return cascades[name]

    def detect(self, gray: np.ndarray) -> list[Box]:
        """Faces in a uint8 grayscale image, largest first."""
        height, width = gray.shape
        scale = min(1.0, self.max_side / max(height, width))
        small = cv2.resize(gray, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA) if scale < 1 else gray
        small = cv2.equalizeHist(small)
        min_side = max(self.min_face_pixels * scale, self.min_face_fraction * min(small.shape))
        found = self._cascade("haarcascade_frontalface_default.xml").detectMultiScale(
            small, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(int(min_side), int(min_side)))
        boxes = [tuple(int(round(v / scale)) for v in box) for box in np.asarray(found).reshape(-1, 4)]
        if self.require_eye:
            boxes = [box for box in boxes if self._has_eye(gray, box)]
        return merge_overlapping(boxes, self.overlap)

    def _has_eye(self, gray: np.ndarray, box: Box) -> bool:
        x, y, w, h = box
        face = gray[max(0, y):y + h, max(0, x):x + w]
        if face.size == 0:
            return False
        face = cv2.equalizeHist(cv2.resize(face, (EYE_CHECK_SIZE, EYE_CHECK_SIZE), interpolation=cv2.INTER_AREA))
        eyes = self._cascade("haarcascade_eye.xml").detectMultiScale(
            face[: int(EYE_CHECK_SIZE * 0.6)], scaleFactor=1.1, minNeighbors=3, minSize=(12, 12), maxSize=(48, 48))
        return len(eyes) > 0


def merge_overlapping(boxes: list[Box], overlap: float) -> list[Box]:
    """Keep the largest of boxes that overlap (intersection over the smaller box's area above `overlap`)."""
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda b: b[2] * b[3], reverse=True):
        if all(_overlap_of_smaller(box, k) <= overlap for k in kept):
            kept.append(box)
    return kept


def _overlap_of_smaller(a: Box, b: Box) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / min(a[2] * a[3], b[2] * b[3])
