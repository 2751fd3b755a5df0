"""Soak: many sequential predictions through the package; reports resident-memory growth, open files and threads.

    python benchmarks/soak.py [--predictions 2000] [--warmup 200]
"""
from __future__ import annotations

import argparse
import io
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def soak(recognizer, sources: list, predictions: int = 2000, warmup: int = 200) -> dict:
    """Predict `predictions` times cycling through `sources`; measure growth after the first `warmup`."""
    process = psutil.Process()
    faces_found = []
    for i in range(warmup):
        recognizer.predict(sources[i % len(sources)])
    rss, files, threads = process.memory_info().rss, len(process.open_files()), threading.active_count()
    start = time.perf_counter()
    for i in range(warmup, predictions):
        faces_found.append(len(recognizer.predict(sources[i % len(sources)])))
    return {"predictions": predictions, "warmup": warmup, "seconds": round(time.perf_counter() - start, 1),
            "rss_after_warmup_mb": round(rss / 2**20, 1),
            "rss_growth_mb": round((process.memory_info().rss - rss) / 2**20, 2),
            "open_files_growth": len(process.open_files()) - files,
            "threads_growth": threading.active_count() - threads,
            "faces_found": sorted(set(faces_found))}


def sources(folder: Path) -> list:
    """A 256x256 photo path around a real face (detection runs every time) and a 48x48 face crop as bytes."""
    from PIL import Image
    from skimage import data

    photo = folder / "photo.jpg"
    astronaut = Image.fromarray(data.astronaut())
    astronaut.crop((128, 0, 384, 256)).save(photo)
    crop = io.BytesIO()
    astronaut.crop((176, 65, 272, 161)).convert("L").resize((48, 48)).save(crop, "PNG")
    return [str(photo), crop.getvalue()]


def main() -> None:
    import tempfile

    from benchmarks.common import report
    from fer_model import EmotionRecognizer

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--predictions", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        report("soak", soak(EmotionRecognizer.from_pretrained(), sources(Path(folder)), args.predictions, args.warmup))


if __name__ == "__main__":
    main()
