"""Video analysis speed: frames/s of a 640x480 clip analysed at every frame and at 5 frames a second
(decode, detection, tracking, batched classification), and the time `fer-model video --out` takes at 5 frames
a second into each container (.webm VP8, .mp4 VP9, .avi Motion JPEG), on this machine.

    python benchmarks/video_throughput.py [--seconds 10]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import report, write_clip  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.video import FOURCC, analyze_video, predict_video  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="clip length (30 fps)")
    args = p.parse_args()
    recognizer = EmotionRecognizer.from_pretrained()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        from skimage import data

        clip = write_clip(Path(folder) / "clip.mp4", data.astronaut(), frames=int(args.seconds * 30), fps=30)
        list(predict_video(recognizer, clip, max_frames=5))  # warm-up
        for name, options in (("every_frame", {}), ("fps_5", {"fps": 5})):
            start = time.perf_counter()
            frames = list(predict_video(recognizer, clip, **options))
            seconds = time.perf_counter() - start
            results[name] = {"frames_analysed": len(frames), "seconds": round(seconds, 2),
                             "analysed_frames_per_s": round(len(frames) / seconds, 1),
                             "video_seconds_per_second": round(args.seconds / seconds, 2),
                             "faces_per_frame": round(float(np.mean([len(f.faces) for f in frames])), 2)}
        results["annotated_video_s"] = {}
        for suffix in FOURCC:
            start = time.perf_counter()
            analyze_video(recognizer, clip, Path(folder) / "faces.csv", Path(folder) / f"annotated{suffix}", fps=5)
            results["annotated_video_s"][suffix] = round(time.perf_counter() - start, 2)
    report("video_throughput", {"clip": f"640x480, {args.seconds:g} s at 30 fps, one moving face", **results})


if __name__ == "__main__":
    main()
