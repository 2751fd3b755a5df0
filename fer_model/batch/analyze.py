"""The work of a batch run and the worker that does it: one recognizer, loaded once, for many units.

A unit is a batch of image files or URLs, a batch of a table's rows, or a segment of a video. Whatever a unit
meets, the worker answers a `UnitResult`: face rows, and an error row for every input it could not read. Images
and rows of a person with a resting face are read against it (`EmotionRecognizer.personalize`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FERError
from ..predictor import DEFAULT_TTA, EmotionRecognizer
from .segments import Segment, analyze_segment
from .sources import Table, is_url, open_binary, read_arrow
from .table import face_rows, no_face_row


@dataclass(frozen=True)
class ImageBatch:
    """Images as (source, location): a path or an fsspec URL; with `persons`, each one's person (or None), and
    `baselines` the resting-face photos of those persons, as (person, photos) (`Inputs.baseline`)."""

    items: tuple[tuple[str, str], ...]
    persons: tuple = ()
    baselines: tuple = ()


@dataclass(frozen=True)
class TableRows:
    """Rows of a table, by index (`persons` and `baselines` as `ImageBatch`'s)."""

    table: Table
    rows: tuple[int, ...]
    persons: tuple = ()
    baselines: tuple = ()


PERSONS_KEPT = 64
"""Personalized recognizers a worker keeps (the most recently made)."""


@dataclass
class UnitResult:
    unit: ImageBatch | TableRows | Segment
    faces: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    overlap: list[tuple] = field(default_factory=list)
    """A segment's warm-up faces as (frame, box, track id), for `TrackJoiner`."""


def one_line(err: BaseException) -> str:
    """An error as one line: the package's messages as they are, others with their type."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return text if isinstance(err, FERError) else f"{type(err).__name__}: {text}".rstrip(": ")


class Analyzer:
    """Turns units into `UnitResult`s with one single-threaded recognizer (one per worker process)."""

    def __init__(self, model: str | None = None, revision: str | None = None, tta: str = DEFAULT_TTA,
                 threads: int = 1, detector: str | None = None):
        import cv2

        cv2.setNumThreads(threads)
        self.recognizer = EmotionRecognizer.from_pretrained(model, revision, threads=threads, detector=detector, tta=tta)
        self._row_groups: tuple = (None, None)  # (file, (first row, table)) of the last Parquet row groups read
        self._personal: dict[tuple, EmotionRecognizer | Exception] = {}  # (person, photos) -> their recognizer

    def __call__(self, unit) -> UnitResult:
        if isinstance(unit, Segment):
            return self.segment(unit)
        if isinstance(unit, TableRows):
            values = self.table_values(unit)
            return self.images([(unit.table.source(row), value) for row, value in zip(unit.rows, values)], unit)
        return self.images(list(unit.items), unit)

    def images(self, items: list[tuple[str, object]], unit) -> UnitResult:
        result = UnitResult(unit)
        baselines = dict(unit.baselines)
        for (source, image), person in zip(items, unit.persons or [None] * len(items)):
            try:
                if isinstance(image, Exception):
                    raise image
                photos = baselines.get(person, ())
                faces = self.reader(person, photos).predict(read_image(image))
                described = {"person": person, "baseline": " | ".join(map(_photo_source, photos)) or None}
                result.faces += face_rows(source, faces, **described) or [no_face_row(source, person)]
            except Exception as err:  # noqa: BLE001 - an input that cannot be read is reported, never fatal
                result.errors.append({"source": source, "message": one_line(err)})
        return result

    def reader(self, person: str | None, photos: tuple) -> EmotionRecognizer:
        """The recognizer for `person`'s photos: read against their resting-face `photos` (paths, URLs or a table's
        rows), made once per worker; the plain one where there are none. A person whose resting-face photos
        cannot be used is an error for each of their photos."""
        if not photos:
            return self.recognizer
        key = (person, photos)
        if key not in self._personal:
            try:
                images = [self.table_values(p)[0] if isinstance(p, TableRows) else p for p in photos]
                for image in images:
                    if isinstance(image, Exception):
                        raise image
                self._personal[key] = self.recognizer.personalize([read_image(i) for i in images])
            except Exception as err:  # noqa: BLE001
                self._personal[key] = FERError(f"person {person}: {one_line(err)}")
            while len(self._personal) > PERSONS_KEPT:
                self._personal.pop(next(iter(self._personal)))
        if isinstance(self._personal[key], Exception):
            raise self._personal[key]
        return self._personal[key]

    def segment(self, segment: Segment) -> UnitResult:
        try:
            rows, overlap = analyze_segment(self.recognizer, segment)
            return UnitResult(segment, rows, overlap=overlap)
        except Exception as err:  # noqa: BLE001
            return UnitResult(segment, errors=[{"source": segment.source, "message": one_line(err)}])

    def table_values(self, unit: TableRows) -> list:
        """The image column's values at the unit's rows: bytes, a path or URL, or the error of reading them."""
        table = unit.table
        try:
            first, column = self._rows(table, unit.rows[0], unit.rows[-1] + 1)
            return [_image_value(column[row - first].as_py(), table.file) for row in unit.rows]
        except Exception as err:  # noqa: BLE001
            return [err] * len(unit.rows)

    def _rows(self, table: Table, start: int, stop: int):
        """(first row, column) of the row groups holding rows `start` to `stop`; the last ones read are kept."""
        cached_file, cached = self._row_groups
        if cached_file == table.file and cached[0] <= start and stop <= cached[0] + len(cached[1]):
            return cached
        if table.file.endswith(".arrow"):
            loaded = (0, read_arrow(table.file).column(table.column))
        else:
            loaded = _parquet_rows(table, start, stop)
        self._row_groups = (table.file, loaded)
        return loaded


def _photo_source(photo) -> str:
    return photo.table.source(photo.rows[0]) if isinstance(photo, TableRows) else photo


def _parquet_rows(table: Table, start: int, stop: int):
    import pyarrow.parquet as pq

    with open_binary(table.file) as handle:
        parquet = pq.ParquetFile(handle)
        groups, first, offset = [], None, 0
        for group in range(parquet.metadata.num_row_groups):
            rows = parquet.metadata.row_group(group).num_rows
            if offset < stop and start < offset + rows:
                groups.append(group)
                first = offset if first is None else first
            offset += rows
        return first, parquet.read_row_groups(groups, columns=[table.column]).column(table.column)


def _image_value(value, table_file: str):
    """A table cell as something `read_image` takes: bytes, or a path (relative to the table's folder) or URL."""
    if isinstance(value, dict):  # a Hugging Face `Image` cell: {"bytes", "path"}
        value = value.get("bytes") or value.get("path")
    if value is None:
        raise FERError("the image cell is empty")
    if isinstance(value, str) and not is_url(value) and not os.path.isabs(value) and not is_url(table_file):
        return str(Path(table_file).parent / value)
    return value


def read_image(image):
    """Bytes as they are; a local path as it is (`load_image` reads it); an fsspec URL's bytes."""
    if isinstance(image, str) and is_url(image):
        with open_binary(image) as handle:
            return handle.read()
    return image
