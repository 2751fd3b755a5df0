"""`EmotionRecognizer`: any photo in, one prediction per face out.

image -> faces (detector) -> crops (`preprocess`) -> inputs -> classifier (ONNX Runtime or torch)
-> calibrated probabilities (`tta`) -> `FacePrediction`s.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import hub
from .baseline import STRENGTH, Baseline
from .classifier import BACKENDS, INT8_NAME, ONNX_NAME, Classifier, OnnxClassifier
from .config import PRECISIONS, Calibration, FERConfig
from .detection import Box, FaceDetector, create_detector
from .detection.base import clip_box
from .errors import FERError, InvalidImageError, require
from .explain import class_activation_map, overlay
from .image_io import decode, load_image
from .preprocess import crop_face, face_batch, looks_like_face_crop, normalize, to_face_array
from .calibration.tta import calibrated_probabilities, center_crop, views

DEFAULT_TTA = "flip"
"""`predict`'s and the app's test-time augmentation: the int8 default agrees with FER+'s raters on FER-2013
validation at 77.1% with flip against 76.0% without and 77.6% with ten-crop, and reads real faces of other sources
at 89.1% against 88.1% and 89.6%, at 2 views a face instead of 10 (README, "Results")."""


def create_classifier(backend: str, folder: str | Path, threads: int | None = None, device=None,
                      onnx_file: str = ONNX_NAME) -> Classifier:
    """The classifier of the model in `folder` on `backend` ("onnx": its `onnx_file`, or "torch")."""
    if backend == "onnx":
        return OnnxClassifier(Path(folder) / onnx_file, threads)
    if backend == "torch":
        require("torch", "the torch backend")
        from .model import TorchClassifier

        return TorchClassifier(hub.load_pretrained(folder)[0], device, threads)
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def onnx_file(config: FERConfig, precision: str | None = None) -> str:
    """The ONNX file of a model folder that runs at `precision` (None: the int8 one where the folder has it)."""
    precision = precision or ("int8" if config.int8 else "fp32")
    return config.int8.get("file", INT8_NAME) if precision == "int8" else ONNX_NAME


WHOLE_FACE_SCORE = 0.2
"""How sure the detector must be (`face_in_crop`) that a small, near-square image with no face found is a face
crop, for it to be read whole: 99.2% of FER-2013's validation crops pass, while noise, a cup, a rocket and
scikit-image's textures score under it; its cat scores about at it (benchmarks/detection.py, "thumbnails")."""
TINY_CROP = {"side": 48, "score": 0.5, "min_side": 24}
"""Images under FER-2013's 48 pixels need stronger evidence: a score of 0.5 (94-97% of FER-2013's validation crops
shrunk to 24-40 pixels pass, while 16-32 pixel thumbnails of whole scenes, a cat, a cup, a camera, reach 0.46), and
under 24 pixels (where such thumbnails score as high as shrunk faces) none is read whole."""


def whole_face_score(side: int) -> float:
    """The `face_in_crop` score an image of longer side `side` with no face found needs to be read whole as one
    (infinite: never)."""
    if side < TINY_CROP["min_side"]:
        return float("inf")
    return TINY_CROP["score"] if side < TINY_CROP["side"] else WHOLE_FACE_SCORE


class FoundFaces(list):
    """`find_faces`' faces of one image: (box, detection score, crop) each, and `turned`, the degrees (0, 90, 180 or
    270, counterclockwise) the image was turned for them to stand upright."""

    def __init__(self, faces=(), turned: int = 0):
        super().__init__(faces)
        self.turned = turned


QUARTER_TURNS = (1, 3, 2)
"""The turns tried, in quarter turns counterclockwise, when no upright face is found: a photo on its side either
way first, then upside down."""
UPRIGHT_SCORE = 0.88
"""A detection score that only an upright face reaches: frontal faces in the group photos score 0.88-0.93 upright,
while YuNet, finding a few faces of a photo on its side or upside down, gives them 0.76-0.87. Below it, the turns
are tried (a photo with such a face costs one detection; one without, four)."""


