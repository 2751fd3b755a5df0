"""`EmotionRecognizer`: any photo in, one prediction per face out."""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from . import hub
from .config import FERConfig
from .detection import Box, FaceDetector, create_detector
from .image_io import load_image
from .model import EmotionCNN
from .preprocess import crop_face, looks_like_face_crop, normalize, to_face_array
from .tta import average_probabilities, tta_logits


@dataclass(frozen=True)
class FacePrediction:
    """One face: its box (x, y, w, h in original pixels), top label, the probability of every label and
    the detector's score (None for an image classified whole)."""

    box: Box
    label: str
    scores: dict[str, float]
    detection_score: float | None = None

    @property
    def confidence(self) -> float:
        return self.scores[self.label]

    def to_dict(self) -> dict:
        return {"box": list(self.box), "label": self.label, "confidence": self.confidence, "scores": self.scores,
                "detection_score": self.detection_score}


class EmotionRecognizer:
    """Face detection + emotion CNN. Load with `from_pretrained()`; call `predict(image)`.

    `detector` is a detector name from `fer_model.detection.DETECTORS` (default: the best installed)
    or any object with the `FaceDetector` interface; `tta` is a mode of `fer_model.tta.TTA_MODES`.
    """

    def __init__(self, model: EmotionCNN, config: FERConfig, device: str | torch.device | None = None,
                 detector: FaceDetector | str | None = None, tta: str = "none"):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.config = config
        self.labels = config.labels
        self.detector = detector if detector is not None and not isinstance(detector, str) else create_detector(detector)
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

    def predict(self, image, tta: str | None = None) -> list[FacePrediction]:
        """Every face in `image` (path, bytes, PIL image or array), largest first; [] when there is none.

        An image with no detected face that is small and near-square (a face crop like FER-2013's)
        is classified whole. Raises `InvalidImageError` for inputs that are not usable images.
        """
        return self.predict_frames([np.asarray(load_image(image))], tta)[0]

    def predict_frames(self, frames: list[np.ndarray], tta: str | None = None) -> list[list[FacePrediction]]:
        """`predict` for RGB uint8 arrays (H, W, 3), e.g. video frames: the faces of all frames in one batch."""
        size = self.config.preprocessing.image_size
        found, crops = [], []
        for frame in frames:
            faces = self.detector.detect(frame)
            gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            if faces:
                crops += [crop_face(gray, face.box, self.detector.framing, size) for face in faces]
                found.append([(face.box, face.score) for face in faces])
            elif looks_like_face_crop((frame.shape[1], frame.shape[0])):
                crops.append(to_face_array(gray, size))
                found.append([((0, 0, frame.shape[1], frame.shape[0]), None)])
            else:
                found.append([])
        scores = iter(self.predict_faces(crops, tta))
        return [[FacePrediction(box, max(s := next(scores), key=s.get), s, score) for box, score in faces]
                for faces in found]

    @torch.inference_mode()
    def predict_faces(self, faces, tta: str | None = None) -> list[dict[str, float]]:
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
    def probabilities(self, inputs: torch.Tensor, tta: str = "none") -> torch.Tensor:
        """Calibrated label probabilities for normalized faces (N, 1, H, W), averaged over the `tta` views."""
        logits = tta_logits(self.model, inputs, tta, self.config.preprocessing.input_size)
        return average_probabilities(logits, self.config.temperature(tta))

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
