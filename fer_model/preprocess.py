"""The one path from pixels to model tensors, shared by training and inference.

image -> grayscale -> FER-style square crop around the detected face -> `image_size` uint8 -> normalized float32.
`web/fer.js` mirrors it in the browser.
"""
from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from .config import PreprocessConfig
from .detection import Box, Framing


def to_face_array(face, size: int = 48) -> np.ndarray:
    """A face crop (PIL image or array, any mode) as a `size` x `size` uint8 grayscale array."""
    image = face if isinstance(face, Image.Image) else Image.fromarray(np.asarray(face))
    if image.mode != "L":
        image = image.convert("L")
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def crop_face(gray: np.ndarray, box: Box, framing: Framing, size: int = 48) -> np.ndarray:
    """The `size` x `size` crop that frames the face in `box` as FER-2013 does; parts outside the image are
    filled by repeating the border, so a face cut by the edge stays where it is in the crop."""
    height, width = gray.shape
    cx, cy, side = framing.square(box)
    side = max(1, int(round(side)))
    x0 = min(max(int(round(cx - side / 2)), 1 - side), width - 1)  # keep at least one pixel inside
    y0 = min(max(int(round(cy - side / 2)), 1 - side), height - 1)
    inside = gray[max(0, y0):min(height, y0 + side), max(0, x0):min(width, x0 + side)]
    square = cv2.copyMakeBorder(inside, max(0, -y0), max(0, y0 + side - height), max(0, -x0),
                                max(0, x0 + side - width), cv2.BORDER_REPLICATE)
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)


def face_batch(faces, size: int = 48) -> np.ndarray:
    """Face crops (arrays or PIL images, any size and mode, or a uint8 (N, size, size) array) as uint8 (N, size, size)."""
    if isinstance(faces, np.ndarray) and faces.dtype == np.uint8 and faces.shape[1:] == (size, size):
        return faces
    return np.stack([to_face_array(face, size) for face in faces])


def normalize(faces, config: PreprocessConfig):
    """uint8 (or 0..255 float) faces (N, H, W) -> float32 model input (N, 1, H, W); numpy arrays, or torch
    tensors on any device (training)."""
    scaled = faces.astype(np.float32) if isinstance(faces, np.ndarray) else faces.float()
    return ((scaled / 255.0 - config.mean) / config.std)[:, None]


def looks_like_face_crop(size: tuple[int, int], max_side: int = 160, max_aspect: float = 1.3) -> bool:
    """Whether an image with no detected face is small and near-square, like FER-2013's own crops."""
    width, height = size
    return max(width, height) <= max_side and max(width, height) / min(width, height) <= max_aspect
