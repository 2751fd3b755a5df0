"""Fit each face detector's crop to FER-2013's framing, and score the whole photo pipeline.

FER-2013 validation faces are upscaled and pasted into larger canvases at known places; each
detector finds them, and the crop (side = scale x box size, centre shifted by shift_y box heights)
that reproduces the pasted square is fitted by the median over faces. Then canvas -> detect ->
crop -> classify is scored beside the model's accuracy on the original crops.

    python benchmarks/fit_framing.py --dataset ../shared/fer2013 [--limit 1000] [--detectors yunet]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import paste_face, report, validation_parser  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.detection import DETECTORS, Framing, create_detector  # noqa: E402
from fer_model.preprocess import crop_face  # noqa: E402
from train.data import load_fer_dataset, to_tensors  # noqa: E402

CANVAS = (640, 480)


def main() -> None:
    p = validation_parser(__doc__, 1000)
    p.add_argument("--detectors", nargs="+", default=None, help="default: every detector")
    p.add_argument("--tta", default="none")
    args = p.parse_args()
    faces, labels = to_tensors(load_fer_dataset(args.dataset)["validation"], 48, args.limit)
    faces, labels = faces.numpy(), labels.numpy()
    rng = np.random.default_rng(0)
    sides = rng.integers(96, 241, len(faces))
    places = [(int(rng.integers(0, CANVAS[0] - s)), int(rng.integers(0, CANVAS[1] - s))) for s in sides]
    canvases = [paste_face(f, CANVAS, int(s), xy, seed=i) for i, (f, s, xy) in enumerate(zip(faces, sides, places))]
    recognizer = EmotionRecognizer.from_pretrained(args.model, tta=args.tta)
    original = np.array([max(p, key=p.get) for p in recognizer.predict_faces(list(faces))])
    results = {"faces": len(faces), "canvas": list(CANVAS), "face_sides_px": [96, 240], "tta": args.tta,
               "accuracy_on_original_crops": float((np.array([recognizer.labels.index(x) for x in original]) == labels).mean())}
    for name in args.detectors or list(DETECTORS):
        detector = create_detector(name)
        matches = {}
        for i, (canvas, side, (x, y)) in enumerate(tqdm(list(zip(canvases, sides, places)), desc=name)):
            found = [f for f in detector.detect(canvas) if x <= f.box[0] + f.box[2] / 2 <= x + side
                     and y <= f.box[1] + f.box[3] / 2 <= y + side]
            if found:
                matches[i] = found[0].box
        fits = np.array([(sides[i] / ((w + h) / 2), (places[i][1] + sides[i] / 2 - (by + h / 2)) / h,
                          (places[i][0] + sides[i] / 2 - (bx + w / 2)) / w) for i, (bx, by, w, h) in matches.items()])
        framing = Framing(scale=round(float(np.median(fits[:, 0])), 3), shift_y=round(float(np.median(fits[:, 1])), 3))
        gray = [c[:, :, 0] for c in canvases]
        crops = {i: crop_face(gray[i], box, framing) for i, box in matches.items()}
        predicted = recognizer.predict_faces(list(crops.values()))
        correct = sum(recognizer.labels.index(max(s, key=s.get)) == labels[i] for i, s in zip(crops, predicted))
        results[name] = {"found": len(matches), "framing": {"scale": framing.scale, "shift_y": framing.shift_y},
                         "spread_iqr": {k: [round(float(v), 3) for v in np.percentile(fits[:, j], [25, 75])]
                                        for j, k in enumerate(["scale", "shift_y", "shift_x"])},
                         "median_shift_x": round(float(np.median(fits[:, 2])), 3),
                         "pipeline_accuracy_on_found": correct / max(len(matches), 1),
                         "original_accuracy_on_found": float(np.mean([recognizer.labels.index(original[i]) == labels[i]
                                                                      for i in matches])),
                         "pipeline_accuracy_all": correct / len(faces)}
    report("fit_framing", results)


if __name__ == "__main__":
    main()
