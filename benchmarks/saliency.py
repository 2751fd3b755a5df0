"""Which saliency method shows what the model uses? A deletion test on FER-2013 validation faces.

For each face, the pixels a method ranks most salient (top 10% and 20%) are replaced by the face's mean
brightness; a faithful map makes the predicted class's probability drop more than a random choice does.

    python benchmarks/saliency.py --dataset ../shared/fer2013 [--limit 500]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import report, validation_parser  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.explain import SALIENCY_METHODS  # noqa: E402
from train.data import load_split, to_tensors  # noqa: E402


def main() -> None:
    args = validation_parser(__doc__, 500).parse_args()
    recognizer = EmotionRecognizer.from_pretrained(args.model)
    faces, _ = to_tensors(load_split(args.dataset, "validation"), recognizer.config.preprocessing.image_size, args.limit)
    faces = faces.numpy()
    before = recognizer.predict_faces(list(faces))
    labels = [max(s, key=s.get) for s in before]
    rng = np.random.default_rng(0)
    maps = {method: recognizer.explain_faces(list(faces), method=method) for method in SALIENCY_METHODS}
    maps["random"] = rng.random(faces.shape)
    results = {}
    for fraction in (0.1, 0.2):
        for method, heat in maps.items():
            cut = np.quantile(heat.reshape(len(faces), -1), 1 - fraction, axis=1).reshape(-1, 1, 1)
            blanked = np.where(heat >= cut, faces.mean(axis=(1, 2), keepdims=True), faces).astype(np.uint8)
            after = recognizer.predict_faces(blanked)
            drops = [b[label] - a[label] for b, a, label in zip(before, after, labels)]
            changed = np.mean([max(a, key=a.get) != label for a, label in zip(after, labels)])
            results[f"{method}_top{int(fraction * 100)}pct"] = {"mean_probability_drop": round(float(np.mean(drops)), 4),
                                                                "label_changed": round(float(changed), 4)}
    report("saliency", {"faces": len(faces), "model": args.model or "embedded default", **results})


if __name__ == "__main__":
    main()
