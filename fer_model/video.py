"""Videos: frames in, faces tracked across frames, per-frame emotions out; CSV, timeline plot, annotated video.

    for frame in predict_video(recognizer, "clip.mp4", fps=5):
        print(frame.time, [(f.track_id, f.label) for f in frame.faces])

It builds on the predictor (frames in one batch, `prediction` for smoothed scores); the predictor knows
nothing of videos.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .baseline import TrackBaselines
from .detection.base import iou
from .errors import InvalidVideoError
from .runtime import native_stderr_silenced
from .predictor import EmotionRecognizer, FacePrediction
from .preprocess import normalize


VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}
"""File endings read as videos in folders (`fer-model batch`)."""


@dataclass(frozen=True)
class TrackedFace(FacePrediction):
    """A face in one video frame, with the id it keeps across frames and what it was read against (`baseline`:
    "" alone, "photo" a resting-face photo, "track" its track's calmest frames, "none found" no calm frame yet)."""

    track_id: int = 0
    baseline: str = ""

    def to_dict(self) -> dict:
        return {"track_id": self.track_id, **super().to_dict(), **({"baseline": self.baseline} if self.baseline else {})}


@dataclass
class FrameResult:
    """The faces of one analysed frame; `image` is the RGB frame itself (for drawing)."""

    index: int
    time: float
    faces: list[TrackedFace]
    image: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {"frame": self.index, "time": round(self.time, 3), "faces": [f.to_dict() for f in self.faces]}


@dataclass
class VideoInfo:
    frames: int
    fps: float
    width: int
    height: int

    @property
    def seconds(self) -> float:
        return self.frames / self.fps if self.fps else 0.0


def video_info(path: str | Path) -> VideoInfo:
    """Frame count, frame rate and size of a video; `InvalidVideoError` if it cannot be read as one."""
    capture = _open(path)
    try:
        ok, frame = capture.read()
        if not ok or frame is None:
            raise InvalidVideoError(f"{Path(path).name}: no frame could be decoded (empty, corrupt or not a video)")
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        return VideoInfo(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), fps if math.isfinite(fps) else 0.0,
                         frame.shape[1], frame.shape[0])
    finally:
        capture.release()


def sampling(info: VideoInfo, every: int | None = None, fps: float | None = None) -> tuple[float, int]:
    """The video's frame rate (25 when it does not say) and the step between analysed frames."""
    rate = info.fps or 25.0
    return rate, every or (max(1, round(rate / fps)) if fps else 1)


def check_sampling(every: int | None = None, fps: float | None = None, smoothing: float = 0.0) -> None:
    """`ValueError` for frame sampling or smoothing a video cannot be read with."""
    if every is not None and fps is not None:
        raise ValueError("give `every` or `fps`, not both")
    if (every is not None and every < 1) or (fps is not None and fps <= 0):
        raise ValueError("`every` must be at least 1 and `fps` positive")
    if not 0 <= smoothing < 1:
        raise ValueError("smoothing must be in [0, 1)")


def check_baseline(baseline: str | None) -> None:
    """`ValueError` for a video baseline other than None or "track" (a photo: `recognizer.personalize(photo)`)."""
    if baseline not in (None, "track"):
        raise ValueError(f"baseline is None or 'track' (a photo: recognizer.personalize(photo)), not {baseline!r}")


