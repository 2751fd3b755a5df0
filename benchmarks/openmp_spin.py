"""What `fer_model.runtime`'s GOMP_SPINCOUNT does to a photo on the torch path (torch's CNN, YuNet in
OpenCV's dnn): the 640x480 photo end to end, and its detection and classification apart, in fresh
processes alternating GNU OpenMP's own spin count (300,000) with the product's (10,000). OpenMP reads the
value once, when torch loads it; ONNX Runtime's threads do not spin (`fer_model.runtime.session_options`).

    python benchmarks/openmp_spin.py [--rounds 3] [--seconds 8]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import report  # noqa: E402

SPIN_COUNTS = {"gnu_default": "300000", "fer_model": "10000"}

ONE_PROCESS = """
import json, sys, time
import numpy as np
from benchmarks.common import photo_640x480
from fer_model import EmotionRecognizer, load_image
from fer_model.detection import create_detector
recognizer = EmotionRecognizer.from_pretrained(backend="torch", detector=create_detector(engine="opencv"), tta="none")
jpeg = photo_640x480()
times = {"end_to_end": [], "detect": [], "classify": []}
end = time.perf_counter() + float(sys.argv[1])
while time.perf_counter() < end:
    t0 = time.perf_counter()
    found = recognizer.find_faces(np.asarray(load_image(jpeg)))
    t1 = time.perf_counter()
    recognizer.predict_faces([crop for _, _, crop in found])
    t2 = time.perf_counter()
    for name, ms in zip(times, (t2 - t0, t1 - t0, t2 - t1)):
        times[name].append(ms * 1000)
print(json.dumps({name: float(np.median(ms[10:])) for name, ms in times.items()}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=8)
    args = p.parse_args()
    runs = {name: [] for name in SPIN_COUNTS}
    for _ in range(args.rounds):
        for name, count in SPIN_COUNTS.items():
            output = subprocess.run([sys.executable, "-c", ONE_PROCESS, str(args.seconds)], cwd=ROOT, check=True,
                                    capture_output=True, text=True, env={**os.environ, "GOMP_SPINCOUNT": count})
            runs[name].append(json.loads(output.stdout))
    report("openmp_spin", {
        "seconds_per_process": args.seconds,
        **{name: {"GOMP_SPINCOUNT": int(SPIN_COUNTS[name]), "processes": results,
                  "median_ms": {part: round(statistics.median(r[part] for r in results), 2) for part in results[0]}}
           for name, results in runs.items()},
    })


if __name__ == "__main__":
    main()
