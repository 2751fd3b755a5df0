"""Shared fixtures: real photos and FER-2013 crops, all offline."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
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
    if not (FER2013 / "data").is_dir():
        pytest.skip(f"FER-2013 copy not found at {FER2013}")
    from datasets import load_dataset

    return load_dataset(str(FER2013))


@pytest.fixture(scope="session")
def fer_crop(fer_dataset) -> Image.Image:
    """A 48x48 grayscale FER-2013 validation face."""
    return fer_dataset["validation"][0]["image"]


@pytest.fixture(scope="session")
def recognizer():
    from fer_model import EmotionRecognizer

    return EmotionRecognizer.from_pretrained()


@pytest.fixture
def blank_photo() -> np.ndarray:
    """A 640x480 smooth gradient: a photo with no face in it."""
    return np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1))
