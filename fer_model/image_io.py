"""Turn any user input into an upright RGB PIL image, or raise `InvalidImageError`.

Accepted: a path, bytes, a binary file object, a PIL image or a numpy array (grayscale, RGB,
RGBA; uint8, uint16, bool or float). Every PIL mode is handled (palette with transparency, CMYK,
16-bit, 32-bit float...), EXIF orientation is applied, animated images give their first frame.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .errors import InvalidImageError

MAX_PIXELS = 200_000_000
"""Largest accepted image (width x height), as phones take them; larger ones are refused before decoding
(decompression bombs). Python, the API, the CLI, batch and the page refuse them in the same words."""
FULL_DECODE_PIXELS = 50_000_000
"""A JPEG of more pixels is decoded at a half, a quarter or an eighth of its size, the largest within this (the
JPEG decoder's own reduction: fast, and a 200 MP photo costs a quarter of the memory). Faces in such photos are
hundreds of pixels wide; `decode` says the factor, and `predict` gives boxes in the photo's own pixels."""
if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # PIL refuses at twice its figure; `_check_size` refuses at MAX_PIXELS
MIN_SIDE = 8
"""Smallest accepted width or height, in pixels."""
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
"""File endings read as images in folders (`fer-model predict` and `batch`, training, `fer-model calibrate`); a
file named on its own is read whatever its ending."""


def folder_files(folder: Path) -> list[Path]:
    """Every file under `folder`, recursively and in order, leaving out hidden ones and those in hidden folders."""
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def load_image(source) -> Image.Image:
    """Return `source` as an EXIF-upright RGB PIL image; raise `InvalidImageError` if it is not a usable image.
    A JPEG of over `FULL_DECODE_PIXELS` comes reduced (`decode` says by how much)."""
    return decode(source)[0]


def decode(source) -> tuple[Image.Image, tuple[int, int]]:
    """`load_image`'s image and the photo's own (width, height), upright: larger than the image's where a large
    JPEG was read reduced."""
    if isinstance(source, np.ndarray):
        image = _from_array(source)
    elif isinstance(source, Image.Image):
        image = source
    else:
        image = _open(_read_bytes(source))
    _check_size(image.size)
    size = image.size
    reduced = _reduce(image)
    try:
        rgb = _to_rgb(ImageOps.exif_transpose(image))
        return rgb, (size if rgb.size == reduced else size[::-1]) if reduced != size else rgb.size
    except Exception as err:  # PIL raises many types on corrupt data; all mean the same to a user
        raise InvalidImageError(f"could not decode the image ({type(err).__name__}: {err})") from err


def _reduce(image: Image.Image) -> tuple[int, int]:
    """Have a large JPEG not yet decoded decode at 1/2, 1/4 or 1/8 size (within `FULL_DECODE_PIXELS`); its size then."""
    width, height = image.size
    if image.format == "JPEG" and width * height > FULL_DECODE_PIXELS:
        factor = next((f for f in (2, 4, 8) if width * height <= FULL_DECODE_PIXELS * f * f), 8)
        image.draft("RGB", (-(-width // factor), -(-height // factor)))  # does nothing to a JPEG already decoded
    return image.size


def _read_bytes(source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InvalidImageError(f"no such image file: {path}")
        return path.read_bytes()
    if hasattr(source, "read"):
        return source.read()
    raise InvalidImageError(
        f"unsupported input of type {type(source).__name__}: pass a path, bytes, a PIL image or a numpy array"
    )


def _open(data: bytes) -> Image.Image:
    if not data:
        raise InvalidImageError("the file is empty")
    try:
        with warnings.catch_warnings():  # one too large is refused in one line (`_check_size`), with no warning first
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise InvalidImageError(f"image is larger than the {MAX_PIXELS:,}-pixel limit") from err
    except Exception as err:
        raise InvalidImageError("not an image, or an image format that cannot be read") from err


def _check_size(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise InvalidImageError(f"image is {width}x{height}, larger than the {MAX_PIXELS:,}-pixel limit")
    if min(width, height) < MIN_SIDE:
        raise InvalidImageError(f"image is {width}x{height}; each side must be at least {MIN_SIDE} pixels")


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        image.load()
        return image
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        return Image.fromarray(_to_uint8(np.asarray(image)), "L").convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale integer, boolean or float pixel values into 0..255."""
    if array.dtype == np.uint8:
        return array
    values = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if array.dtype == bool:
        values = values * 255
    elif np.issubdtype(array.dtype, np.floating):
        values = values * 255 if values.max(initial=0) <= 1.0 else values
    elif values.max(initial=0) > 255:
        values = values / 257 if values.max() <= 65535 else values * (255 / values.max())
    return np.clip(values, 0, 255).astype(np.uint8)


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        _check_size((array.shape[1], array.shape[0]))
        return Image.fromarray(_to_uint8(array), "L")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        _check_size((array.shape[1], array.shape[0]))
        return Image.fromarray(np.ascontiguousarray(_to_uint8(array)), "RGB" if array.shape[2] == 3 else "RGBA")
    raise InvalidImageError(f"array of shape {array.shape} is not an image: expected HxW, HxWx3 or HxWx4")
