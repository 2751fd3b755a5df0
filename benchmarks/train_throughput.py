"""Training throughput (images/s) of the training step on the current device, in fp32 and in bf16
autocast side by side: device-resident data, on-device augmentation and cropping, AdamW, channels_last.

    python benchmarks/train_throughput.py [--widths 32,64,128,256] [--crop-size 44] [--batch-size 128] [--steps 30] [--compile]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import report  # noqa: E402
from fer_model.config import FERConfig, ModelConfig, PreprocessConfig  # noqa: E402
from fer_model.hub import build_model  # noqa: E402
from fer_model.preprocess import normalize  # noqa: E402
from train.augment import augment, random_crop  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", default="32,64,128,256")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--crop-size", type=int, default=44)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--compile", action="store_true", help="torch.compile the model (the warm-up steps compile it)")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = FERConfig(model=ModelConfig(widths=tuple(int(w) for w in args.widths.split(","))),
                       preprocessing=PreprocessConfig(crop_size=args.crop_size))
    faces = torch.randint(0, 256, (4096, 48, 48), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 7, (4096,), device=device)
    results = {}
    for precision, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        model = build_model(config).to(device, memory_format=torch.channels_last).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
        forward = torch.compile(model) if args.compile else model

        def step():
            idx = torch.randint(0, len(faces), (args.batch_size,), device=device)
            x = normalize(random_crop(augment(faces[idx]), config.preprocessing.input_size), config.preprocessing)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = F.cross_entropy(forward(x.contiguous(memory_format=torch.channels_last)).float(), labels[idx])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        for _ in range(args.warmup):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        images_per_s = args.steps * args.batch_size / (time.perf_counter() - start)
        results[precision] = {"images_per_s": round(images_per_s, 1),
                              "seconds_per_fer2013_epoch": round(28709 / images_per_s, 1)}
    results["bf16_speedup"] = round(results["bf16"]["images_per_s"] / results["fp32"]["images_per_s"], 2)
    report("train_throughput" + ("_compiled" if args.compile else ""), {
        "device": str(device), "widths": args.widths, "crop_size": args.crop_size, "batch_size": args.batch_size,
        "steps": args.steps, "compile": args.compile, **results})


if __name__ == "__main__":
    main()
