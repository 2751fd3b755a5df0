"""Face detectors behind one interface, chosen by name.

    detector = create_detector()              # the best one that runs here: yunet, else blazeface
    detector = create_detector("blazeface", score_threshold=0.7)
    faces = detector.detect(rgb_array)        # [Face(box, score, keypoints)], largest first
"""
from __future__ import annotations

from .base import Box, Face, FaceDetector, Framing
from .blazeface import BlazeFaceDetector
from .yunet import YuNetDetector

DETECTORS = {"yunet": YuNetDetector, "blazeface": BlazeFaceDetector}
"""Every detector by name, best first."""


def create_detector(name: str | None = None, **options) -> FaceDetector:
    """The detector called `name` (default: the first of `DETECTORS` that works here) with `options`."""
    if name is None:
        for kind in DETECTORS.values():
            try:
                return kind(**options)
            except ImportError:
                continue
        raise RuntimeError("no face detector works on this machine: install OpenCV >= 4.8 with its dnn module")
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)}")
    try:
        return DETECTORS[name](**options)
    except ImportError as err:
        raise RuntimeError(f"face detector {name!r} is not available here: {err}") from err


def available_detectors() -> list[str]:
    """Names of the detectors that run on this machine, best first."""
    names = []
    for name, kind in DETECTORS.items():
        try:
            kind()
        except ImportError:
            continue
        names.append(name)
    return names


__all__ = ["BlazeFaceDetector", "Box", "DETECTORS", "Face", "FaceDetector", "Framing", "YuNetDetector",
           "available_detectors", "create_detector"]