def find_faces(detector: FaceDetector, frame: np.ndarray, size: int) -> FoundFaces:
    """(box, detection score, `size` x `size` grayscale crop) for each face `detector` finds in an RGB array,
    largest first, the box cut to the image (the crop is framed on the detector's own); an image with none that is
    small and near-square and that the detector takes for a face crop (`whole_face_score`) is one face, whole. A
    photo with no face of `UPRIGHT_SCORE` is read turned a quarter either way, then upside down (`QUARTER_TURNS`):
    the first turn with such a face, if any, gives the faces, boxes in the photo as it is, crops upright, and
    `turned` says which turn it was."""
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    faces = detector.detect(frame)
    if not faces and looks_like_face_crop((width, height)):
        if detector.face_in_crop(frame) >= whole_face_score(max(width, height)):
            return FoundFaces([((0, 0, width, height), None, to_face_array(gray, size))])
        return FoundFaces()
    if not faces or max(f.score for f in faces) < UPRIGHT_SCORE:
        for turns in QUARTER_TURNS:
            turned = detector.detect(np.ascontiguousarray(np.rot90(frame, turns)))
            if turned and max(f.score for f in turned) >= UPRIGHT_SCORE:
                upright = np.ascontiguousarray(np.rot90(gray, turns))
                return FoundFaces(((clip_box(turned_back(f.box, turns, width, height), width, height), f.score,
                                    crop_face(upright, f.box, detector.framing, size)) for f in turned), 90 * turns)
    return FoundFaces((clip_box(f.box, width, height), f.score, crop_face(gray, f.box, detector.framing, size))
                      for f in faces)


def turned_back(box: Box, turns: int, width: int, height: int) -> Box:
    """A box found in the photo turned `turns` quarter turns counterclockwise (`np.rot90`), in the photo of `width`
    x `height` as it is."""
    x, y, w, h = box
    if turns % 4 == 1:
        return width - (y + h), x, h, w
    if turns % 4 == 2:
        return width - (x + w), height - (y + h), w, h
    if turns % 4 == 3:
        return y, height - (x + w), h, w
    return box


def rescaled(faces: list[FacePrediction], size: tuple[int, int], new_size: tuple[int, int]) -> list[FacePrediction]:
    """`faces` of an image of `size` (width, height) with their boxes in the pixels of the same image at `new_size`."""
    if size == new_size:
        return faces
    sx, sy = new_size[0] / size[0], new_size[1] / size[1]
    return [replace(face, box=clip_box((round(face.box[0] * sx), round(face.box[1] * sy), round(face.box[2] * sx),
                                        round(face.box[3] * sy)), *new_size)) for face in faces]


def box_side(box: Box) -> int:
    """The larger side of a face's box: which calibration reads it (`config.Calibration.for_side`)."""
    return max(box[2], box[3])


def crop_side(face) -> int:
    """The larger side of a face crop given as an array or a PIL image."""
    return max(face.size) if isinstance(face, Image.Image) else max(np.asarray(face).shape[:2])


def single_faces(find, images, progress=None) -> tuple[list[np.ndarray], list[int], dict, list[int]]:
    """For labelled images (anything `load_image` reads): the crop of each one with exactly one face, as
    `find(rgb_array)` (`find_faces`) gives it, the indices of those images, how many were used and skipped
    (no face, several faces, unreadable), and each crop's side in its photo (`box_side`)."""
    crops, kept, counts, sides = [], [], {"used": 0, "no face": 0, "several faces": 0, "unreadable": 0}, []
    for index, image in enumerate(progress(images) if progress else images):
        try:
            found = find(np.asarray(load_image(image)))
        except FERError:
            counts["unreadable"] += 1
            continue
        kind = "used" if len(found) == 1 else "no face" if not found else "several faces"
        counts[kind] += 1
        if kind == "used":
            crops.append(found[0][2])
            kept.append(index)
            sides.append(box_side(found[0][0]))
    return crops, kept, counts, sides


