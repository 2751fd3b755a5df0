"""The one path from pixels to model tensors, shared by training and inference.

image -> grayscale -> face crop with margin -> `image_size` square uint8 -> normalized float tensor.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .config import PreprocessConfig
from .faces import Box


def to_face_array(face, size: int = 48) -> np.ndarray:
    """A face crop (PIL image or array, any mode) as a `size` x `size` uint8 grayscale array."""
    image = face if isinstance(face, Image.Image) else Image.fromarray(np.asarray(face))
    if image.mode != "L":
        image = image.convert("L")
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def crop_face(gray: np.ndarray, box: Box, config: PreprocessConfig) -> np.ndarray:
    """Square crop around `box` widened by the margin FER-2013's framing has, clamped to the image."""
    x, y, w, h = box
    side = max(w, h) * (1 + 2 * config.face_margin)
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = max(0, int(round(cx - side / 2))), max(0, int(round(cy - side / 2)))
    x1, y1 = min(gray.shape[1], int(round(cx + side / 2))), min(gray.shape[0], int(round(cy + side / 2)))
    return to_face_array(gray[y0:y1, x0:x1], config.image_size)


def normalize(faces: torch.Tensor, config: PreprocessConfig) -> torch.Tensor:
    """uint8 faces of shape (N, H, W) -> float model input (N, 1, H, W) on the same device."""
    return ((faces.float() / 255.0 - config.mean) / config.std).unsqueeze(1)


def looks_like_face_crop(size: tuple[int, int], max_side: int = 160, max_aspect: float = 1.3) -> bool:
    """Whether an image with no detected face is small and near-square, like FER-2013's own crops."""
    width, height = size
    return max(width, height) <= max_side and max(width, height) / min(width, height) <= max_aspect
