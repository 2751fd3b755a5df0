"""The run's folder: Parquet parts written whole as work completes, and what they say is already done.

    DIR/faces/*.parquet    one row per face per image or video frame (`table.FACE_COLUMNS` + labels)
    DIR/errors/*.parquet   source, message: every input that could not be read
    DIR/tracks/*.parquet   per video and track (`table.TRACK_COLUMNS` + labels)
    DIR/run.json           the model, options, counts and duration of the last run (written as it starts)
    DIR/.work/             parts being written, and finished segments of videos not finished yet (Parquet,
                           never pickles: a shared folder others can write to runs no code of theirs)
    DIR/.lock              held by the run writing to the folder: a second run is refused (`FolderInUseError`)

A part appears under its name only once written (rename), so a run stopped at any moment leaves only whole
parts; an input counts as done once its source is in `faces/` or `errors/`. The lock is the operating system's
(flock): a run killed even with SIGKILL leaves none behind.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import FERError
from ..video import TrackTally
from .segments import Segment, TrackJoiner
from .table import ERRORS_SCHEMA, faces_schema, no_face_row, track_rows, tracks_schema


READING = ("tta", "detector", "every", "fps", "smoothing")
"""The options that change rows: a folder's rows all come from one model and one reading."""


def video_key(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()[:16]


class FolderInUseError(FERError, ValueError):
    """Another run is writing to the output folder."""


class RunFolder:
    """A run's output folder (layout above), for the rows of one model's labels. Nothing is created on disk
    until `locked()`."""

    def __init__(self, path: str | Path, labels: list[str]):
        self.path = Path(path)
        self.labels = labels
        self.faces_schema = faces_schema(labels)
        self.faces, self.errors, self.tracks = (self.path / name for name in ("faces", "errors", "tracks"))
        self.work = self.path / ".work"

    @contextmanager
    def locked(self):
        """The folder, made and held for this run alone: `FolderInUseError`, naming the other run, while one holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "another process"
                raise FolderInUseError(f"{self.path} is in use by another run ({holder}): wait for it to end, "
                                       "or give another --out") from None
            lock.seek(0)
            lock.truncate()
            lock.write(f"pid {os.getpid()} on {socket.gethostname()}, since "
                       f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}\n")
            lock.flush()
            for folder in (self.faces, self.errors, self.tracks, self.work):
                folder.mkdir(exist_ok=True)
            try:
                yield self
            finally:
                lock.truncate(0)
                fcntl.flock(lock, fcntl.LOCK_UN)

    def check_reading(self, record: dict) -> None:
        """Refuse to add to a folder whose rows another model or reading (`READING`) made."""
        path = self.path / "run.json"
        if not path.is_file():
            return
        previous = json.loads(path.read_text())
        changed = [f"model {previous['model']['onnx_sha256'][:12]} -> {record['model']['onnx_sha256'][:12]}"] \
            if previous["model"]["onnx_sha256"] != record["model"]["onnx_sha256"] else []
        changed += [f"{name} {previous['options'].get(name)} -> {record['options'].get(name)}" for name in READING
                    if previous["options"].get(name) != record["options"].get(name)]
        if changed:
            raise ValueError(f"{self.path} holds rows of another model or reading ({'; '.join(changed)}): "
                             "give the same options, or another --out")

    def done_sources(self) -> set[str]:
        """Sources already in `faces/` or `errors/`."""
        done = set()
        for folder in (self.faces, self.errors) if self.path.is_dir() else ():
            for part in folder.glob("*.parquet"):
                done.update(pq.read_table(part, columns=["source"]).column("source").to_pylist())
        return done

    def write(self, faces: list[dict], errors: list[dict]) -> None:
        """One part of errors, then one of faces (so an input is never in both)."""
        if errors:
            self._write(pa.Table.from_pylist(errors, ERRORS_SCHEMA), self.errors / f"part-{uuid.uuid4().hex}.parquet")
        if faces:
            self._write(pa.Table.from_pylist(faces, self.faces_schema), self.faces / f"part-{uuid.uuid4().hex}.parquet")

    def _write(self, table: pa.Table, path: Path) -> None:
        partial = self.work / f"{path.parent.name}-{path.name}.partial"
        pq.write_table(table, partial)
        os.replace(partial, path)

    # Videos: segments are kept under .work until every one is there, then joined into one part.

    def segment_folder(self, segment: Segment) -> Path:
        """Where the segments of one cut of a video wait (another cut or reading of it waits elsewhere)."""
        return self.work / f"segments-{video_key(segment.plan)}"

    def segment_file(self, segment: Segment) -> Path:
        return self.segment_folder(segment) / f"{segment.index:06d}.parquet"

    def save_segment(self, segment: Segment, rows: list[dict], overlap: list[tuple]) -> None:
        """A segment's rows as Parquet, with the faces its last frames share with the next (`overlap`) as JSON
        in the file's metadata."""
        path = self.segment_file(segment)
        path.parent.mkdir(exist_ok=True)
        partial = path.with_suffix(".partial")
        table = pa.Table.from_pylist(rows, self.faces_schema)
        pq.write_table(table.replace_schema_metadata({**table.schema.metadata, b"overlap": json.dumps(overlap)}), partial)
        os.replace(partial, path)

    def load_segment(self, path: Path) -> tuple[list[dict], list[tuple]]:
        """What `save_segment` wrote: the rows, and the overlap as (frame, box, track) tuples."""
        table = pq.read_table(path, schema=self.faces_schema)
        overlap = json.loads(pq.read_schema(path).metadata[b"overlap"])
        return table.to_pylist(), [(frame, tuple(box), track) for frame, box, track in overlap]

    def segments_done(self, segment: Segment) -> int:
        return len(list(self.segment_folder(segment).glob("*.parquet")))

    def finish_video(self, segment: Segment) -> None:
        """Join the segments of `segment`'s video into `faces/video-KEY.parquet` and its tracks into `tracks/`."""
        folder, source, count = self.segment_folder(segment), segment.source, segment.count
        joiner, tally = TrackJoiner(), TrackTally()
        partial = self.work / f"faces-video-{video_key(source)}.parquet.partial"
        faces = 0
        with pq.ParquetWriter(partial, self.faces_schema) as writer:
            for index in range(count):
                rows, overlap = self.load_segment(folder / f"{index:06d}.parquet")
                rows = joiner.join(rows, overlap)
                for row in rows:
                    tally.add(row["time_s"], row["track_id"], {label: row[label] for label in self.labels},
                              row["uncertain"])
                faces += len(rows)
                if rows:
                    writer.write_table(pa.Table.from_pylist(rows, self.faces_schema))
            if not faces:
                writer.write_table(pa.Table.from_pylist([no_face_row(source)], self.faces_schema))
        tracks = track_rows(source, tally.summary(segment.interval))
        self._write(pa.Table.from_pylist(tracks, tracks_schema(self.labels)),
                    self.tracks / f"video-{video_key(source)}.parquet")
        os.replace(partial, self.faces / f"video-{video_key(source)}.parquet")
        shutil.rmtree(folder)

    def drop_video(self, segment: Segment) -> None:
        """Forget the segments of `segment`'s video (it went to `errors/`)."""
        shutil.rmtree(self.segment_folder(segment), ignore_errors=True)

    # The end of a run.

    def counts(self) -> dict:
        """Inputs, faces, inputs with no face and errors in the folder."""
        faces = pa.concat_tables([pq.read_table(p, columns=["source", "face"]) for p in self.faces.glob("*.parquet")]
                                 or [pa.table({"source": pa.array([], pa.string()), "face": pa.array([], pa.int32())})])
        errors = sum(pq.read_metadata(p).num_rows for p in self.errors.glob("*.parquet"))
        sources = faces.column("source").to_pylist()
        found = faces.column("face").to_pylist()
        return {"inputs": len(set(sources)) + errors, "faces": sum(f is not None for f in found),
                "no_face": sum(f is None for f in found), "errors": errors}

    def write_csv(self, path: str | Path) -> Path:
        """Every face row in one CSV, sorted by source, frame and face."""
        import pyarrow.csv

        parts = [pq.read_table(p, schema=self.faces_schema) for p in sorted(self.faces.glob("*.parquet"))]
        table = pa.concat_tables(parts) if parts else self.faces_schema.empty_table()
        table = table.sort_by([("source", "ascending"), ("frame", "ascending"), ("face", "ascending")])
        pyarrow.csv.write_csv(table, path, pyarrow.csv.WriteOptions(quoting_style="needed"))
        return Path(path)

    def write_record(self, record: dict) -> None:
        partial = self.work / "run.json.partial"
        partial.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(partial, self.path / "run.json")
