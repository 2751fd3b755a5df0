"""Long videos: cut into time segments analysed apart, tracks joined again across the cuts.

A segment starts its analysis `warmup_frames` analysed frames before the first frame it reports, so that its
face tracks and smoothed scores have the history they have in one pass over the whole video; the faces of
that warm-up, which the previous segment reports, tell which of its tracks continue which.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..video import IoUTracker, predict_video, sampling, video_info
from .table import face_rows

SMOOTHING_TOLERANCE = 1e-6
"""A warm-up is long enough when the smoothed scores' start leaves less than this in them."""


@dataclass(frozen=True)
class Segment:
    """Frames `start` to before `stop` (None: the end) of a video, every `step`-th (`interval` seconds apart),
    analysed from `warmup` frames before `start`, scores smoothed with weight `smoothing` on the past."""

    source: str
    index: int
    count: int
    start: int
    stop: int | None
    step: int
    interval: float
    warmup: int
    smoothing: float
    frames: int = 1
    """Frames it reports (its share of the run's work; 1 where the video does not say its length)."""

    @property
    def warmup_start(self) -> int:
        return max(0, self.start - self.warmup)

    @property
    def plan(self) -> str:
        """What the segments of one cut of a video share: the cut and the reading (not the same, no mixing)."""
        return f"{self.source}|{self.count}|{self.step}|{self.warmup}|{self.smoothing}"


def warmup_frames(smoothing: float) -> int:
    """Analysed frames a segment replays before its start: enough for the tracker to forget older faces
    and for a moving average with weight `smoothing` on the past to forget where it began."""
    tracker = IoUTracker().max_missed + 1
    return max(tracker, math.ceil(math.log(SMOOTHING_TOLERANCE) / math.log(smoothing))) if smoothing else tracker


def plan_segments(source: str, every: int | None, fps: float | None, smoothing: float,
                  segment_seconds: float | None) -> list[Segment]:
    """A video's segments of about `segment_seconds` each (one segment when None or the length is unknown);
    `InvalidVideoError` when it cannot be read."""
    info = video_info(source)
    rate, step = sampling(info, every, fps)
    length = max(1, round(segment_seconds * rate / step)) * step if segment_seconds else None
    starts = list(range(0, info.frames, length)) if length and info.frames > 0 else [0]
    warmup = warmup_frames(smoothing) * step
    stops = starts[1:] + [None]
    return [Segment(source, i, len(starts), start, stop, step, step / rate, warmup, smoothing,
                    max(1, len(range(start, stop or info.frames, step)))) for i, (start, stop) in enumerate(zip(starts, stops))]


def analyze_segment(recognizer, segment: Segment) -> tuple[list[dict], list[tuple]]:
    """The face rows of a segment's frames (its own track ids) and (frame, box, track id) of its warm-up's faces."""
    rows, overlap = [], []
    for frame in predict_video(recognizer, segment.source, every=segment.step, smoothing=segment.smoothing,
                               start=segment.warmup_start, stop=segment.stop):
        if frame.index < segment.start:
            overlap += [(frame.index, tuple(face.box), face.track_id) for face in frame.faces]
        else:
            rows += face_rows(segment.source, frame.faces, frame.index, frame.time)
    return rows, overlap


class TrackJoiner:
    """One numbering for the tracks of one video's consecutive segments, fed in order: a segment's track takes
    the id of the face the previous segment reported with the same box in the last shared frame it was in;
    other tracks get new ids, in order of appearance (as one pass over the video numbers them)."""

    def __init__(self):
        self.next_id = 1
        self.previous: dict[tuple, int] = {}

    def join(self, rows: list[dict], overlap: list[tuple]) -> list[dict]:
        """`rows` with their track ids replaced by the video's."""
        continued: dict[int, int] = {}
        for frame, box, track in sorted(overlap, key=lambda entry: entry[0]):
            if (frame, box) in self.previous:
                continued[track] = self.previous[frame, box]
        ids, taken = {}, set()
        for track, video_id in continued.items():
            if video_id not in taken:
                ids[track] = video_id
                taken.add(video_id)
        for row in rows:
            if row["track_id"] not in ids:
                ids[row["track_id"]], self.next_id = self.next_id, self.next_id + 1
            row["track_id"] = ids[row["track_id"]]
        self.previous = {(row["frame"], (row["x"], row["y"], row["width"], row["height"])): row["track_id"]
                         for row in rows}
        return rows
