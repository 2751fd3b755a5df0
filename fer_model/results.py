"""Predictions as the shapes people and UIs read: label confidences, table rows, JSON, a one-line summary."""
from __future__ import annotations

from .predictor import FacePrediction

NO_FACE = "No face found. Try a brighter photo where the face is at least ~20 pixels wide."
TABLE_HEADERS = ["face", "emotion", "confidence", "x", "y", "width", "height"]


def main_face_scores(faces: list[FacePrediction]) -> dict[str, float]:
    """Label -> probability for the largest face ({} when there is none)."""
    return dict(faces[0].scores) if faces else {}


def face_table(faces: list[FacePrediction]) -> list[list]:
    """One row per face, largest first, with the columns of `TABLE_HEADERS` (confidence as a percentage)."""
    return [[i + 1, f.describe(), f"{f.confidence:.0%}", *f.box] for i, f in enumerate(faces)]


def faces_json(faces: list[FacePrediction], image_size: tuple[int, int]) -> dict:
    """Every face with its box and scores, plus the image size and a message when no face was found."""
    width, height = image_size
    return {"image": {"width": width, "height": height}, "count": len(faces),
            "faces": [f.to_dict() for f in faces], **({} if faces else {"message": NO_FACE})}


def summary(faces: list[FacePrediction]) -> str:
    """'Main face: **happy 79%** and 2 more faces.' (Markdown)."""
    if not faces:
        return NO_FACE
    others = f" and {len(faces) - 1} more face{'s' if len(faces) > 2 else ''}" if len(faces) > 1 else ""
    return f"Main face: **{faces[0].describe()}**{others}."
