"""How much the calibration error (ECE, 15 bins) of a model itself varies with the validation faces drawn:
the ECE after temperature scaling for every TTA mode, its spread over bootstrap resamples of validation, and
the ECE a perfectly calibrated model with the same probabilities would read (labels drawn from them): the
floor that sampling noise alone puts under the measurement.

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


def drawn_labels(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label per row drawn from that row's probabilities: a set on which they are calibrated by construction."""
    drawn = (rng.random((len(probabilities), 1)) > probabilities.cumsum(axis=1)).sum(axis=1)
    return drawn.clip(max=probabilities.shape[1] - 1)  # where the cumulative sum ends a rounding error short of 1


def main() -> None:
    parser = validation_parser(__doc__, None)
    parser.add_argument("--resamples", type=int, default=500)
    args = parser.parse_args()
    recognizer = EmotionRecognizer.from_pretrained(args.model, device="cpu")
    faces, labels = to_tensors(load_split(args.dataset, "validation"), recognizer.config.preprocessing.image_size,
                               args.limit)
    references, every = labels.numpy(), np.arange(len(labels))
    calibration, rng, results = load_metric("calibration"), np.random.default_rng(0), {}
    for mode in TTA_MODES:
        probabilities = average_probabilities(collect_logits(recognizer, faces, mode),
                                              recognizer.config.temperature(mode)).numpy()
        ece = lambda rows, truth: calibration.compute(probabilities=probabilities[rows],  # noqa: E731
                                                      references=truth[rows])["ece"]
        spread = [ece(rng.integers(0, len(labels), len(labels)), references) for _ in range(args.resamples)]
        floor = [ece(every, drawn_labels(probabilities, rng)) for _ in range(args.resamples)]
        percentiles = lambda values: np.percentile(values, [2.5, 50, 97.5]).round(4).tolist()  # noqa: E731
        results[mode] = {"ece": round(ece(every, references), 4),
                         "resampled_2.5_50_97.5_percent": percentiles(spread),
                         "perfectly_calibrated_2.5_50_97.5_percent": percentiles(floor)}
    report("ece_spread", {"faces": len(labels), "resamples": args.resamples, **results})


if __name__ == "__main__":
    main()
