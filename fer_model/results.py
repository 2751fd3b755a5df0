"""Predictions as the shapes people and UIs read: label confidences, table rows, JSON, a one-line summary."""
from __future__ import annotations

from .image_io import load_image
from .predictor import FacePrediction

NO_FACE = "No face found: a face needs to be at least ~24 pixels wide, turned towards the camera and not covered."
TABLE_HEADERS = ["face", "emotion", "confidence", "uncertain", "x", "y", "width", "height"]


def main_face_scores(faces: list[FacePrediction]) -> dict[str, float]:
    """Label -> probability for the largest face ({} when there is none)."""
    return dict(faces[0].scores) if faces else {}


def main_face_label(faces: list[FacePrediction]) -> dict:
    """The largest face for a `gr.Label`: its confidences under a heading that says "uncertain" when the
    model is ({} when there is no face)."""
    if not faces:
        return {}
    face = faces[0]
    heading = f"uncertain: {face.label} or {face.runner_up}" if face.uncertain else face.label
    return {"label": heading, "confidences": [{"label": k, "confidence": v} for k, v in face.scores.items()]}


def face_table(faces: list[FacePrediction]) -> list[list]:
    """One row per face, numbered as `annotate` numbers the boxes, with the columns of `TABLE_HEADERS`
    (confidence as a percentage; for an uncertain face, the runner-up it is close to)."""
    return [[i + 1, f.label, f"{f.confidence:.0%}", f"yes: {f.runner_up} {f.scores[f.runner_up]:.0%}" if f.uncertain else "",
             *f.box] for i, f in enumerate(faces)]


def faces_json(faces: list[FacePrediction], image_size: tuple[int, int]) -> dict:
    """Every face with its box and scores, plus the image size and a message when no face was found."""
    width, height = image_size
    return {"image": {"width": width, "height": height}, "count": len(faces),
            "faces": [f.to_dict() for f in faces], **({} if faces else {"message": NO_FACE})}


def analyze_photo(recognizer, image, tta: str | None = None) -> dict:
    """`faces_json` of a photo (path, bytes, PIL image or array): what every API answers for one photo.
    Raises `InvalidImageError` for inputs that are not usable images."""
    rgb = load_image(image)
    return faces_json(recognizer.predict(rgb, tta), rgb.size)


def summary(faces: list[FacePrediction]) -> str:
    """'Main face: **happy 79%** and 2 more faces.' (Markdown)."""
    if not faces:
        return NO_FACE
    others = f" and {len(faces) - 1} more face{'s' if len(faces) > 2 else ''}" if len(faces) > 1 else ""
    return f"Main face: **{faces[0].describe()}**{others}."
