"""A person's resting face as the reference their expressions are read against (`EmotionRecognizer.personalize`).

Each face is read as `log p(face) - w * log p(rest)`, renormalised: its calibrated log-probabilities less `w` times
those of the person's resting face (averaged over the baseline photos' faces). A face that looks sad at rest then
reads sad only where it looks sadder than at rest, and a subtle expression on a calm face stands out.

A baseline only applies to photos taken as it was: the same camera, light and pose. `w` is `STRENGTH` times a
gate that opens with how alike the face and the resting face look (the correlation of their normalised crops,
`similarity`): 0 below `GATE[0]`, 1 from `GATE[1]`. A photo of the person taken elsewhere, in other light, reads as
it would plainly. The gate and the strength were set on the training persons only (`benchmarks/personal.py`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import EMOTIONS

STRENGTH = 0.5
"""How much of the resting face's log-probabilities is taken out where the gate is wide open."""
GATE = (0.80, 0.92)
"""Crop correlations at which the gate begins to open and is open."""
REST_NEUTRAL = 0.5
"""In a video, how sure the model must be that a track's calmest frames are neutral for them to be its resting face."""
REST_FRAMES = 3
"""In a video, how many of a track's calmest frames make its resting face."""


def similarity(faces: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """For each of N faces (N, ...), the highest Pearson correlation of its pixels with any of M resting faces
    (M, ...) of the same shape: near 1 for the same face in the same light and pose."""
    a = faces.reshape(len(faces), -1).astype(np.float64)
    b = rest.reshape(len(rest), -1).astype(np.float64)
    a = (a - a.mean(1, keepdims=True)) / np.maximum(a.std(1, keepdims=True), 1e-6)
    b = (b - b.mean(1, keepdims=True)) / np.maximum(b.std(1, keepdims=True), 1e-6)
    return (a @ b.T / a.shape[1]).max(1)


def gate(correlation: np.ndarray, bounds: tuple[float, float] = GATE) -> np.ndarray:
    """0 below `bounds[0]`, 1 from `bounds[1]`, linear between."""
    return np.clip((np.asarray(correlation) - bounds[0]) / (bounds[1] - bounds[0]), 0.0, 1.0)


def relative_to(probabilities: np.ndarray, rest_log_probabilities: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(N, K) probabilities read against the resting face's (K,) log-probabilities, each face by its weight (a
    face of weight 0 keeps its probabilities exactly)."""
    weights = np.asarray(weights)[:, None]
    logits = np.log(np.clip(probabilities, 1e-12, None)) - weights * rest_log_probabilities
    logits -= logits.max(1, keepdims=True)
    exp = np.exp(logits)
    return np.where(weights > 0, exp / exp.sum(1, keepdims=True), probabilities).astype(probabilities.dtype)


@dataclass
class Baseline:
    """A person's resting faces: normalised crops (M, 1, H, W) as the model reads them and their sides in their
    photos (which calibration reads them), with the resting log-probabilities per TTA mode once computed."""

    inputs: np.ndarray
    sides: list
    strength: float = STRENGTH
    bounds: tuple[float, float] = GATE
    _rest: dict = field(default_factory=dict, repr=False)

    def rest(self, plain_probabilities, tta: str) -> np.ndarray:
        """The mean log-probabilities of the resting faces under `tta` (`plain_probabilities(inputs, tta, sides)`
        reads them as any face is read), computed once per mode."""
        if tta not in self._rest:
            p = plain_probabilities(self.inputs, tta, self.sides)
            self._rest[tta] = np.log(np.clip(p, 1e-12, None)).mean(0)
        return self._rest[tta]

    def weights(self, inputs: np.ndarray) -> np.ndarray:
        """Each face's weight of the resting face: `strength` times the gate of its `similarity` to it."""
        return self.strength * gate(similarity(inputs, self.inputs), self.bounds)

    def apply(self, probabilities: np.ndarray, inputs: np.ndarray, plain_probabilities, tta: str) -> np.ndarray:
        """`probabilities` of the normalised faces `inputs` read against the resting face."""
        return relative_to(probabilities, self.rest(plain_probabilities, tta), self.weights(inputs))


class TrackBaselines:
    """Each video track's resting face, found from the track itself as the frames come (`predict_video(...,
    baseline="track")`): its `REST_FRAMES` calmest frames so far, those the model gives the most neutral
    probability, once the calmest of them reads neutral with at least `REST_NEUTRAL`. Until then, and for a
    track that is never calm (an expression held the whole clip), its frames read as they would plainly: a
    lasting expression is never taken for rest."""

    def __init__(self, labels=EMOTIONS, strength: float = STRENGTH, bounds: tuple[float, float] = GATE):
        self.neutral = list(labels).index("neutral")
        self.strength, self.bounds = strength, bounds
        self.calmest: dict[int, list[tuple[float, np.ndarray, np.ndarray]]] = {}

    def apply(self, track: int, probabilities: np.ndarray, face: np.ndarray) -> tuple[np.ndarray, bool]:
        """The (K,) probabilities of one frame's face of `track` (its normalised crop `face`) read against the
        track's resting face, and whether there was one to read it against."""
        calm = self.calmest.setdefault(track, [])
        calm.append((float(probabilities[self.neutral]), np.log(np.clip(probabilities, 1e-12, None)), face))
        calm.sort(key=lambda c: -c[0])
        del calm[REST_FRAMES:]
        rest = [c for c in calm if c[0] >= REST_NEUTRAL]
        if not rest:
            return probabilities, False
        weight = self.strength * gate(similarity(face[None], np.stack([c[2] for c in rest])), self.bounds)
        return relative_to(probabilities[None], np.mean([c[1] for c in rest], axis=0), weight)[0], True
