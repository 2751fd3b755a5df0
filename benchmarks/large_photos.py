"""Phone-size photos: time, peak memory and faces found for one `recognizer.predict` of a 54 MP and a 200 MP
JPEG (read reduced) and a 54 MP PNG (read whole), each in a fresh process.

    python benchmarks/large_photos.py [--report NAME]

Each photo holds 6 faces of 400 to 1,400 pixels; a face counts as found where a box overlaps its truth by an
IoU of at least 0.5, in the photo's own pixels. Peak memory is the process's largest resident set (the
interpreter, the model and the photo's file included); `model_loaded_mb` the same before the photo.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import astronaut_canvas, report  # noqa: E402

PHOTOS = {"54mp_jpeg": ((9000, 6000), ".jpg"), "200mp_jpeg": ((16320, 12240), ".jpg"), "54mp_png": ((9000, 6000), ".png")}
FACES = [1400, 1000, 800, 600, 500, 400]


def iou(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def read_once(path: str) -> dict:
    """In a fresh process: the model loaded, then one `predict` of the photo, timed."""
    from fer_model import EmotionRecognizer

    recognizer = EmotionRecognizer.from_pretrained()
    before = peak_resident_mb()
    start = time.perf_counter()
    faces = recognizer.predict(path)
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "peak_memory_mb": peak_resident_mb(), "model_loaded_mb": before,
            "boxes": [list(face.box) for face in faces]}


def peak_resident_mb() -> int:
    """This process's peak resident set (`VmHWM`: unlike `ru_maxrss`, not carried over from the parent's)."""
    status = Path("/proc/self/status").read_text()
    return round(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", default="large_photos", help="results file: benchmarks/results/NAME.json")
    parser.add_argument("--read", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read:
        print(json.dumps(read_once(args.read)))
        return
    import cv2

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (size, suffix) in PHOTOS.items():
            canvas, truth = astronaut_canvas(size, FACES, seed=1)
            path = Path(folder) / f"{name}{suffix}"
            cv2.imwrite(str(path), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
            del canvas
            done = subprocess.run([sys.executable, __file__, "--read", str(path)], capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"{name}: {done.stderr.strip().splitlines()[-1]}")
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            found = sum(any(iou(box, true) >= 0.5 for box in figures["boxes"]) for true in truth)
            results[name] = {"size": f"{size[0]}x{size[1]}", "megapixels": round(size[0] * size[1] / 1e6, 1),
                             "file_mb": round(path.stat().st_size / 2**20, 1), "faces": len(truth), "found": found,
                             "boxes": len(figures["boxes"]),
                             **{k: v for k, v in figures.items() if k != "boxes"}}
            path.unlink()
    report(args.report, {"photos": f"6 faces of {FACES} px each on smooth noise", **results})


if __name__ == "__main__":
    main()
