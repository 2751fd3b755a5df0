"""Model and preprocessing settings, saved as `config.json` beside the weights."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""The 7 FER-2013 emotions, in the dataset's label-id order."""


@dataclass
class ModelConfig:
    """Architecture of `EmotionCNN`: VGG-style stages of `convs_per_stage` 3x3 convolutions, one width each."""

    widths: tuple[int, ...] = (32, 64, 128, 256)
    convs_per_stage: int = 2
    hidden: int = 256
    dropout: float = 0.4
    in_channels: int = 1


@dataclass
class PreprocessConfig:
    """How a face becomes a model input: crop margin around the detected box, size and normalization."""

    image_size: int = 48
    face_margin: float = 0.1
    mean: float = 0.5
    std: float = 0.25


@dataclass
class FERConfig:
    """Everything `from_pretrained` needs besides the weights."""

    model: ModelConfig = field(default_factory=ModelConfig)
    preprocessing: PreprocessConfig = field(default_factory=PreprocessConfig)
    labels: tuple[str, ...] = EMOTIONS

    def to_dict(self) -> dict:
        return {"architecture": "EmotionCNN", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "FERConfig":
        def build(kind, values):
            known = {f.name for f in fields(kind)}
            unknown = set(values) - known
            if unknown:
                raise ValueError(f"unknown {kind.__name__} keys: {sorted(unknown)}")
            return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

        return cls(
            model=build(ModelConfig, data.get("model", {})),
            preprocessing=build(PreprocessConfig, data.get("preprocessing", {})),
            labels=tuple(data.get("labels", EMOTIONS)),
        )
