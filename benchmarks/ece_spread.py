"""How much the calibration error (ECE, 15 bins) of a model itself varies with the validation faces drawn:
the ECE after temperature scaling for every TTA mode, and its spread over bootstrap resamples of validation.

    python benchmarks/ece_spread.py --dataset ../shared/fer2013 [--resamples 500]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import report, validation_parser  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.tta import TTA_MODES, average_probabilities  # noqa: E402
from train.data import load_split, to_tensors  # noqa: E402
from train.evaluate import collect_logits, load_metric  # noqa: E402


def main() -> None:
    parser = validation_parser(__doc__, None)
    parser.add_argument("--resamples", type=int, default=500)
    args = parser.parse_args()
    recognizer = EmotionRecognizer.from_pretrained(args.model, device="cpu")
    faces, labels = to_tensors(load_split(args.dataset, "validation"), recognizer.config.preprocessing.image_size,
                               args.limit)
    calibration, rng, results = load_metric("calibration"), np.random.default_rng(0), {}
    for mode in TTA_MODES:
        probabilities = average_probabilities(collect_logits(recognizer, faces, mode),
                                              recognizer.config.temperature(mode)).numpy()
        ece = lambda rows: calibration.compute(probabilities=probabilities[rows],  # noqa: E731
                                               references=labels.numpy()[rows])["ece"]
        spread = [ece(rng.integers(0, len(labels), len(labels))) for _ in range(args.resamples)]
        results[mode] = {"ece": round(ece(np.arange(len(labels))), 4),
                         "resampled_2.5_50_97.5_percent": np.percentile(spread, [2.5, 50, 97.5]).round(4).tolist()}
    report("ece_spread", {"faces": len(labels), "resamples": args.resamples, **results})


if __name__ == "__main__":
    main()
