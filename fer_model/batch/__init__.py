"""Collections: every face of many photos, table rows and videos, on every core or a Ray cluster, into Parquet.

    from fer_model import batch
    batch.run(["photos/", "clips/*.mp4", "dataset.parquet"], "results/")     # fer-model batch ... --out results/

inputs -> units (image batches, table rows, video segments) -> workers (`Analyzer`, one recognizer each, on
Daft) -> Parquet parts under `results/` as work completes (`output.RunFolder`). Started again, a run does only
what is missing. Needs the `batch` extra (`pip install "fer-model[batch]"`). docs/batch.md tells more.
"""
from __future__ import annotations

import hashlib
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from tqdm.auto import tqdm

from .. import __version__, hub
from ..errors import FERError, IncompleteRunError, require
from ..predictor import DEFAULT_TTA, onnx_file
from ..runtime import cpu_name
from ..calibration.tta import TTA_MODES
from ..video import check_sampling

require("pyarrow", "fer_model.batch", "batch")  # its tables; Daft, the engine, is checked when a run starts
from .analyze import Analyzer, ImageBatch, TableRows, UnitResult, one_line  # noqa: E402
from .output import RunFolder  # noqa: E402
from .segments import Segment, plan_segments  # noqa: E402
from .sources import expand  # noqa: E402

__all__ = ["IncompleteRunError", "run"]
RUNNERS = ("local", "ray")
CHUNK = 32
"""Images or table rows per unit: enough to pay for a unit's round trip, few enough to spread over workers."""
IN_PROCESS_FRAMES = 256
"""A local run with at most this many frames to read runs in its own process, on one recognizer with a thread
per worker: starting the engine's workers (about 1.3 s on 2 cores) would cost more than they save."""