def label_positions(boxes: list[Box], label_sizes: list[tuple[int, int]],
                    image_size: tuple[int, int]) -> list[tuple[int, int]]:
    """Top-left corners of the faces' labels, in order, each whole inside the image and clear of the labels
    placed before it and, where it can be, of the other faces: the first free one of above the box, below it,
    inside its top and bottom, then further up and down, each flush with the box's left or right side; where
    none is free, the one overlapping least (another label counting four times another face)."""
    image_width, image_height = image_size
    placed: list[tuple[int, int, int, int]] = []
    corners = []
    for i, ((x, y, w, h), (width, height)) in enumerate(zip(boxes, label_sizes)):
        others = [box for j, box in enumerate(boxes) if j != i]
        rows = [y - height, y + h, y, y + h - height] + [y - height * k for k in (2, 3, 4)] + [y + h + height * k for k in (1, 2, 3)]
        rows = [top for top in rows if 0 <= top <= image_height - height] or [max(0, min(y - height, image_height - height))]
        places = [(max(0, min(left, image_width - width)), top) for top in rows for left in (x, x + w - width)]
        overlap = [4 * covered((left, top, width, height), placed) + covered((left, top, width, height), others)
                   for left, top in places]
        best = places[overlap.index(min(overlap))]
        placed.append((best[0], best[1], width, height))
        corners.append(best)
    return corners


def covered(rect: Box, rects) -> int:
    """The area of `rect` (x, y, w, h) that the `rects` cover, counted once per rect."""
    x, y, w, h = rect
    return sum(max(0, min(x + w, a + b) - max(x, a)) * max(0, min(y + h, c + d) - max(y, c)) for a, c, b, d in rects)


@dataclass(frozen=True)
class FacePrediction:
    """One face: its box (x, y, w, h in original pixels), top label, the calibrated probability of every
    label, the detector's score (None for an image classified whole) and whether the model is unsure
    (top probability low or top two close, by thresholds measured on validation)."""

    box: Box
    label: str
    scores: dict[str, float]
    detection_score: float | None = None
    uncertain: bool = False
    turned: int = 0
    """Degrees (counterclockwise) the photo was turned for the face to stand upright: 0, or 90, 180, 270 for a
    photo on its side or upside down."""

    @property
    def confidence(self) -> float:
        return self.scores[self.label]

    @property
    def runner_up(self) -> str:
        return sorted(self.scores, key=self.scores.get)[-2]

    def describe(self) -> str:
        """'happy 79%', or 'uncertain: happy 41% / neutral 38%'."""
        if self.uncertain:
            second = self.runner_up
            return f"uncertain: {self.label} {self.confidence:.0%} / {second} {self.scores[second]:.0%}"
        return f"{self.label} {self.confidence:.0%}"

    def to_dict(self) -> dict:
        return {"box": list(self.box), "label": self.label, "confidence": self.confidence, "scores": self.scores,
                "uncertain": self.uncertain, "detection_score": self.detection_score,
                **({"turned": self.turned} if self.turned else {})}


@dataclass(frozen=True)
class Explanation:
    """`EmotionRecognizer.explain`'s result: the faces, a 0..1 saliency heatmap per face on its
    `image_size` crop, and the photo with every heatmap laid over its face."""

    faces: list[FacePrediction]
    heatmaps: list[np.ndarray]
    overlay: Image.Image


