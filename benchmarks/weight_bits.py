"""The embedded int8 model against an earlier one (by default the last with 7-bit weights everywhere, before
`train.low_bits` lowered them): what `model_int8.onnx` weighs on the browser page's first visit (gzip level 6,
as the browser benchmark counts it, and brotli) and what each reads, per TTA mode: FER-2013 validation (its
3,589 crops whole, `face_logits`) and the test persons of `faces_in_the_wild` through the whole `predict`
pipeline (`benchmarks/in_the_wild.py`'s figures, with 95% intervals by person).

    python benchmarks/weight_bits.py [--against REV] [--fer2013 ../shared/fer2013]
                                     [--dataset ../shared/faces_in_the_wild]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import report, served_sizes  # noqa: E402
from benchmarks.in_the_wild import collection, read  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.calibration.tta import average_probabilities, modes_for  # noqa: E402
from fer_model.classifier import INT8_NAME  # noqa: E402
from fer_model.hub import CONFIG_NAME  # noqa: E402
from train.data import load_split  # noqa: E402

DEFAULT = ROOT / "fer_model" / "weights" / "default"
SEVEN_BITS = "ba52720"
"""The last commit whose embedded int8 model kept 7-bit weights in every layer."""


def fer_accuracy(recognizer: EmotionRecognizer, crops: np.ndarray, labels: np.ndarray) -> dict:
    out = {}
    for mode in modes_for(recognizer.config.preprocessing.crop_size):
        p = average_probabilities(recognizer.face_logits(crops, mode), recognizer.calibration.temperature(mode),
                                  recognizer.calibration.class_bias(mode))
        out[mode] = round(float((np.asarray(p).argmax(1) == labels).mean()), 4)
    return out


def earlier(rev: str, folder: Path) -> Path:
    """The embedded model folder with the int8 file and config of git revision `rev`."""
    shutil.copytree(DEFAULT, folder)
    for name in (INT8_NAME, CONFIG_NAME):
        path = f"{DEFAULT.relative_to(ROOT).as_posix()}/{name}"
        try:
            data = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as err:
            sys.exit(f"cannot read {path} at {rev} from git ({err}): run this in a clone with that history")
        (folder / name).write_bytes(data)
    return folder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--against", default=SEVEN_BITS, help="the git revision whose embedded int8 model to compare with")
    p.add_argument("--fer2013", default="../shared/fer2013", help="FER-2013 in the datasets layout (its validation split)")
    p.add_argument("--dataset", default="../shared/faces_in_the_wild", help="labelled real faces, read by person")
    args = p.parse_args()
    split = load_split(args.fer2013, "validation")
    crops = np.stack([np.asarray(image.convert("L")) for image in split["image"]])
    labels = np.asarray(split["label"])
    wild = collection(args.dataset, "test")
    figures = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, folder in ((args.against, earlier(args.against, Path(scratch) / "earlier")), ("embedded", DEFAULT)):
            recognizer = EmotionRecognizer.from_pretrained(str(folder), precision="int8")
            real = read(recognizer, wild, f"{Path(args.dataset).name}, test persons")
            figures[name] = {**served_sizes((folder / INT8_NAME).read_bytes()),
                             "fer2013_validation": fer_accuracy(recognizer, crops, labels),
                             "test_persons": {mode: {k: real[mode][k] for k in ("accuracy", "balanced_accuracy",
                                                                                  "accuracy_95", "ece")}
                                              for mode in modes_for(recognizer.config.preprocessing.crop_size)}}
            print(name, json.dumps(figures[name]), flush=True)
    metrics = json.loads((DEFAULT / "metrics.json").read_text())["int8"]
    report("weight_bits", {"fer2013": args.fer2013, "dataset": args.dataset, "images": len(labels),
                           "test_images": len(wild), "weight_bits": metrics.get("weight_bits"), **figures})


if __name__ == "__main__":
    main()
