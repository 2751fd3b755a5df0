"""Facial expression recognition: detect faces and classify 7 FER-2013 emotions with a small CNN."""
import os

# torch's GNU OpenMP workers spin for ~300,000 rounds after each parallel region, holding the core that
# OpenCV's threads then detect faces on; 10,000 brings a 640x480 photo from 12.5 to 10.4 ms on 2 cores
# (README, "Speed"). Read once, when torch loads OpenMP: import fer_model before torch, or set it yourself.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from .config import EMOTIONS, FERConfig, ModelConfig, PreprocessConfig  # noqa: E402
from .errors import FERError, InvalidImageError, InvalidVideoError, ModelLoadError  # noqa: E402
from .image_io import MAX_PIXELS, load_image  # noqa: E402
from .model import EmotionCNN  # noqa: E402
from .predictor import EmotionRecognizer, FacePrediction  # noqa: E402

__all__ = ["EMOTIONS", "EmotionCNN", "EmotionRecognizer", "FERConfig", "FERError", "FacePrediction",
           "InvalidImageError", "InvalidVideoError", "MAX_PIXELS", "ModelConfig", "ModelLoadError", "PreprocessConfig", "load_image"]
__version__ = "0.1.0"