class EmotionRecognizer:
    """Face detection + emotion CNN. Load with `from_pretrained()`; call `predict(image)`.

    `classifier` runs the CNN (`fer_model.classifier`: ONNX Runtime by default, or torch) of `precision`
    ("fp32", or "int8" for the folder's int8 graph, calibrated for it); `detector` is a detector name from
    `fer_model.detection.DETECTORS` (default: YuNet) or any object with the `FaceDetector` interface;
    `tta` is a mode of `fer_model.calibration.tta.TTA_MODES`.
    """

    def __init__(self, classifier: Classifier, config: FERConfig, detector: FaceDetector | str | None = None,
                 tta: str = DEFAULT_TTA, threads: int | None = None, precision: str = "fp32"):
        self.classifier = classifier
        self.config = config
        self.precision = precision
        self.labels = config.labels
        self.detector = (detector if detector is not None and not isinstance(detector, str)
                         else create_detector(detector, threads=threads))
        self.tta = tta
        self.baseline: Baseline | None = None

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike | None = None, revision: str | None = None,
                        backend: str = "onnx", precision: str | None = None, threads: int | None = None,
                        device=None, **kwargs) -> "EmotionRecognizer":
        """Load from a local folder, a Hub repo id (at `revision`), or the embedded default when `source` is
        None. `backend` "onnx" runs the ONNX graph on ONNX Runtime: the int8 one where the folder has it
        (`precision` None; the embedded default does), else or with `precision="fp32"` `model.onnx`;
        "torch" runs the safetensors weights on torch (fp32, on `device`; needs the torch extra).
        `threads` per call, for the CNN and the detector (default `fer_model.runtime.threads()`, i.e. `FER_THREADS`)."""
        folder = hub.resolve(source, revision)
        config = hub.read_config(folder)
        if precision not in (None, *PRECISIONS):
            raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        if backend != "onnx" and precision == "int8":
            raise ValueError("the int8 model runs on the onnx backend only")
        precision = precision or ("int8" if backend == "onnx" and config.int8 else "fp32")
        if precision == "int8" and not config.int8:
            raise ValueError(f"the model in {folder} has no int8 version (train.quantize makes one)")
        classifier = create_classifier(backend, folder, threads, device, onnx_file(config, precision))
        return cls(classifier, config, threads=threads, precision=precision, **kwargs)

    @property
    def calibration(self) -> Calibration:
        """The calibration of the model this recognizer runs (float or int8)."""
        return self.config.calibration(self.precision)

    @classmethod
    def from_model(cls, model, config: FERConfig, device=None, **kwargs) -> "EmotionRecognizer":
        """A recognizer running a torch `EmotionCNN` held in memory (e.g. while training)."""
        from .model import TorchClassifier

        return cls(TorchClassifier(model, device), config, **kwargs)

    @property
    def model(self):
        """The torch `EmotionCNN` of a torch-backed recognizer."""
        if not hasattr(self.classifier, "model"):
            raise AttributeError("an ONNX-backed recognizer has no torch model: load it with backend='torch'")
        return self.classifier.model

    def save_pretrained(self, folder: str | os.PathLike, dtype=None) -> Path:
        """Write `config.json`, `model.safetensors` and `model.onnx` into `folder`: exported from the torch
        model, or copied from the folder an ONNX-backed recognizer was loaded from. A `personalize`d recognizer
        is refused: a person's photos are not part of a model."""
        if self.baseline is not None:
            raise ValueError("a personalized recognizer holds a person's resting face, which is never saved with "
                             "a model: save the recognizer it was made from")
        if hasattr(self.classifier, "model"):
            return hub.save_pretrained(self.classifier.model, self.config, folder, dtype)
        return hub.copy_pretrained(self.classifier.path.parent, self.config, folder)

    def push_to_hub(self, repo_id: str, **kwargs) -> str:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder)
            return hub.push_to_hub(folder, repo_id, **kwargs)

    def predict(self, image, tta: str | None = None) -> list[FacePrediction]:
        """Every face in `image` (path, bytes, PIL image or array), largest first; [] when there is none.

        An image with no detected face that is small and near-square (a face crop like FER-2013's)
        is classified whole. Raises `InvalidImageError` for inputs that are not usable images. A JPEG over
        `image_io.FULL_DECODE_PIXELS` is read reduced; its boxes are still in the photo's own pixels.
        """
        rgb, size = decode(image)
        return rescaled(self.predict_frames([np.asarray(rgb)], tta)[0], rgb.size, size)

    def predict_frames(self, frames: list[np.ndarray], tta: str | None = None) -> list[list[FacePrediction]]:
        """`predict` for RGB uint8 arrays (H, W, 3), e.g. video frames: the faces of all frames in one batch."""
        return self.predict_found([self.find_faces(frame) for frame in frames], tta)

    def predict_found(self, found: list[list[tuple]], tta: str | None = None) -> list[list[FacePrediction]]:
        """Predictions for `find_faces` results of several images, all crops in one batch."""
        scores = iter(self.predict_faces([crop for faces in found for _, _, crop in faces], tta,
                                         [box_side(box) for faces in found for box, _, _ in faces]))
        return [[self.prediction(box, next(scores), detection_score, getattr(faces, "turned", 0))
                 for box, detection_score, _ in faces] for faces in found]

    def find_faces(self, frame: np.ndarray) -> FoundFaces:
        """(box, detection score, `image_size` grayscale crop) for each face of an RGB array, largest first."""
        return find_faces(self.detector, frame, self.config.preprocessing.image_size)

    def prediction(self, box: Box, scores: dict[str, float], detection_score: float | None = None,
                   turned: int = 0) -> FacePrediction:
        """A `FacePrediction` from calibrated scores, flagged when the config's uncertainty thresholds say so."""
        ranked = sorted(scores.values(), reverse=True)
        limits = self.calibration.for_side(box_side(box)).uncertainty
        uncertain = ranked[0] < limits.get("min_confidence", 0.0) or ranked[0] - ranked[1] < limits.get("min_margin", 0.0)
        return FacePrediction(box, max(scores, key=scores.get), scores, detection_score, uncertain, turned)

    def explain(self, image, method: str = "gradcam") -> Explanation:
        """`predict` plus a saliency heatmap for each face's predicted label (`fer_model.explain`)."""
        rgb = load_image(image)
        found = self.find_faces(np.asarray(rgb))
        faces = self.predict_found([found])[0]
        crops = [crop for _, _, crop in found]
        heatmaps = list(self.explain_faces(crops, method=method)) if crops else []
        heatmaps = [np.ascontiguousarray(np.rot90(h, -found.turned // 90)) for h in heatmaps]  # as the photo stands
        squares = [self.detector.framing.square(face.box) if face.detection_score is not None
                   else (rgb.width / 2, rgb.height / 2, max(rgb.size)) for face in faces]
        return Explanation(faces, heatmaps, overlay(rgb, heatmaps, squares))

    def explain_faces(self, faces, targets: list[str] | None = None, method: str = "gradcam") -> np.ndarray:
        """Saliency heatmaps (N, image_size, image_size), 0..1, of face crops for `targets` (default: the
        predicted labels); the centre crop a cropped model sees is placed in the middle of the face."""
        pre = self.config.preprocessing
        inputs = np.ascontiguousarray(center_crop(normalize(face_batch(faces, pre.image_size), pre), pre.input_size))
        target_ids = None if targets is None else np.array([self.labels.index(t) for t in targets])
        cams = class_activation_map(self.classifier, inputs, target_ids, method)
        before = (pre.image_size - pre.input_size) // 2
        after = pre.image_size - pre.input_size - before
        return np.pad(cams, ((0, 0), (before, after), (before, after)))

    def predict_faces(self, faces, tta: str | None = None, sides=None) -> list[dict[str, float]]:
        """Label probabilities for already-cropped faces (arrays or PIL images, any size and mode, or a uint8
        (N, H, W) array), in one batch, each calibrated for its side in its photo (`sides`; default: the crop's
        own larger side)."""
        if len(faces) == 0:
            return []
        pre = self.config.preprocessing
        sides = [crop_side(face) for face in faces] if sides is None else sides
        probabilities = self.probabilities(normalize(face_batch(faces, pre.image_size), pre),
                                           self.tta if tta is None else tta, sides)
        return [dict(zip(self.labels, map(float, row))) for row in probabilities]

    def face_logits(self, faces: np.ndarray, tta: str = "none", batch_size: int = 256) -> np.ndarray:
        """`logits` of uint8 face crops (N, image_size, image_size), `batch_size` at a time: (views, N, classes)."""
        pre = self.config.preprocessing
        return np.concatenate([self.logits(normalize(faces[i:i + batch_size], pre), tta)
                               for i in range(0, len(faces), batch_size)], axis=1)

    def logits(self, inputs: np.ndarray, tta: str = "none") -> np.ndarray:
        """Logits of every `tta` view of normalized faces (N, 1, H, W), shape (views, N, classes)."""
        batch = views(inputs, tta, self.config.preprocessing.input_size)
        return self.classifier.logits(batch).reshape(-1, len(inputs), len(self.labels))

    def probabilities(self, inputs: np.ndarray, tta: str = "none", sides=None) -> np.ndarray:
        """Calibrated label probabilities for normalized faces (N, 1, H, W), averaged over the `tta` views, each
        face calibrated for its side in its photo (`sides`; None: as a small face); on a `personalize`d
        recognizer, read against the person's resting face."""
        probabilities = self.plain_probabilities(inputs, tta, sides)
        if self.baseline is None:
            return probabilities
        return self.baseline.apply(probabilities, inputs, self.plain_probabilities, tta)

    def plain_probabilities(self, inputs: np.ndarray, tta: str = "none", sides=None) -> np.ndarray:
        """`probabilities` of each face alone, with no resting face."""
        return calibrated_probabilities(self.logits(inputs, tta), self.calibration, tta, sides)

    def personalize(self, images, strength: float = STRENGTH) -> "EmotionRecognizer":
        """A recognizer that reads faces against one person's resting face (`fer_model.baseline`): `images` is
        one photo or a list of them (paths, bytes, PIL images or arrays, as `predict` takes), of that person at
        rest; the largest face of each is taken. Every face a photo shows is then read against it: pass photos of
        that person. This recognizer is left as it is; the new one shares its model and detector."""
        images = list(images) if isinstance(images, (list, tuple)) else [images]
        if not images:
            raise ValueError("personalize needs at least one photo of the person at rest")
        crops, sides = [], []
        for number, image in enumerate(images, 1):
            faces = self.find_faces(np.asarray(load_image(image)))
            if not faces:
                raise InvalidImageError(f"no face found in resting-face photo {number} of {len(images)}")
            box, _, crop = faces[0]
            crops.append(crop)
            sides.append(box_side(box))
        personal = copy.copy(self)
        pre = self.config.preprocessing
        personal.baseline = Baseline(normalize(face_batch(crops, pre.image_size), pre), sides, strength)
        return personal

    def annotate(self, image, predictions: list[FacePrediction] | None = None) -> Image.Image:
        """A copy of `image` with every face's box and label drawn on it, numbered as `results.face_table`
        numbers them (a video's faces by their track), each label kept whole inside the image."""
        rgb, size = decode(image)
        rgb = rgb.copy()
        predictions = self.predict(rgb) if predictions is None else rescaled(predictions, size, rgb.size)
        draw = ImageDraw.Draw(rgb)
        line = max(2, round(max(rgb.size) / 300))
        font = ImageFont.load_default(size=max(12, round(max(rgb.size) / 40)))
        texts = [f"#{getattr(face, 'track_id', number)} {face.describe()}" for number, face in enumerate(predictions, 1)]
        extents = [draw.textbbox((0, 0), text, font=font) for text in texts]
        sizes = [(right - left + 2 * line, bottom - top + 2 * line) for left, top, right, bottom in extents]
        for face in predictions:
            x, y, w, h = face.box
            draw.rectangle((x, y, x + w, y + h), outline=(255, 200, 0), width=line)
        for text, (left, top, _, _), (width, height), (tx, ty) in zip(
                texts, extents, sizes, label_positions([face.box for face in predictions], sizes, rgb.size)):
            draw.rectangle((tx, ty, tx + width, ty + height), fill=(255, 200, 0))
            draw.text((tx + line - left, ty + line - top), text, fill=(0, 0, 0), font=font)
        return rgb
