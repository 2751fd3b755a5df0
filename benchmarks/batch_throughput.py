"""Collections on this machine: photos/s and video frames/s of `fer-model batch` against a one-thread
`recognizer.predict` loop over the same files, for a big and a small folder; with `--ray`, the two engines it
could run on (Daft, Ray Data) side by side on the same worker.

    python benchmarks/batch_throughput.py [--photos 12800] [--small 100] [--video-seconds 60] [--ray] [--report NAME]

Every way runs in a fresh process, timed from its start (imports, engine start, model loads, Parquet writes
included); its CPU time is that of the process and the workers it waited for (CPU ms a photo), its peak memory
the sum of its process tree's resident sets, sampled every 50 ms. The engine's start-up is timed apart: a fresh
process that starts the workers and has each analyse an empty unit.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import astronaut_canvas, report  # noqa: E402


def write_photos(folder: Path, count: int) -> None:
    """640x480 JPEGs with 1 to 6 faces each."""
    import cv2

    for i in range(count):
        canvas, _ = astronaut_canvas((640, 480), [80] * (1 + i % 6), seed=i)
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])


def write_video(path: Path, seconds: float, fps: int = 30) -> None:
    """640x480 Motion JPEG with 6 faces drifting right."""
    import cv2

    canvas, _ = astronaut_canvas((640, 480), [80] * 6, seed=0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    for i in range(int(seconds * fps)):
        writer.write(cv2.cvtColor(np.roll(canvas, i % 40, axis=1), cv2.COLOR_RGB2BGR))
    writer.release()


# The ways of running, each in its own process (`--way NAME INPUT OUT`); they print {"inputs": n} when done.

def way_loop(inputs: str, out: str) -> dict:
    """One one-thread recognizer, one file after another."""
    import cv2

    from fer_model import EmotionRecognizer

    cv2.setNumThreads(1)
    recognizer = EmotionRecognizer.from_pretrained(threads=1)
    files = sorted(Path(inputs).glob("*.jpg"))
    return {"inputs": len(files), "faces": sum(len(recognizer.predict(f)) for f in files)}


def way_video_loop(inputs: str, out: str) -> dict:
    """`fer-model video`: one pass, one process."""
    from fer_model import EmotionRecognizer
    from fer_model.video import predict_video

    frames = faces = 0
    for frame in predict_video(EmotionRecognizer.from_pretrained(), inputs):
        frames, faces = frames + 1, faces + len(frame.faces)
    return {"frames": frames, "faces": faces}


def way_batch(inputs: str, out: str) -> dict:
    """`fer-model batch` (Daft's native runner, a worker per core), Parquet written."""
    from fer_model import batch

    record = batch.run([inputs], out, progress=False, segment_seconds=10)
    return {"inputs": record["counts"]["inputs"], "faces": record["counts"]["faces"]}


def way_engine_startup(inputs: str, out: str) -> dict:
    """What every engine run pays before its first photo: imports, Daft, a worker per core loading the model,
    and one round trip of an empty unit each."""
    from fer_model.batch import ImageBatch, engine

    engine.use_runner("local", None)
    workers = engine.worker_count("local")
    units = [ImageBatch(())] * workers
    return {"inputs": 0, "workers": workers, "results": len(list(engine.analyze(units, {}, "local", workers)))}


def way_batch_ray(inputs: str, out: str) -> dict:
    """`fer-model batch --runner ray` on a Ray started here: Daft's Ray runner, a worker per core."""
    from fer_model import batch

    record = batch.run([inputs], out, progress=False, segment_seconds=10, runner="ray")
    return {"inputs": record["counts"]["inputs"], "faces": record["counts"]["faces"]}


def way_ray_data(inputs: str, out: str) -> dict:
    """The same units and worker on Ray Data (`map_batches` over an actor pool, 0.5 CPU each), results
    collected on the driver and nothing written."""
    import ray

    from fer_model.batch import CHUNK, ImageBatch
    from fer_model.batch.analyze import Analyzer

    class Worker:
        def __init__(self):
            self.analyzer = Analyzer()

        def __call__(self, batch):
            return {"result": [pickle.dumps(self.analyzer(pickle.loads(u))) for u in batch["unit"]]}

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    files = [str(p) for p in sorted(Path(inputs).glob("*.jpg"))]
    units = [ImageBatch(tuple((f, f) for f in files[i:i + CHUNK])) for i in range(0, len(files), CHUNK)]
    data = ray.data.from_items([{"unit": pickle.dumps(u)} for u in units]).map_batches(
        Worker, concurrency=os.cpu_count(), num_cpus=0.5, batch_size=1)
    results = [pickle.loads(row["result"]) for row in data.iter_rows()]
    return {"inputs": sum(len(r.unit.items) for r in results),
            "faces": sum(row.get("face") is not None for r in results for row in r.faces)}


WAYS = {"loop": way_loop, "video_loop": way_video_loop, "batch": way_batch, "engine_startup": way_engine_startup,
        "batch_ray": way_batch_ray, "ray_data": way_ray_data}


def measure(way: str, inputs: Path, out: Path) -> dict:
    """Wall time, CPU time and peak memory of one way, run in a fresh process."""
    import psutil

    cpu_before = _children_cpu()
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, __file__, "--way", way, str(inputs), str(out)],
                               stdout=subprocess.PIPE, text=True, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    parent, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    output = process.stdout.read()
    if process.returncode:
        raise SystemExit(f"{way} failed ({process.returncode})")
    figures = json.loads(output.strip().splitlines()[-1])
    return {**figures, "seconds": round(seconds, 2), "cpu_seconds": round(_children_cpu() - cpu_before, 2),
            "peak_memory_mb": round(peak / 2**20)}


