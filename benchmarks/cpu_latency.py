"""CPU speed of the default model: latency per face at batch 1 (for each TTA mode), throughput at batch 64, and the
end-to-end latency of a 640x480 photo with one face (decode + detection + preprocessing + model).

The photo is timed for every call over `--seconds` (default 60), not for a fixed count: on a shared machine
speed changes in phases of seconds to minutes, and a short burst measures one phase. The report gives the
median of all calls and of each second's median; the timeline goes to `cpu_latency*_timeline.png`.

    python benchmarks/cpu_latency.py [--model DIR_OR_HUB_ID] [--threads N] [--seconds S]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import RESULTS, photo_640x480, report, summary, timed, timed_for  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.hub import WEIGHTS_NAME, resolve  # noqa: E402
from fer_model.tta import TTA_MODES, center_crop  # noqa: E402

import torch  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model folder or Hub id (default: the embedded default)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for torch and OpenCV, i.e. for the model and the detector (default: theirs)")
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--seconds", type=float, default=60, help="how long to time the photo end to end")
    args = p.parse_args()
    name = "cpu_latency" + (f"_threads{args.threads}" if args.threads else "")
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
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
    starts, end_to_end = timed_for(lambda: recognizer.predict(jpeg), args.seconds)
    per_second = per_second_medians(starts, end_to_end)
    plot_timeline(starts, end_to_end, per_second, RESULTS / f"{name}_timeline.png")
    batch_median = statistics.median(batched)
    report(name, {
        "model": args.model or "embedded default",
        "parameters": sum(p.numel() for p in model.parameters()),
        "weights_mb": round((resolve(args.model) / WEIGHTS_NAME).stat().st_size / 2**20, 2),
        "model_batch1_by_tta": per_tta,
        "batchnorm_folding_rounds_ms": [{"kept": kept, "folded": folded} for kept, folded in rounds],
        "model_batch64": {**summary(batched), "faces_per_s": round(64 / batch_median * 1000, 1)},
        "end_to_end_640x480_one_face": {
            **summary(end_to_end), "seconds": args.seconds,
            "per_second_median_ms_min_25_50_75_max": np.percentile(per_second, [0, 25, 50, 75, 100]).round(2).tolist()},
    })


def per_second_medians(starts: list[float], times: list[float]) -> list[float]:
    """The median of the calls started in each whole second."""
    seconds = np.floor(starts).astype(int)
    return [float(np.median(np.asarray(times)[seconds == s])) for s in np.unique(seconds)]


def plot_timeline(starts: list[float], times: list[float], per_second: list[float], path: Path) -> None:
    """Every call's latency against its start time, with each second's median."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.scatter(starts, times, s=2, alpha=0.3, color="tab:gray", label="one call")
    ax.step(np.arange(len(per_second)) + 1, per_second, color="tab:blue", label="median of each second")
    ax.axhline(statistics.median(times), color="tab:orange", linestyle="--",
               label=f"median of all {len(times):,} calls: {statistics.median(times):.1f} ms")
    ax.set(xlabel="seconds", ylabel="ms", ylim=(0, np.percentile(times, 99) * 1.2),
           title="640x480 photo with one face, end to end")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
