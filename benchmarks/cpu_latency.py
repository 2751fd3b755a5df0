"""CPU speed of the default model: latency per face at batch 1, throughput at batch 64, and the
end-to-end latency of a 640x480 photo with one face (decode + detection + preprocessing + model).

    python benchmarks/cpu_latency.py [--model DIR_OR_HUB_ID] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import photo_640x480, report  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.hub import WEIGHTS_NAME, resolve  # noqa: E402


def timed(fn, repeats: int, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"median_ms": round(statistics.median(ordered), 3), "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
            "min_ms": round(ordered[0], 3), "runs": len(ordered)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model folder or Hub id (default: the embedded default)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--repeats", type=int, default=200)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    recognizer = EmotionRecognizer.from_pretrained(args.model, device="cpu")
    model = recognizer.model
    one, batch = torch.randn(1, 1, 48, 48), torch.randn(64, 1, 48, 48)
    with torch.inference_mode():
        single = timed(lambda: model(one), args.repeats)
        batched = timed(lambda: model(batch), max(20, args.repeats // 10))
    jpeg = photo_640x480()
    faces = recognizer.predict(jpeg)
    assert len(faces) == 1, f"expected one face in the benchmark photo, found {len(faces)}"
    end_to_end = timed(lambda: recognizer.predict(jpeg), max(50, args.repeats // 2), warmup=5)
    batch_median = statistics.median(batched)
    report("cpu_latency" + (f"_threads{args.threads}" if args.threads else ""), {
        "model": args.model or "embedded default",
        "parameters": sum(p.numel() for p in model.parameters()),
        "weights_mb": round((resolve(args.model) / WEIGHTS_NAME).stat().st_size / 2**20, 2),
        "model_batch1": summary(single),
        "model_batch64": {**summary(batched), "faces_per_s": round(64 / batch_median * 1000, 1)},
        "end_to_end_640x480_one_face": summary(end_to_end),
    })


if __name__ == "__main__":
    main()
