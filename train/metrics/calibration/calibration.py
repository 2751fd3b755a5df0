"""Calibration of predicted probabilities as a local `evaluate` module: ECE, NLL, Brier score and reliability bins."""
import datasets
import evaluate
import numpy as np

_DESCRIPTION = "How well predicted probabilities match observed accuracy."
_KWARGS_DESCRIPTION = """
Args:
    probabilities (list of list of float): predicted probability of every class, rows summing to 1.
    references (list of int): true class ids.
    num_bins (int): equal-width confidence bins for ECE and the reliability diagram (default 15).
Returns:
    ece (expected calibration error: bin-weighted |accuracy - confidence| of the top class), nll (mean
    negative log-likelihood of the true class), brier (mean squared error over all classes),
    accuracy, mean_confidence, and bins {lower, upper, count, accuracy, confidence} per bin.
"""


class Calibration(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"probabilities": datasets.Sequence(datasets.Value("float32")),
                                        "references": datasets.Value("int64")}),
        )

    def _compute(self, probabilities, references, num_bins=15):
        p = np.asarray(probabilities, dtype=np.float64)
        y = np.asarray(references)
        confidence, predicted = p.max(1), p.argmax(1)
        correct = (predicted == y).astype(float)
        edges = np.linspace(0, 1, num_bins + 1)
        which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, num_bins - 1)
        bins, ece = [], 0.0
        for b in range(num_bins):
            members = which == b
            count = int(members.sum())
            accuracy = float(correct[members].mean()) if count else None
            mean_confidence = float(confidence[members].mean()) if count else None
            if count:
                ece += count / len(y) * abs(accuracy - mean_confidence)
            bins.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": count,
                         "accuracy": accuracy, "confidence": mean_confidence})
        one_hot = np.eye(p.shape[1])[y]
        return {"ece": float(ece), "nll": float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean()),
                "brier": float(((p - one_hot) ** 2).sum(1).mean()), "accuracy": float(correct.mean()),
                "mean_confidence": float(confidence.mean()), "bins": bins}
