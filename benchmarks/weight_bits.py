"""An int8 model against an earlier one (by default the last with 7-bit weights everywhere, before
`train.low_bits` lowered them): what `model_int8.onnx` weighs on the browser page's first visit (gzip level 6,
as the browser benchmark counts it, and brotli), what each reads per TTA mode, and on how many faces the two
readings differ: FER-2013 validation (its 3,589 crops whole, `face_logits`) and persons of `faces_in_the_wild`
through the whole `predict` pipeline (`benchmarks/in_the_wild.py`'s figures, with 95% intervals by person).

The embedded model is weighed on the test persons, the figure the docs report. A candidate made by
`python -m train.quantize FOLDER ... --int8-gzip-bytes N` is chosen on the calibration persons and FER-2013
validation, never on the test persons:

    python benchmarks/weight_bits.py [--against REV] [--fer2013 ../shared/fer2013]
                                     [--dataset ../shared/faces_in_the_wild]
    python benchmarks/weight_bits.py --model runs/a runs/b --persons calibration --name weight_bits_candidates
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
from benchmarks.in_the_wild import collection, pipeline_crops, read  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.calibration.tta import average_probabilities, calibrated_probabilities, modes_for  # noqa: E402
from fer_model.classifier import INT8_NAME  # noqa: E402
from fer_model.hub import CONFIG_NAME  # noqa: E402
from train.data import load_split  # noqa: E402

DEFAULT = ROOT / "fer_model" / "weights" / "default"
SEVEN_BITS = "ba52720"
"""The last commit whose embedded int8 model kept 7-bit weights in every layer."""


def fer_readings(recognizer: EmotionRecognizer, crops: np.ndarray) -> dict[str, np.ndarray]:
    """Each TTA mode's labels for FER-2013 crops read whole."""
    return {mode: np.asarray(average_probabilities(recognizer.face_logits(crops, mode),
                                                   recognizer.calibration.temperature(mode),
                                                   recognizer.calibration.class_bias(mode))).argmax(1)
            for mode in modes_for(recognizer.config.preprocessing.crop_size)}


def person_readings(recognizer: EmotionRecognizer, faces: tuple) -> dict[str, np.ndarray]:
    """Each TTA mode's labels for the faces `pipeline_crops` found, as `predict` reads them."""
    crops, _, sides = faces
    return {mode: calibrated_probabilities(recognizer.face_logits(crops, mode), recognizer.calibration, mode,
                                           sides).argmax(1)
            for mode in modes_for(recognizer.config.preprocessing.crop_size)}


def differ(readings: dict, reference: dict) -> dict[str, float]:
    """The share of faces whose label differs from `reference`'s, per TTA mode."""
    return {mode: round(float((labels != reference[mode]).mean()), 4) for mode, labels in readings.items()}


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
    p.add_argument("--model", nargs="+", default=[str(DEFAULT)], metavar="FOLDER",
                   help="model folders to weigh against --against (default: the embedded model)")
    p.add_argument("--against", default=SEVEN_BITS, help="the git revision whose embedded int8 model to compare with")
    p.add_argument("--persons", choices=("test", "calibration"), default="test",
                   help="whose faces of --dataset to read: the test persons (reported) or the calibration persons "
                        "(where candidates are chosen)")
    p.add_argument("--fer2013", default="../shared/fer2013",
                   help="FER-2013 in the datasets layout (its validation split)")
    p.add_argument("--dataset", default="../shared/faces_in_the_wild", help="labelled real faces, read by person")
    p.add_argument("--name", default="weight_bits", help="results go to benchmarks/results/NAME.json")
    args = p.parse_args()
    missing = [folder for folder in args.model if not (Path(folder) / INT8_NAME).is_file()]
    if missing:
        p.error(f"no {INT8_NAME} in {', '.join(missing)}")
    split = load_split(args.fer2013, "validation")
    crops = np.stack([np.asarray(image.convert("L")) for image in split["image"]])
    labels = np.asarray(split["label"])
    wild = collection(args.dataset, args.persons)
    figures, reference = {}, None
    with tempfile.TemporaryDirectory() as scratch:
        models = [(args.against, earlier(args.against, Path(scratch) / "earlier"))]
        models += [("embedded" if Path(f).resolve() == DEFAULT else f, Path(f)) for f in args.model]
        faces = None
        for name, folder in models:
            recognizer = EmotionRecognizer.from_pretrained(str(folder), precision="int8")
            faces = faces or pipeline_crops(recognizer, wild["image"], f"{args.persons} persons")
            real = read(recognizer, wild, f"{args.persons} persons", faces=faces)
            readings = {"fer2013": fer_readings(recognizer, crops), "persons": person_readings(recognizer, faces)}
            reference = reference or readings
            modes = modes_for(recognizer.config.preprocessing.crop_size)
            figures[name] = {**served_sizes((folder / INT8_NAME).read_bytes()),
                             "fer2013_validation": {mode: round(float((readings["fer2013"][mode] == labels).mean()),
                                                                4) for mode in modes},
                             f"{args.persons}_persons": {mode: {k: real[mode][k] for k in
                                                                ("accuracy", "balanced_accuracy", "accuracy_95", "ece")}
                                                         for mode in modes},
                             "differs_from_earlier": {part: differ(readings[part], reference[part])
                                                      for part in readings}}
            print(name, json.dumps(figures[name]), flush=True)
    levels = {name: json.loads((folder / "metrics.json").read_text()).get("int8", {}).get("weight_levels")
            for name, folder in models[1:] if (folder / "metrics.json").is_file()}
    report(args.name, {"fer2013": args.fer2013, "dataset": args.dataset, "persons": args.persons,
                       "images": len(labels), f"{args.persons}_images": len(wild), "weight_levels": levels, **figures})


if __name__ == "__main__":
    main()
