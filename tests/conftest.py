"""Shared fixtures: real photos and FER-2013 crops, all offline."""
from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]


def subprocess_env(**extra: str) -> dict:
    """This environment for a child Python, with the repository first on its import path."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, **extra, "PYTHONPATH": path}
FER2013 = ROOT.parent / "shared" / "fer2013"


@pytest.fixture(scope="session")
def astronaut() -> Image.Image:
    """scikit-image's public-domain portrait: one frontal face."""
    from skimage import data

    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="session")
def astronaut_jpeg(astronaut) -> bytes:
    buffer = io.BytesIO()
    astronaut.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def fer_dataset():
    """The real FER-2013, for the few tests that measure something on its faces."""
    if not (FER2013 / "data").is_dir():
        pytest.skip(f"needs the real FER-2013 faces, and no copy is at {FER2013}")
    from datasets import load_dataset

    return load_dataset(str(FER2013))


@pytest.fixture(scope="session")
def fer_crop(astronaut) -> Image.Image:
    """A 48x48 grayscale face framed like FER-2013's: the astronaut's, cropped as the predictor crops."""
    from fer_model.detection import create_detector
    from fer_model.preprocess import crop_face

    detector = create_detector()
    rgb = np.asarray(astronaut)
    face = detector.detect(rgb)[0]
    return Image.fromarray(crop_face(np.asarray(astronaut.convert("L")), face.box, detector.framing, 48))


def synthetic_faces(count: int, seed: int = 0) -> np.ndarray:
    """`count` different 48x48 uint8 faces: the astronaut's crop shifted, scaled, mirrored and re-lit."""
    from skimage import data

    rng = np.random.default_rng(seed)
    gray = np.asarray(Image.fromarray(data.astronaut()).convert("L"))
    faces = []
    for _ in range(count):
        side = int(rng.integers(110, 150))
        x, y = int(rng.integers(155, 185)), int(rng.integers(45, 75))
        face = np.asarray(Image.fromarray(gray[y:y + side, x:x + side]).resize((48, 48)), dtype=float)
        face = face[:, ::-1] if rng.random() < 0.5 else face
        faces.append(np.clip(face * rng.uniform(0.6, 1.2) + rng.normal(0, 8, face.shape), 0, 255).astype(np.uint8))
    return np.stack(faces)


@pytest.fixture(scope="session")
def tiny_fer(tmp_path_factory) -> Path:
    """A FER-2013-shaped dataset folder (parquet, `train` 1,024 and `validation` 140 faces, 7 labels) made here."""
    from datasets import ClassLabel, Dataset, Features, Image as ImageFeature

    from fer_model import EMOTIONS

    folder = tmp_path_factory.mktemp("tiny_fer")
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=list(EMOTIONS))})
    for split, count, seed in (("train", 1024, 1), ("validation", 140, 2)):
        faces = [Image.fromarray(f) for f in synthetic_faces(count, seed)]
        Dataset.from_dict({"image": faces, "label": [i % 7 for i in range(count)]}, features=features).to_parquet(
            folder / "data" / f"{split}-00000-of-00001.parquet")
    return folder


@pytest.fixture(scope="session")
def recognizer():
    from fer_model import EmotionRecognizer

    return EmotionRecognizer.from_pretrained()


@pytest.fixture
def blank_photo() -> np.ndarray:
    """A 640x480 smooth gradient: a photo with no face in it."""
    return np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1))


def encoded(fmt: str, seed: int = 0, size=(64, 48), **save) -> bytes:
    """Random pixels encoded in `fmt`."""
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **save)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height: a decompression bomb as far as a decoder can tell."""
    data = bytearray(encoded("PNG", 0, (8, 8)))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (64, 64), (v, v, v)) for v in (20, 200, 90)]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=50)
    return buffer.getvalue()


def hostile_corpus() -> dict[str, bytes]:
    """Files a public endpoint gets fed: garbage, truncated and corrupted encodings, extreme sizes, odd modes."""
    rng = np.random.default_rng(7)
    corpus = {"random.bin": rng.integers(0, 256, 2048, dtype=np.uint8).tobytes(), "empty.jpg": b"",
              "text.png": b"definitely not a PNG", "1x1.png": encoded("PNG", size=(1, 1)),
              "1x20000.png": encoded("PNG", size=(1, 20000)), "bomb.png": png_claiming(100_000, 100_000),
              "49mp.png": png_claiming(7000, 7000), "animated.gif": animated("GIF"), "animated.webp": animated("WEBP"),
              "cmyk.jpg": _cmyk_jpeg(), "16bit.png": _sixteen_bit_png()}
    for fmt, suffix in (("JPEG", "jpg"), ("PNG", "png"), ("GIF", "gif"), ("WEBP", "webp"), ("BMP", "bmp"), ("TIFF", "tiff")):
        data = encoded(fmt, 1, (96, 96))
        corpus[f"truncated.{suffix}"] = data[: len(data) // 2]
        flipped = bytearray(data)
        for i in rng.integers(0, len(data), 16):
            flipped[i] ^= 0xFF
        corpus[f"corrupted.{suffix}"] = bytes(flipped)
    return corpus


def _cmyk_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("CMYK", (64, 64), (10, 200, 30, 0)).save(buffer, "JPEG")
    return buffer.getvalue()


def _sixteen_bit_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 65535, (64, 64), dtype=np.uint16)).save(buffer, "PNG")
    return buffer.getvalue()
