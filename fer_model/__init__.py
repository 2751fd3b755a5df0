"""Facial expression recognition: detect faces and classify 7 FER-2013 emotions with a small CNN.

Inference runs on ONNX Runtime and needs no torch; `EmotionCNN` (training, the torch backend) does.
"""
from . import runtime  # noqa: F401  (first: it sets the process up before torch loads OpenMP)
from .config import EMOTIONS, FERConfig, ModelConfig, PreprocessConfig
from .errors import FERError, InvalidImageError, InvalidVideoError, MissingExtraError, ModelLoadError
from .image_io import MAX_PIXELS, load_image
from .predictor import EmotionRecognizer, FacePrediction

__all__ = ["EMOTIONS", "EmotionCNN", "EmotionRecognizer", "FERConfig", "FERError", "FacePrediction",
           "InvalidImageError", "InvalidVideoError", "MAX_PIXELS", "MissingExtraError", "ModelConfig",
           "ModelLoadError", "PreprocessConfig", "load_image"]
__version__ = "0.2.0"


def __getattr__(name: str):
    if name == "EmotionCNN":  # imported on first use: it needs torch
        from .errors import require

        require("torch", "EmotionCNN")
        from .model import EmotionCNN

        return EmotionCNN
    raise AttributeError(f"module 'fer_model' has no attribute {name!r}")