def _children_cpu() -> float:
    """User and system CPU seconds of the children this process has waited for (and of theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def photo_ways(folder: Path, ways: tuple[str, ...], label: str) -> dict:
    """Each way over the JPEGs in `folder`, with photos/s and, for the batch, its speed-up over the loop."""
    results = {}
    for way in ways:
        figures = measure(way, folder, folder.parent / f"out-{label}-{way}")
        results[f"{label}_{way}"] = {**figures, "photos_per_s": round(figures["inputs"] / figures["seconds"], 1),
                                     "cpu_ms_per_photo": round(1000 * figures["cpu_seconds"] / figures["inputs"], 2)}
    loop = results[f"{label}_loop"]["seconds"]
    for way in ways[1:]:
        results[f"{label}_{way}"]["speed_up_over_loop"] = round(loop / results[f"{label}_{way}"]["seconds"], 2)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=12800, help="the big folder")
    parser.add_argument("--small", type=int, default=100, help="the small folder (0: none)")
    parser.add_argument("--video-seconds", type=float, default=60.0, help="0: photos only")
    parser.add_argument("--ray", action="store_true", help="also Daft's Ray runner and Ray Data on the big folder")
    parser.add_argument("--report", default="batch_throughput", help="results file: benchmarks/results/NAME.json")
    parser.add_argument("--way", nargs=3, metavar=("WAY", "INPUT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.way:
        way, inputs, out = args.way
        print(json.dumps(WAYS[way](inputs, out)))
        return
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        results["engine_startup"] = measure("engine_startup", folder, folder / "out-startup")
        for label, count in (("small", args.small), ("photos", args.photos)):
            if count:
                (folder / label).mkdir()
                write_photos(folder / label, count)
                ways = ("loop", "batch", "batch_ray", "ray_data") if args.ray and label == "photos" else ("loop", "batch")
                results.update(photo_ways(folder / label, ways, label))
                shutil.rmtree(folder / label)
        for seconds in (args.video_seconds, 3 * args.video_seconds) if args.video_seconds else ():
            clip = folder / f"clip-{seconds:g}.avi"
            write_video(clip, seconds)
            for way in ("video_loop", "batch"):
                if way == "video_loop" and seconds != args.video_seconds:
                    continue
                figures = measure(way, clip, folder / f"out-video-{seconds:g}")
                frames = round(seconds * 30)
                results[f"video_{seconds:g}s_{way}"] = {**figures, "frames_per_s": round(frames / figures["seconds"], 1),
                                                        "cpu_ms_per_frame": round(1000 * figures["cpu_seconds"] / frames, 2)}
    video = (f"640x480 Motion JPEG at 30 fps, 6 faces, {args.video_seconds:g} s and {3 * args.video_seconds:g} s; "
             "batch cuts it into 10 s segments") if args.video_seconds else "not measured"
    report(args.report, {"photos": f"{args.photos} 640x480 JPEGs, 1-6 faces each", "small": f"{args.small} of them",
                         "video": video, **results})


if __name__ == "__main__":
    main()