def read_frames(path: str | Path, every: int | None = None, fps: float | None = None,
                max_frames: int | None = None, start: int = 0,
                stop: int | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
    """(frame index, time in s, upright RGB frame) for every `every`-th frame, or about `fps` frames a second,
    at most `max_frames` of them, from frame `start` (sought to; a multiple of the step) to before `stop`.
    Rotation metadata is applied; audio is ignored."""
    check_sampling(every, fps)
    info = video_info(path)
    rate, step = sampling(info, every, fps)
    if start % step:
        raise ValueError(f"start frame {start} is not a multiple of the step {step}")
    capture = _open(path)
    if start:
        capture.set(cv2.CAP_PROP_POS_FRAMES, start)
    taken, index = 0, start
    try:
        while (max_frames is None or taken < max_frames) and (stop is None or index < stop):
            if not capture.grab():
                break
            if index % step == 0:
                ok, frame = capture.retrieve()
                if not ok:
                    break
                yield index, index / rate, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                taken += 1
            index += 1
    finally:
        capture.release()
    if taken == 0 and start == 0:
        raise InvalidVideoError(f"{Path(path).name}: no frame could be decoded")


class IoUTracker:
    """Gives each face the id of the face it overlaps most (IoU above `min_iou`) in the last frames,
    greedily by overlap; a track not seen for `max_missed` analysed frames is dropped."""

    def __init__(self, min_iou: float = 0.3, max_missed: int = 5):
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.tracks: dict[int, tuple[np.ndarray, int]] = {}  # id -> (corner box, frames missed)
        self.next_id = 1

    def assign(self, boxes: list[tuple[int, int, int, int]]) -> list[int]:
        corners = [np.array([x, y, x + w, y + h], float) for x, y, w, h in boxes]
        ids = list(self.tracks)
        pairs = sorted(((float(iou(c, self.tracks[t][0][None])[0]), i, t) for i, c in enumerate(corners) for t in ids),
                       reverse=True)
        assigned: dict[int, int] = {}
        for overlap, i, track in pairs:
            if overlap >= self.min_iou and i not in assigned and track not in assigned.values():
                assigned[i] = track
        for i in range(len(corners)):
            if i not in assigned:
                assigned[i], self.next_id = self.next_id, self.next_id + 1
        seen = set(assigned.values())
        self.tracks = {t: (box, missed + 1) for t, (box, missed) in self.tracks.items()
                       if t not in seen and missed + 1 <= self.max_missed}
        self.tracks.update({assigned[i]: (corners[i], 0) for i in range(len(corners))})
        return [assigned[i] for i in range(len(corners))]


def predict_video(recognizer: EmotionRecognizer, path: str | Path, every: int | None = None, fps: float | None = None,
                  smoothing: float = 0.0, max_frames: int | None = None, batch_frames: int = 8,
                  tta: str | None = None, start: int = 0, stop: int | None = None,
                  baseline: str | None = None) -> Iterator[FrameResult]:
    """Per-frame results of a video (frames `start` to before `stop`, as `read_frames` takes them): faces
    tracked by IoU, scores optionally smoothed per track by an exponential moving average (`smoothing` is
    the weight of the past, 0..1), the faces of `batch_frames` frames classified in one forward pass.
    `baseline="track"` reads each track against its own resting face, found from its calmest frames as they
    come (`fer_model.baseline.TrackBaselines`); a `personalize`d recognizer reads every face against its photo."""
    check_sampling(smoothing=smoothing)  # the sampling: read_frames
    check_baseline(baseline)
    tracker, history = IoUTracker(), {}
    rests = TrackBaselines(recognizer.labels) if baseline == "track" else None
    kind = "photo" if recognizer.baseline is not None else ""
    pre = recognizer.config.preprocessing
    frames = read_frames(path, every, fps, max_frames, start, stop)
    while batch := [frame for _, frame in zip(range(batch_frames), frames)]:
        found = [recognizer.find_faces(f[2]) for f in batch]
        for (index, time, image), faces, crops in zip(batch, recognizer.predict_found(found, tta), found):
            tracked = []
            for face, track, (_, _, crop) in zip(faces, tracker.assign([f.box for f in faces]), crops):
                scores = face.scores
                if rests is not None:
                    read, rested = rests.apply(track, np.array([scores[k] for k in recognizer.labels]),
                                               normalize(crop[None], pre)[0])
                    scores, kind = dict(zip(recognizer.labels, map(float, read))), "track" if rested else "none found"
                if smoothing and track in history:
                    scores = {k: smoothing * history[track][k] + (1 - smoothing) * v for k, v in scores.items()}
                history[track] = scores
                face = recognizer.prediction(face.box, scores, face.detection_score, face.turned)
                tracked.append(TrackedFace(**vars(face), track_id=track, baseline=kind))
            yield FrameResult(index, time, tracked, image)


class TrackTally:
    """Running totals per track of a video's faces (frames seen, first and last time, summed scores), so that
    a summary needs no list of the frames."""

    def __init__(self):
        self.tracks: dict[int, dict] = {}

    def add(self, time: float, track_id: int, scores: dict[str, float], uncertain: bool = False,
            baseline: str = "") -> None:
        track = self.tracks.setdefault(track_id, {"frames": 0, "uncertain": 0, "first_seen": time,
                                                  "sums": dict.fromkeys(scores, 0.0), "baselines": {}})
        track["frames"] += 1
        track["uncertain"] += bool(uncertain)
        track["baselines"][baseline] = track["baselines"].get(baseline, 0) + 1
        track["last_seen"] = time
        for label, score in scores.items():
            track["sums"][label] += score

    def summary(self, frame_interval: float) -> dict[int, dict]:
        """Per track: dominant emotion (highest mean score), mean scores, frames seen, the share of them read
        `uncertain`, first and last time, the time on screen (frames seen x the interval between analysed
        frames) and, where its faces were read against a resting face, `baseline`: the share of its frames read
        against each kind (`TrackedFace.baseline`)."""
        summary = {}
        for track_id, track in sorted(self.tracks.items()):
            mean = {label: total / track["frames"] for label, total in track["sums"].items()}
            summary[track_id] = {"dominant": max(mean, key=mean.get), "mean_scores": mean, "frames": track["frames"],
                                 "uncertain_share": track["uncertain"] / track["frames"],
                                 **({"baseline": {k: n / track["frames"] for k, n in track["baselines"].items()}}
                                    if set(track["baselines"]) - {""} else {}),
                                 "first_seen": track["first_seen"], "last_seen": track["last_seen"],
                                 "seconds_on_screen": round(track["frames"] * frame_interval, 3)}
        return summary


def summarize(results: Iterable[FrameResult], frame_interval: float | None = None) -> dict[int, dict]:
    """`TrackTally.summary` of per-frame results (the interval: the median between analysed frames)."""
    results = list(results)
    if frame_interval is None:
        times = [r.time for r in results]
        frame_interval = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    tally = TrackTally()
    for result in results:
        for face in result.faces:
            tally.add(result.time, face.track_id, face.scores, face.uncertain, face.baseline)
    return tally.summary(frame_interval)


CSV_FIELDS = ["frame", "time_s", "track_id", "x", "y", "width", "height", "label", "confidence", "uncertain"]


class CsvWriter:
    """One row per face per frame, flushed after every frame so an interrupted run leaves a valid file."""

    def __init__(self, path: str | Path, labels: Iterable[str]):
        self.file = open(path, "w", newline="")
        self.labels = list(labels)
        self.writer = csv.writer(self.file)
        self.writer.writerow(CSV_FIELDS + self.labels)

    def write(self, result: FrameResult) -> None:
        for f in result.faces:
            self.writer.writerow([result.index, f"{result.time:.3f}", f.track_id, *f.box, f.label,
                                  f"{f.confidence:.4f}", int(f.uncertain), *(f"{f.scores[k]:.4f}" for k in self.labels)])
        self.file.flush()

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


FOURCC = {".mp4": "vp09", ".webm": "VP80", ".avi": "MJPG"}
"""The codec a suffix is written with: browsers play VP9 in MP4 and VP8 in WebM (not OpenCV's default
MPEG-4 Part 2 for .mp4); .avi is Motion JPEG, for tools that want every frame whole. VP8 (.webm, the default
of the app and the docs) encodes faster than VP9 (.mp4), which OpenCV runs at its slowest setting
(benchmarks/video_throughput.py)."""


class AnnotatedVideoWriter:
    """Writes frames with their faces drawn; the container follows the suffix (.webm plays in browsers)."""

    def __init__(self, path: str | Path, recognizer: EmotionRecognizer, fps: float):
        self.check_suffix(path)
        self.path, self.recognizer, self.fps, self.writer = Path(path), recognizer, fps, None

    @staticmethod
    def check_suffix(path: str | Path) -> None:
        """`ValueError` for a file name whose suffix names no container this writer makes."""
        suffix = Path(path).suffix.lower()
        if suffix not in FOURCC:
            raise ValueError(f"annotated video must end in {', '.join(FOURCC)}, not {suffix or 'nothing'}")

    def write(self, result: FrameResult) -> None:
        frame = np.asarray(self.recognizer.annotate(result.image, result.faces))
        if self.writer is None:
            with native_stderr_silenced():  # OpenCV warns, on every .webm, of a codec tag WebM does without
                self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()]),
                                              self.fps, (frame.shape[1], frame.shape[0]))
            if not self.writer.isOpened():
                raise InvalidVideoError(f"OpenCV cannot write {self.path.suffix} video here")
        self.writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


