"""How much the calibration error (ECE, 15 bins) of a model itself varies with the validation faces drawn,
and what each part of the calibration does on faces it was not fitted on. For every TTA mode:

- the ECE with the model's calibration and with a temperature alone, the share of each class in the labels
  and in the mean probabilities of both, the ECE's spread over bootstrap resamples of validation, and the ECE a
  perfectly calibrated model with the same probabilities would read (labels drawn from them): the floor
  that sampling noise alone puts under the measurement;
- cross-fitted: a temperature alone, and a temperature with class bias, fitted on a random half of
  validation and scored (NLL, ECE, accuracy) on the other half, both ways, over several random halvings.

    python benchmarks/ece_spread.py --dataset ../shared/fer2013 [--resamples 500] [--halvings 10]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import report, validation_parser  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.calibration.tta import TTA_MODES, average_probabilities  # noqa: E402
from fer_model.calibration.fit import fit_calibration, nll  # noqa: E402
from train.data import load_split, to_tensors  # noqa: E402
from train.evaluate import collect_logits, load_metric  # noqa: E402


def drawn_labels(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label per row drawn from that row's probabilities: a set on which they are calibrated by construction."""
    drawn = (rng.random((len(probabilities), 1)) > probabilities.cumsum(axis=1)).sum(axis=1)
    return drawn.clip(max=probabilities.shape[1] - 1)  # where the cumulative sum ends a rounding error short of 1


def cross_fitted(logits: torch.Tensor, labels: torch.Tensor, halvings: int, calibration) -> dict:
    """Mean held-out NLL, ECE and accuracy of a temperature alone and of a temperature with class bias, each
    fitted on one random half of the faces and scored on the other (both ways, `halvings` times)."""
    generator, scores = torch.Generator().manual_seed(0), {"temperature": [], "temperature_and_class_bias": []}
    for _ in range(halvings):
        order = torch.randperm(len(labels), generator=generator)
        for fit, held in ((order[::2], order[1::2]), (order[1::2], order[::2])):
            for name, with_bias in (("temperature", False), ("temperature_and_class_bias", True)):
                temperature, bias = fit_calibration(logits[:, fit], labels[fit], class_bias=with_bias)
                probabilities = average_probabilities(logits[:, held], temperature, bias)
                scores[name].append((nll(logits[:, held], labels[held], temperature, bias),
                                     calibration.compute(probabilities=probabilities.numpy(),
                                                         references=labels[held].numpy())["ece"],
                                     (probabilities.argmax(1) == labels[held]).float().mean().item()))
    nll_gain = [a[0] - b[0] for a, b in zip(scores["temperature"], scores["temperature_and_class_bias"])]
    return {**{name: dict(zip(("nll", "ece", "accuracy"), np.mean(values, axis=0).round(4).tolist()))
               for name, values in scores.items()},
            "class_bias_lowers_nll_in": f"{sum(g > 0 for g in nll_gain)} of {len(nll_gain)} held-out halves"}


def main() -> None:
    parser = validation_parser(__doc__, None)
    parser.add_argument("--resamples", type=int, default=500)
    parser.add_argument("--halvings", type=int, default=10)
    args = parser.parse_args()
    recognizer = EmotionRecognizer.from_pretrained(args.model, precision="fp32")
    config = recognizer.config
    faces, labels = to_tensors(load_split(args.dataset, "validation"), config.preprocessing.image_size, args.limit)
    references, every = labels.numpy(), np.arange(len(labels))
    calibration, rng, results = load_metric("calibration"), np.random.default_rng(0), {}
    for mode in TTA_MODES:
        logits = collect_logits(recognizer, faces, mode)
        probabilities = average_probabilities(logits, config.temperature(mode), config.class_bias(mode)).numpy()
        ece = lambda rows, truth: calibration.compute(probabilities=probabilities[rows],  # noqa: E731
                                                      references=truth[rows])["ece"]
        spread = [ece(rng.integers(0, len(labels), len(labels)), references) for _ in range(args.resamples)]
        floor = [ece(every, drawn_labels(probabilities, rng)) for _ in range(args.resamples)]
        percentiles = lambda values: np.percentile(values, [2.5, 50, 97.5]).round(4).tolist()  # noqa: E731
        temperature_only = average_probabilities(logits, fit_calibration(logits, labels, class_bias=False)[0]).numpy()
        frequencies = {"validation": np.bincount(references, minlength=len(config.labels)) / len(references),
                       "temperature_only": temperature_only.mean(0), "calibrated": probabilities.mean(0)}
        results[mode] = {"ece": round(ece(every, references), 4),
                         "ece_temperature_only": round(calibration.compute(probabilities=temperature_only,
                                                                           references=references)["ece"], 4),
                         "class_frequencies": {name: dict(zip(config.labels, shares.astype(float).round(3).tolist()))
                                               for name, shares in frequencies.items()},
                         "resampled_2.5_50_97.5_percent": percentiles(spread),
                         "perfectly_calibrated_2.5_50_97.5_percent": percentiles(floor),
                         "cross_fitted_on_halves": cross_fitted(logits, labels, args.halvings, calibration)}
    report("ece_spread", {"faces": len(labels), "resamples": args.resamples, "halvings": args.halvings, **results})


if __name__ == "__main__":
    main()
