"""The run's table: the columns of `faces/`, `errors/` and `tracks/`, and rows made from predictions."""
from __future__ import annotations

import json

import pyarrow as pa

from ..predictor import FacePrediction

FACE_COLUMNS = ["source", "frame", "time_s", "face", "track_id", "x", "y", "width", "height", "detection_score",
                "label", "confidence", "uncertain", "person", "baseline"]
"""`faces/`'s columns before one probability column per label. `face` numbers the faces of an image or frame
from 1, largest first (as the app numbers boxes); `frame`, `time_s` and `track_id` are empty for images;
`person` is the input's person where a manifest or table names one, `baseline` the sources of the resting-face
photos their faces were read against (empty: read plainly)."""
TRACK_COLUMNS = ["source", "track_id", "first_s", "last_s", "frames", "dominant"]
"""`tracks/`'s columns before each label's mean probability."""


PANDAS_TYPES = {pa.int64(): "Int64", pa.int32(): "Int32", pa.bool_(): "boolean", pa.string(): "object"}
"""The pandas types that keep a column's empty cells (a no-face row's) without turning ints into floats and
booleans into objects."""


def with_pandas_types(schema: pa.Schema) -> pa.Schema:
    """`schema` with the metadata `pd.read_parquet` reads its column types from: nullable ints and booleans."""
    columns = [{"name": f.name, "field_name": f.name, "metadata": None,
                "pandas_type": "unicode" if f.type == pa.string() else str(f.type),
                "numpy_type": PANDAS_TYPES.get(f.type, str(f.type))} for f in schema]
    return schema.with_metadata({"pandas": json.dumps({"index_columns": [], "column_indexes": [], "columns": columns,
                                                       "creator": {"library": "fer_model"}})})


def faces_schema(labels: list[str]) -> pa.Schema:
    types = [pa.string(), pa.int64(), pa.float64(), pa.int32(), pa.int64(), pa.int32(), pa.int32(), pa.int32(),
             pa.int32(), pa.float64(), pa.string(), pa.float64(), pa.bool_(), pa.string(), pa.string()]
    return with_pandas_types(pa.schema([*zip(FACE_COLUMNS, types), *((label, pa.float64()) for label in labels)]))


ERRORS_SCHEMA = pa.schema([("source", pa.string()), ("message", pa.string())])


def tracks_schema(labels: list[str]) -> pa.Schema:
    types = [pa.string(), pa.int64(), pa.float64(), pa.float64(), pa.int64(), pa.string()]
    return with_pandas_types(pa.schema([*zip(TRACK_COLUMNS, types), *((label, pa.float64()) for label in labels)]))


def face_rows(source: str, faces: list[FacePrediction], frame: int | None = None, time_s: float | None = None,
              person: str | None = None, baseline: str | None = None) -> list[dict]:
    """One row per face of an image or frame (`track_id` from a video's `TrackedFace`s)."""
    return [{"source": source, "frame": frame, "time_s": time_s, "face": number,
             "track_id": getattr(face, "track_id", None), "x": face.box[0], "y": face.box[1], "width": face.box[2],
             "height": face.box[3], "detection_score": face.detection_score, "label": face.label,
             "confidence": face.confidence, "uncertain": face.uncertain, "person": person, "baseline": baseline,
             **face.scores}
            for number, face in enumerate(faces, 1)]


def no_face_row(source: str, person: str | None = None) -> dict:
    """The row of an input where no face was found: its source (and person), every face field empty."""
    return {"source": source, "person": person}


def track_rows(source: str, summary: dict[int, dict]) -> list[dict]:
    """`tracks/` rows of one video from its `TrackTally.summary`."""
    return [{"source": source, "track_id": track_id, "first_s": track["first_seen"], "last_s": track["last_seen"],
             "frames": track["frames"], "dominant": track["dominant"], **track["mean_scores"]}
            for track_id, track in summary.items()]
