"""Facial expression recognition: detect faces and classify 7 FER-2013 emotions with a small CNN."""
from . import runtime  # noqa: F401  (first: it sets the process up before torch loads OpenMP)
from .config import EMOTIONS, FERConfig, ModelConfig, PreprocessConfig
from .errors import FERError, InvalidImageError, InvalidVideoError, ModelLoadError
from .image_io import MAX_PIXELS, load_image
from .model import EmotionCNN
from .predictor import EmotionRecognizer, FacePrediction

__all__ = ["EMOTIONS", "EmotionCNN", "EmotionRecognizer", "FERConfig", "FERError", "FacePrediction",
           "InvalidImageError", "InvalidVideoError", "MAX_PIXELS", "ModelConfig", "ModelLoadError", "PreprocessConfig", "load_image"]
__version__ = "0.1.0"
