"""Does levelling the eyes before cropping help? FER-2013 validation faces are pasted into canvases,
upright or tilted by up to ±20°, found by the default detector, and cropped two ways: the detector's
square crop as it is, and the same crop rotated so that the eye keypoints are level. Both are scored.

    python benchmarks/eye_levelling.py --dataset ../shared/fer2013 [--limit 1000]
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import paste_face, report, validation_parser  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.preprocess import crop_face  # noqa: E402
from train.data import load_split, to_tensors  # noqa: E402


def levelled_crop(gray: np.ndarray, face, framing, size: int = 48) -> np.ndarray:
    """The detector's square crop, rotated about its centre so that the first two keypoints (the eyes) are level."""
    (x0, y0), (x1, y1) = face.keypoints[:2]
    cx, cy, side = framing.square(face.box)
    matrix = cv2.getRotationMatrix2D((cx, cy), math.degrees(math.atan2(y1 - y0, x1 - x0)), size / side)
    matrix[:, 2] += (size / 2 - cx, size / 2 - cy)
    return cv2.warpAffine(gray, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def main() -> None:
    args = validation_parser(__doc__, 1000).parse_args()
    recognizer = EmotionRecognizer.from_pretrained(args.model)
    detector = recognizer.detector
    faces, labels = to_tensors(load_split(args.dataset, "validation"), 48, args.limit)
    results = {"detector": detector.name, "faces": len(faces)}
    for max_tilt in (0, 20):
        rng = np.random.default_rng(max_tilt)
        plain, levelled, truth = [], [], []
        for i, (face, label) in enumerate(zip(faces.numpy(), labels.tolist())):
            side = int(rng.integers(96, 200))
            x, y = int(rng.integers(60, 580 - side)), int(rng.integers(60, 420 - side))
            tilt = cv2.getRotationMatrix2D((x + side / 2, y + side / 2), rng.uniform(-max_tilt, max_tilt), 1.0)
            gray = cv2.warpAffine(paste_face(face, (640, 480), side, (x, y), seed=i)[:, :, 0], tilt, (640, 480),
                                  borderMode=cv2.BORDER_REPLICATE)
            found = detector.detect(np.repeat(gray[:, :, None], 3, 2))
            if found and found[0].keypoints:
                plain.append(crop_face(gray, found[0].box, detector.framing, 48))
                levelled.append(levelled_crop(gray, found[0], detector.framing))
                truth.append(label)

        def correct(crops):
            return np.array([recognizer.labels.index(max(s, key=s.get)) == t
                             for s, t in zip(recognizer.predict_faces(crops), truth)])

        a, b = correct(plain), correct(levelled)
        results[f"tilt_up_to_{max_tilt}_degrees"] = {
            "found": len(truth), "accuracy_plain": round(float(a.mean()), 4), "accuracy_levelled": round(float(b.mean()), 4),
            "only_plain_right": int((a & ~b).sum()), "only_levelled_right": int((~a & b).sum())}
    report("eye_levelling", results)


if __name__ == "__main__":
    main()
