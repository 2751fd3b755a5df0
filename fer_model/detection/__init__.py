"""Face detectors behind one interface, chosen by name.

    detector = create_detector()                          # YuNet on ONNX Runtime
    detector = create_detector("yunet", score_threshold=0.8, engine="opencv")
    faces = detector.detect(rgb_array)                    # [Face(box, score, keypoints)], largest first

Any object with the `FaceDetector` interface can stand in for one (`EmotionRecognizer(detector=...)`).
"""
from __future__ import annotations

from .base import Box, Face, FaceDetector, Framing
from .yunet import YuNetDetector

DETECTORS = {"yunet": YuNetDetector}
"""Every detector by name, the default first."""


def create_detector(name: str | None = None, **options) -> FaceDetector:
    """The detector called `name` (default: the first of `DETECTORS`) with `options`."""
    name = name or next(iter(DETECTORS))
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)}")
    return DETECTORS[name](**options)


__all__ = ["Box", "DETECTORS", "Face", "FaceDetector", "Framing", "YuNetDetector", "create_detector"]
