"""Calibration of predicted probabilities as a local `evaluate` module: ECE, NLL, Brier score and reliability bins."""
import datasets
import evaluate

from fer_model.calibration.fit import calibration_metrics

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
        return calibration_metrics(probabilities, references, num_bins)