TIMELINE_TOP = 0.5
"""Inches left blank above a timeline's panels: the app's label and toolbar lie over the top of the picture."""


def plot_timeline(results: Iterable[FrameResult], path: str | Path, labels: Iterable[str]) -> Path:
    """Probability of each emotion over time, one panel per track, the legend below them and `TIMELINE_TOP` inches
    of margin above them (an app's label and toolbar over the picture's top cover nothing); a video with no face
    says so over its whole length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, results = list(labels), list(results)
    series: dict[int, list[tuple[float, dict]]] = {}
    for result in results:
        for face in result.faces:
            series.setdefault(face.track_id, []).append((result.time, face.scores))
    tracks = sorted(series) or [None]
    height = 2.4 * len(tracks) + 0.9 + TIMELINE_TOP
    fig, axes = plt.subplots(len(tracks), 1, figsize=(10, height), sharex=True, squeeze=False)
    for ax, track in zip(axes[:, 0], tracks):
        points = series.get(track, [])
        for label in labels:
            ax.plot([t for t, _ in points], [s[label] for _, s in points], label=label, marker="." if len(points) < 3 else None)
        ax.set(ylabel="probability", ylim=(0, 1), title=f"face {track}" if track is not None else "")
        ax.grid(alpha=0.3)
    if series:
        fig.legend(*axes[0, 0].get_legend_handles_labels(), ncol=len(labels), fontsize=8, loc="lower center")
    else:
        end = max((r.time for r in results), default=0.0)
        axes[0, 0].set_xlim(0, max(end, 1.0))
        axes[0, 0].text(0.5, 0.5, f"No face found in the {len(results)} frames read (0-{end:.1f} s)",
                        transform=axes[0, 0].transAxes, ha="center", va="center", fontsize=12)
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout(rect=(0, 0.08 if series else 0, 1, 1 - TIMELINE_TOP / height))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def _open(path: str | Path) -> cv2.VideoCapture:
    path = Path(path)
    if not path.is_file():
        raise InvalidVideoError(f"no such video file: {path}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InvalidVideoError(f"{path.name} is not a video OpenCV can read")
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)  # honour rotation metadata (phone videos)
    return capture


@dataclass
class VideoAnalysis:
    """What `analyze_video` made: per-frame results, a summary per face and whether the length limit cut it."""

    frames: list[dict]
    tracks: dict[int, dict]
    truncated: bool

    def to_dict(self) -> dict:
        """The JSON the app's video endpoint and MCP tool answer: frames, tracks (keyed by str) and truncated."""
        return {"frames": self.frames, "tracks": {str(k): v for k, v in self.tracks.items()}, "truncated": self.truncated}

    def describe(self) -> str:
        """A Markdown summary for people."""
        lines = [f"- face {t}: {describe_track(s)}, on screen {s['seconds_on_screen']:.1f} s from {s['first_seen']:.1f} s"
                 + describe_baseline(s) for t, s in self.tracks.items()]
        text = "\n".join(lines) or "No face found in the analysed frames."
        return text + ("\n\nOnly the beginning of the video was analysed (length limit)." if self.truncated else "")


