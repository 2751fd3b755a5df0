"""CPU speed, the ONNX Runtime paths against the torch/OpenCV path, side by side in one run, on 1 and 2 threads:
the CNN at batch 1 (each TTA mode) and 64, YuNet on a 640x480 photo, and that photo end to end (JPEG bytes
in: decode, detect, crop, classify) with no TTA and with the default flip TTA.

- int8: `model_int8.onnx` and YuNet on ONNX Runtime (the default).
- fp32: `model.onnx` and YuNet on ONNX Runtime.
- torch: the CNN on torch (BatchNorms folded, channels_last) and YuNet in OpenCV's dnn (the path before).

Every cell is timed in interleaved rounds (`--rounds` of `--seconds` / rounds each), paths alternating,
because this shared machine changes speed in phases of seconds to minutes.

    python benchmarks/cpu_latency.py [--model DIR_OR_HUB_ID] [--seconds 12] [--rounds 4]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import photo_640x480, report, timed_for  # noqa: E402
from fer_model import EmotionRecognizer, load_image  # noqa: E402
from fer_model.detection import create_detector  # noqa: E402
from fer_model.calibration.tta import TTA_MODES  # noqa: E402

import torch  # noqa: E402

PATHS = ("int8", "fp32", "torch")


def recognizers(model: str | None, threads: int) -> dict[str, EmotionRecognizer]:
    return {"int8": EmotionRecognizer.from_pretrained(model, precision="int8", threads=threads),
            "fp32": EmotionRecognizer.from_pretrained(model, precision="fp32", threads=threads),
            "torch": EmotionRecognizer.from_pretrained(model, backend="torch", device="cpu", threads=threads,
                                                       detector=create_detector(engine="opencv"))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model folder or Hub id (default: the embedded default)")
    p.add_argument("--seconds", type=float, default=12, help="timing per cell, split into --rounds")
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args()
    jpeg = photo_640x480()
    rgb = np.asarray(load_image(jpeg))
    figures = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
        paths = recognizers(args.model, threads)
        size = paths["int8"].config.preprocessing.image_size
        one, batch = (np.random.default_rng(0).standard_normal((n, 1, size, size)).astype(np.float32) for n in (1, 64))
        cells = {f"cnn_batch1_{mode}": lambda r, mode=mode: r.probabilities(one, mode) for mode in TTA_MODES}
        cells |= {"cnn_batch64": lambda r: r.probabilities(batch), "yunet_640x480": lambda r: r.detector.detect(rgb),
                  "photo_640x480_no_tta": lambda r: r.predict(jpeg, "none"),
                  "photo_640x480_flip": lambda r: r.predict(jpeg, "flip")}
        for r in paths.values():
            assert len(r.predict(jpeg)) == 1, "expected one face in the benchmark photo"
        table = {}
        for cell, fn in cells.items():
            times = {path: [] for path in PATHS}
            for _ in range(args.rounds):
                for path, recognizer in paths.items():
                    times[path] += timed_for(lambda: fn(recognizer), args.seconds / args.rounds, warmup=5)[1]
            medians = {path: round(statistics.median(t), 3) for path, t in times.items()}
            table[cell] = {**{f"{path}_median_ms": medians[path] for path in PATHS},
                           **{f"{path}_p90_ms": round(float(np.percentile(t, 90)), 3) for path, t in times.items()},
                           "calls": {path: len(t) for path, t in times.items()},
                           **{f"{path}_over_torch": round(medians[path] / medians["torch"], 3) for path in PATHS[:2]}}
            print(f"{threads} thread(s) {cell:22} " + "  ".join(f"{path} {medians[path]:7.2f} ms" for path in PATHS) +
                  "  ratios " + " / ".join(f"{table[cell][f'{path}_over_torch']:.2f}" for path in PATHS[:2]), flush=True)
        for path in PATHS:
            table["cnn_batch64"][f"{path}_faces_per_s"] = round(64_000 / table["cnn_batch64"][f"{path}_median_ms"], 1)
        figures[f"threads_{threads}"] = table
    report("cpu_latency", {"model": args.model or "embedded default", "seconds_per_cell": args.seconds,
                           "rounds": args.rounds, **figures})


if __name__ == "__main__":
    main()
