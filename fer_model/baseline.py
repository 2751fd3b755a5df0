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

STRENGTH = 0.5
"""How much of the resting face's log-probabilities is taken out where the gate is wide open."""
GATE = (0.80, 0.92)
"""Crop correlations at which the gate begins to open and is open."""


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
