"""Model and preprocessing settings, saved as `config.json` beside the weights."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""The 7 FER-2013 emotions, in the dataset's label-id order."""

RETIRED_KEYS = {"face_margin"}
"""Keys older configs carry that no longer mean anything (the crop now belongs to the face detector)."""


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
    """How a face crop becomes a model input: size and normalization.

    Faces are resized to `image_size`; the model sees `crop_size` crops of them (random while training,
    the centre or ten crops at inference). `crop_size` None means the whole face.
    """

    image_size: int = 48
    mean: float = 0.5
    std: float = 0.25
    crop_size: int | None = None

    @property
    def input_size(self) -> int:
        """Side of the square the model takes."""
        return self.crop_size or self.image_size


PRECISIONS = ("fp32", "int8")


LARGE_FACES_MIN_SIDE = 96
"""The side (pixels of the photo) from which a face is read with the large-face calibration: twice FER-2013's 48."""


@dataclass(frozen=True)
class Calibration:
    """How one model file's logits become calibrated probabilities, per TTA mode, and when a reading is unsure;
    with `large_faces`, faces of at least `min_side` pixels in the photo use that calibration instead (fitted on
    real photos' faces, while this one is fitted on FER-2013's 48-pixel crops)."""

    temperatures: dict[str, float]
    class_biases: dict[str, tuple[float, ...]]
    uncertainty: dict[str, float]
    large_faces: "Calibration | None" = None
    min_side: float = LARGE_FACES_MIN_SIDE

    def temperature(self, tta: str) -> float:
        return float(self.temperatures.get(tta, 1.0))

    def class_bias(self, tta: str) -> tuple[float, ...] | None:
        return self.class_biases.get(tta)

    def is_large(self, side: float | None) -> bool:
        """Whether a face `side` pixels wide in its photo is read with `large_faces` (None: never)."""
        return self.large_faces is not None and side is not None and side >= self.min_side

    def for_side(self, side: float | None) -> "Calibration":
        """The calibration of a face `side` pixels wide in its photo (None: this one)."""
        return self.large_faces if self.is_large(side) else self


@dataclass
class FERConfig:
    """Everything `from_pretrained` needs besides the weights."""

    model: ModelConfig = field(default_factory=ModelConfig)
    preprocessing: PreprocessConfig = field(default_factory=PreprocessConfig)
    labels: tuple[str, ...] = EMOTIONS
    temperatures: dict[str, float] = field(default_factory=dict)
    """Calibration: the softmax temperature fitted for each TTA mode (a missing mode uses 1)."""
    class_biases: dict[str, tuple[float, ...]] = field(default_factory=dict)
    """Calibration: per TTA mode, one offset per label added to the logits after the temperature, fitted
    with it (a missing mode adds none)."""
    uncertainty: dict[str, float] = field(default_factory=dict)
    """When a prediction is flagged uncertain: `min_confidence` (top probability below it) or `min_margin`
    (top two closer than it), measured on validation; absent keys never flag."""
    large_faces: dict = field(default_factory=dict)
    """Calibration of faces of at least `min_side` pixels in their photo, when fitted (`train.calibration`): that
    side and its own `temperatures`, `class_biases` and `uncertainty`; the fields above then calibrate smaller
    faces."""
    int8: dict = field(default_factory=dict)
    """The int8 model of the folder, when it has one: `file`, and its own `temperatures`, `class_biases`,
    `uncertainty` and `large_faces`, fitted for it as the fields above are for the float model (`train.quantize`)."""

    def temperature(self, tta: str) -> float:
        return self.calibration().temperature(tta)

    def class_bias(self, tta: str) -> tuple[float, ...] | None:
        return self.calibration().class_bias(tta)

    def calibration(self, precision: str = "fp32") -> Calibration:
        """The calibration of the float model, or of the int8 one."""
        if precision == "int8" and not self.int8:
            raise ValueError("this model has no int8 version")
        section = self.int8 if precision == "int8" else {
            "temperatures": self.temperatures, "class_biases": self.class_biases, "uncertainty": self.uncertainty,
            "large_faces": self.large_faces}
        large = section.get("large_faces") or {}
        return Calibration(section["temperatures"], section["class_biases"], section["uncertainty"],
                           Calibration(large["temperatures"], large["class_biases"], large["uncertainty"]) if large else None,
                           large.get("min_side", LARGE_FACES_MIN_SIDE))

    def to_dict(self) -> dict:
        return {"architecture": "EmotionCNN", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "FERConfig":
        def build(kind, values):
            values = {k: v for k, v in values.items() if k not in RETIRED_KEYS}
            known = {f.name for f in fields(kind)}
            unknown = set(values) - known
            if unknown:
                raise ValueError(f"unknown {kind.__name__} keys: {sorted(unknown)}")
            return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

        labels = tuple(data.get("labels", EMOTIONS))

        def calibration(section: dict, name: str) -> dict:
            biases = {str(k): tuple(map(float, v)) for k, v in section.get("class_biases", {}).items()}
            for mode, bias in biases.items():
                if len(bias) != len(labels):
                    raise ValueError(f"{name}[{mode!r}] has {len(bias)} values for {len(labels)} labels")
            large = section.get("large_faces") or {}
            return {"temperatures": {str(k): float(v) for k, v in section.get("temperatures", {}).items()},
                    "class_biases": biases,
                    "uncertainty": {str(k): float(v) for k, v in section.get("uncertainty", {}).items()},
                    **({"large_faces": {**({"min_side": float(large["min_side"])} if "min_side" in large else {}),
                                        **calibration(large, f"{name} of large_faces")}} if large else {})}

        int8 = data.get("int8") or {}
        return cls(
            model=build(ModelConfig, data.get("model", {})),
            preprocessing=build(PreprocessConfig, data.get("preprocessing", {})),
            labels=labels,
            **calibration(data, "class_biases"),
            int8={**{k: v for k, v in int8.items() if k == "file"}, **calibration(int8, "int8 class_biases")} if int8 else {},
        )