def describe_track(summary: dict) -> str:
    """'mostly **happy** (71% on average)'; for a face read uncertain in most of its frames, 'uncertain in 80% of
    its frames: **sad** 33% / disgust 30% on average'."""
    mean = summary["mean_scores"]
    first, second = sorted(mean, key=mean.get, reverse=True)[:2]
    if summary.get("uncertain_share", 0) >= 0.5:
        return (f"uncertain in {summary['uncertain_share']:.0%} of its frames: **{first}** {mean[first]:.0%} / "
                f"{second} {mean[second]:.0%} on average")
    return f"mostly **{first}** ({mean[first]:.0%} on average)"


def describe_baseline(summary: dict) -> str:
    """What a track's faces were read against, for people: '' where they were read alone."""
    shares = summary.get("baseline")
    if not shares:
        return ""
    if shares.get("photo"):
        return "; read against the resting-face photo"
    if shares.get("track"):
        return f"; read against its calmest frames in {shares['track']:.0%} of its frames"
    return "; never calm enough for a resting face: read alone"


def analyze_video(recognizer: EmotionRecognizer, path: str | Path, csv_path: str | Path,
                  video_path: str | Path | None = None, timeline_path: str | Path | None = None,
                  every: int | None = None, fps: float | None = None, smoothing: float = 0.0,
                  max_frames: int | None = None, progress=None, baseline: str | None = None) -> VideoAnalysis:
    """Analyse a video into a per-frame CSV and, when asked, an annotated video and a timeline plot.

    Frames: every `every`-th, or about `fps` a second, at most `max_frames`. `progress` wraps the
    result iterator (tqdm-like, called with `total=`). An interruption (Ctrl-C) leaves a valid CSV and
    the plot of what was done. `baseline`: as `predict_video` takes it. Every option is checked before any output
    is touched; the outputs' folders are made where missing."""
    check_sampling(every, fps, smoothing)
    check_baseline(baseline)
    if video_path is not None:
        AnnotatedVideoWriter.check_suffix(video_path)
    info = video_info(path)
    for output in (csv_path, video_path, timeline_path):
        if output is not None:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
    rate, step = sampling(info, every, fps)
    expected = -(-info.frames // step) if info.frames > 0 else None
    results = predict_video(recognizer, path, every=step, smoothing=smoothing, max_frames=max_frames, baseline=baseline)
    if progress is not None:
        results = progress(results, total=min((n for n in (expected, max_frames) if n), default=None))
    kept = []
    with ExitStack() as outputs:
        table = outputs.enter_context(CsvWriter(csv_path, recognizer.labels))
        video = outputs.enter_context(AnnotatedVideoWriter(video_path, recognizer, rate / step)) if video_path else None
        try:
            for result in results:
                table.write(result)
                if video:
                    video.write(result)
                result.image = None
                kept.append(result)
        finally:
            if timeline_path and kept:
                plot_timeline(kept, timeline_path, recognizer.labels)
    truncated = bool(max_frames and expected and expected > max_frames)
    return VideoAnalysis([r.to_dict() for r in kept], summarize(kept, step / rate), truncated)
