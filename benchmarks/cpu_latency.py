"""CPU speed of the default model: latency per face at batch 1 (for each TTA mode), throughput at batch 64, and the
end-to-end latency of a 640x480 photo with one face (decode + detection + preprocessing + model).

    python benchmarks/cpu_latency.py [--model DIR_OR_HUB_ID] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import photo_640x480, report, summary, timed  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.hub import WEIGHTS_NAME, resolve  # noqa: E402
from fer_model.tta import TTA_MODES, center_crop  # noqa: E402


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
    side = recognizer.config.preprocessing.image_size
    one, batch = torch.randn(1, 1, side, side), torch.randn(64, 1, side, side)
    per_tta = {mode: summary(timed(lambda: recognizer.probabilities(one, mode), args.repeats)) for mode in TTA_MODES}
    crop = center_crop(one, recognizer.config.preprocessing.input_size).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():  # the model with its BatchNorms kept and folded, interleaved in four rounds
        rounds = [tuple(summary(timed(lambda: net(crop), args.repeats // 4))["median_ms"]
                        for net in (model, recognizer.inference_model)) for _ in range(4)]
    with torch.inference_mode():
        batched = timed(lambda: recognizer.probabilities(batch), max(20, args.repeats // 10))
    jpeg = photo_640x480()
    faces = recognizer.predict(jpeg)
    assert len(faces) == 1, f"expected one face in the benchmark photo, found {len(faces)}"
    end_to_end = timed(lambda: recognizer.predict(jpeg), max(50, args.repeats // 2), warmup=5)
    batch_median = statistics.median(batched)
    report("cpu_latency" + (f"_threads{args.threads}" if args.threads else ""), {
        "model": args.model or "embedded default",
        "parameters": sum(p.numel() for p in model.parameters()),
        "weights_mb": round((resolve(args.model) / WEIGHTS_NAME).stat().st_size / 2**20, 2),
        "model_batch1_by_tta": per_tta,
        "batchnorm_folding_rounds_ms": [{"kept": kept, "folded": folded} for kept, folded in rounds],
        "model_batch64": {**summary(batched), "faces_per_s": round(64 / batch_median * 1000, 1)},
        "end_to_end_640x480_one_face": summary(end_to_end),
    })


if __name__ == "__main__":
    main()
