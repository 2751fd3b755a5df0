"""FER metrics as a local `evaluate` module: accuracy, macro and per-class precision/recall/F1, confusion matrix."""
import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Accuracy, macro and per-class precision/recall/F1 and the confusion matrix of a classifier."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids.
    labels (list of str): class names, in id order.
Returns:
    accuracy, macro_precision, macro_recall, macro_f1, balanced_accuracy (mean recall of the classes present), per_class {name: {precision, recall, f1, support}},
    confusion_matrix (rows: true class, columns: predicted class), num_examples.
"""


class FERMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, labels):
        k = len(labels)
        matrix = np.zeros((k, k), dtype=np.int64)
        np.add.at(matrix, (np.asarray(references), np.asarray(predictions)), 1)
        true_positive = np.diag(matrix).astype(float)
        predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
        precision = np.divide(true_positive, predicted, out=np.zeros(k), where=predicted > 0)
        recall = np.divide(true_positive, support, out=np.zeros(k), where=support > 0)
        f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=precision + recall > 0)
        return {
            "accuracy": float(true_positive.sum() / max(matrix.sum(), 1)),
            "macro_precision": float(precision.mean()),
            "macro_recall": float(recall.mean()),
            "macro_f1": float(f1.mean()),
            "balanced_accuracy": float(recall[support > 0].mean()) if (support > 0).any() else 0.0,
            "per_class": {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                          for name, p, r, f, s in zip(labels, precision, recall, f1, support)},
            "confusion_matrix": matrix.tolist(),
            "num_examples": int(matrix.sum()),
        }
