"""`EmotionRecognizer`: any photo in, one prediction per face out."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from . import hub
from .config import FERConfig
from .faces import Box, FaceDetector
from .image_io import load_image
from .model import EmotionCNN
from .preprocess import crop_face, looks_like_face_crop, normalize, to_face_array


@dataclass(frozen=True)
class FacePrediction:
    """One face: its box (x, y, w, h in original pixels), top label and the probability of every label."""

    box: Box
    label: str
    scores: dict[str, float]

    @property
    def confidence(self) -> float:
        return self.scores[self.label]

    def to_dict(self) -> dict:
        return {"box": list(self.box), "label": self.label, "confidence": self.confidence, "scores": self.scores}


class EmotionRecognizer:
    """Face detection + emotion CNN. Load with `from_pretrained()`; call `predict(image)`."""

    def __init__(self, model: EmotionCNN, config: FERConfig, device: str | torch.device | None = None,
                 detector: FaceDetector | None = None, tta: bool = False):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.config = config
        self.labels = config.labels
        self.detector = detector or FaceDetector()
        self.tta = tta

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike | None = None, revision: str | None = None,
                        **kwargs) -> "EmotionRecognizer":
        """Load from a local folder, a Hub repo id (at `revision`), or the embedded default when `source` is None."""
        model, config = hub.load_pretrained(source, revision)
        return cls(model, config, **kwargs)

    def save_pretrained(self, folder: str | os.PathLike, dtype: torch.dtype | None = None):
        return hub.save_pretrained(self.model, self.config, folder, dtype)

    def push_to_hub(self, repo_id: str, **kwargs) -> str:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder)
            return hub.push_to_hub(folder, repo_id, **kwargs)

    def predict(self, image, tta: bool | None = None) -> list[FacePrediction]:
        """Every face in `image` (path, bytes, PIL image or array), largest first; [] when there is none.

        An image with no detected face that is small and near-square (a face crop like FER-2013's)
        is classified whole. Raises `InvalidImageError` for inputs that are not usable images.
        """
        rgb = load_image(image)
        gray = np.asarray(rgb.convert("L"))
        boxes = self.detector.detect(gray)
        if boxes:
            faces = [crop_face(gray, box, self.config.preprocessing) for box in boxes]
        elif looks_like_face_crop(rgb.size):
            boxes, faces = [(0, 0, rgb.width, rgb.height)], [to_face_array(gray, self.config.preprocessing.image_size)]
        else:
            return []
        return [FacePrediction(box, max(scores, key=scores.get), scores)
                for box, scores in zip(boxes, self.predict_faces(faces, tta))]

    @torch.inference_mode()
    def predict_faces(self, faces, tta: bool | None = None) -> list[dict[str, float]]:
        """Label probabilities for already-cropped faces (arrays or PIL images, or a uint8 (N, H, W) tensor), batched."""
        size = self.config.preprocessing.image_size
        if not isinstance(faces, torch.Tensor):
            arrays = [to_face_array(f, size) for f in faces]
            if not arrays:
                return []
            faces = torch.from_numpy(np.stack(arrays))
        probabilities = self.probabilities(normalize(faces.to(self.device), self.config.preprocessing),
                                           self.tta if tta is None else tta)
        return [dict(zip(self.labels, map(float, row))) for row in probabilities.cpu().numpy()]

    @torch.inference_mode()
    def probabilities(self, inputs: torch.Tensor, tta: bool = False) -> torch.Tensor:
        """Softmax over labels for normalized inputs (N, 1, H, W); with `tta`, averaged with the mirrored faces."""
        probabilities = self.model(inputs).float().softmax(dim=1)
        if tta:
            probabilities = (probabilities + self.model(inputs.flip(-1)).float().softmax(dim=1)) / 2
        return probabilities

    def annotate(self, image, predictions: list[FacePrediction] | None = None) -> Image.Image:
        """A copy of `image` with every face's box and top label drawn on it."""
        rgb = load_image(image).copy()
        predictions = self.predict(rgb) if predictions is None else predictions
        draw = ImageDraw.Draw(rgb)
        line = max(2, round(max(rgb.size) / 300))
        font = ImageFont.load_default(size=max(12, round(max(rgb.size) / 40)))
        for face in predictions:
            x, y, w, h = face.box
            draw.rectangle((x, y, x + w, y + h), outline=(255, 200, 0), width=line)
            text = f"{face.label} {face.confidence:.0%}"
            left, top, right, bottom = draw.textbbox((x, y), text, font=font)
            ty = y - (bottom - top) - 2 * line if y - (bottom - top) - 2 * line >= 0 else y + h
            draw.rectangle((x, ty, x + right - left + 2 * line, ty + bottom - top + 2 * line), fill=(255, 200, 0))
            draw.text((x + line, ty + line - (top - y)), text, fill=(0, 0, 0), font=font)
        return rgb