def run(inputs: list[str], out: str | Path, *, model: str | None = None, revision: str | None = None,
        tta: str = DEFAULT_TTA, threads: int = 1, detector: str | None = None, every: int | None = None,
        fps: float | None = None, smoothing: float = 0.0, segment_seconds: float | None = 60.0,
        column: str | None = None, runner: str = "local", address: str | None = None, workers: int | None = None,
        csv: str | Path | None = None, progress: bool = True) -> dict:
    """Analyse `inputs` (files, folders, globs, manifests, tables, videos, URLs: `sources.expand`) into `out`.

    `model`/`revision`, `tta`, `detector`: as `EmotionRecognizer.from_pretrained`; `threads` per worker.
    Videos: every frame, every `every`-th or about `fps` a second, scores smoothed as `predict_video` smooths
    them, cut into segments of `segment_seconds` (None: whole). `column`: tables' image column. `runner`
    "local" (every core here) or "ray" (the cluster at `address`, else `RAY_ADDRESS`), with `workers`
    processes (default: one per core); a local run of one worker or of at most `IN_PROCESS_FRAMES` frames runs
    in this process. `csv`: also one CSV of every face. Returns what `run.json` records.
    """
    _check(tta, threads, every, fps, smoothing, segment_seconds, runner, workers)
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    require("daft", "fer-model batch", "batch")
    from . import engine

    started = time.time()
    engine.use_runner(runner, address)
    workers = engine.worker_count(runner, workers)
    folder = hub.resolve(model, revision)
    config = hub.read_config(folder)
    results = RunFolder(out, config.labels)
    record = {"model": _model_record(model, revision, folder, config), "package": {"fer_model": __version__},
              "options": {"every": every, "fps": fps, "smoothing": smoothing, "segment_seconds": segment_seconds,
                          "tta": tta, "threads": threads, "detector": detector or "yunet", "column": column,
                          "runner": runner, "address": address, "workers": workers},
              "machine": {"cpu": cpu_name()},
              "started": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds")}
    found = expand(inputs, column, exclude=results.path)
    if not found.count:  # before the folder is made: a run with nothing to read leaves nothing behind
        raise ValueError(f"no images, videos or table rows found in {', '.join(map(str, inputs))}")
    with results.locked():
        results.check_reading(record)
        return _run(results, found, record, started, every, fps, smoothing, segment_seconds, runner, workers,
                    {"model": model and str(model), "revision": revision, "tta": tta, "threads": threads,
                     "detector": detector}, csv, progress)


def _run(results: RunFolder, found, record: dict, started: float, every, fps, smoothing, segment_seconds, runner,
         workers, settings: dict, csv, progress: bool) -> dict:
    """`run` on a folder this run holds: plan what is not done, analyse it, write it, record the run."""
    from . import engine

    units = _plan(found, results, every, fps, smoothing, segment_seconds, progress)
    todo = sum(_size(unit) for unit in units)
    pending = len({u.source for u in units if isinstance(u, Segment)}) + sum(
        len(u.rows if isinstance(u, TableRows) else u.items) for u in units if not isinstance(u, Segment))
    in_process = runner == "local" and (workers == 1 or todo <= IN_PROCESS_FRAMES)
    record.update(inputs=found.count, already_done=found.count - pending,
                  engine="this process" if in_process else f"daft ({runner})")
    results.write_record({**record, "status": "running"})
    bar = _progress_bar(todo, found.count - pending, progress)
    status, videos_failed = "interrupted", set()
    analyzed = (_analyze_here(units, {**settings, "threads": settings["threads"] * workers}) if in_process
                else engine.analyze(units, settings, runner, workers))
    try:
        for result in analyzed:
            _keep(results, result, videos_failed)
            bar.update(_size(result.unit))
        if csv:
            results.write_csv(csv)
        status = "complete"
    finally:
        bar.close()
        record.update(status=status, counts=results.counts(), duration_s=round(time.time() - started, 2))
        results.write_record(record)
    return record


def _analyze_here(units: list, settings: dict):
    """The units' results one after another, on one `Analyzer` in this process (a small local run)."""
    if units:
        analyzer = Analyzer(**settings)
        yield from map(analyzer, units)


def _plan(found, results: RunFolder, every, fps, smoothing, segment_seconds, progress: bool) -> list:
    """The units of what is not done yet: the segments of videos still to do (a video that cannot be read
    goes to `errors/` now), then batches of images and of table rows."""
    done = results.done_sources()
    units = []
    videos = [source for source in found.videos if source not in done]
    for source in tqdm(videos, desc="reading video lengths", unit="video", file=sys.stderr, leave=False,
                       disable=not progress or len(videos) < 20):
        try:
            segments = plan_segments(source, every, fps, smoothing, segment_seconds)
        except FERError as err:
            results.write([], [{"source": source, "message": one_line(err)}])
            continue
        pending = [s for s in segments if not results.segment_file(s).exists()]
        if pending:
            units += pending
        else:  # every segment was done before the last run stopped
            results.finish_video(segments[0])
    images = [item for item in found.images if item[0] not in done]
    for i in range(0, len(images), CHUNK):
        units.append(ImageBatch(tuple(images[i:i + CHUNK]), *_persons(found, [s for s, _ in images[i:i + CHUNK]])))
    for table in found.tables:
        rows = [row for row in range(table.rows) if table.source(row) not in done]
        for i in range(0, len(rows), CHUNK):
            chunk = tuple(rows[i:i + CHUNK])
            units.append(TableRows(table, chunk, *_persons(found, [table.source(row) for row in chunk])))
    return units


def _persons(found, sources: list[str]) -> tuple[tuple, tuple]:
    """A unit's `persons` and `baselines` (empty where no input of it has a person)."""
    persons = tuple(found.persons.get(source) for source in sources)
    if not any(persons):
        return (), ()
    return persons, tuple((person, found.baseline(person)) for person in sorted(set(filter(None, persons))))


def _keep(results: RunFolder, result: UnitResult, videos_failed: set) -> None:
    """Write a unit's result: rows and errors at once; a video's segment aside until the video is whole."""
    unit = result.unit
    if not isinstance(unit, Segment):
        results.write(result.faces, result.errors)
    elif unit.source in videos_failed:
        return
    elif result.errors:
        videos_failed.add(unit.source)
        results.drop_video(unit)
        results.write([], result.errors)
    else:
        results.save_segment(unit, result.faces, result.overlap)
        if results.segments_done(unit) == unit.count:
            results.finish_video(unit)


def _size(unit) -> int:
    """Frames a unit stands for: one per image or table row, a segment's frames to read (so that the bar and its
    time left move with a long video as with many photos)."""
    if isinstance(unit, Segment):
        return unit.frames
    return len(unit.rows if isinstance(unit, TableRows) else unit.items)


def _progress_bar(total: int, done_before: int, enabled: bool):
    """The run's bar in frames (photos and video frames alike), naming the inputs an earlier run did."""
    before = f", {done_before} input{'s' * (done_before != 1)} done before" if done_before else ""
    return tqdm(total=total, desc=f"frames{before}", unit="frame", disable=not enabled, file=sys.stderr,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total} [{elapsed}<{remaining}, {rate_fmt}]")


def _model_record(model, revision, folder: Path, config) -> dict:
    """Which model ran: its source, the Hub revision it resolved to, and the ONNX file with its sha256."""
    onnx = folder / onnx_file(config)
    digest = hashlib.sha256(onnx.read_bytes()).hexdigest()
    snapshot = folder.name if folder.parent.name == "snapshots" else None
    return {"source": str(model) if model else "embedded default", "folder": str(folder),
            "revision": snapshot or revision, "onnx": onnx.name, "onnx_sha256": digest, "labels": config.labels}


def _check(tta, threads, every, fps, smoothing, segment_seconds, runner, workers) -> None:
    if tta not in TTA_MODES:
        raise ValueError(f"unknown TTA mode {tta!r}; choose one of {', '.join(TTA_MODES)}")
    if runner not in RUNNERS:
        raise ValueError(f"unknown runner {runner!r}; choose one of {', '.join(RUNNERS)}")
    check_sampling(every, fps, smoothing)
    if segment_seconds is not None and segment_seconds <= 0:
        raise ValueError("segment_seconds must be positive")
    if threads < 1 or (workers is not None and workers < 1):
        raise ValueError("threads and workers must be at least 1")
