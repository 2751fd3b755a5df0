"""Does an int8 model earn its place? Static int8 quantization of the default's `model.onnx` (QDQ, per-channel
weights, calibrated on training faces), its calibration (temperature, class offsets, uncertainty thresholds)
re-fitted on validation as `train.finish` does, scored against the fp32 model in every TTA mode; and the CNN's
speed at batch 1 and 64 on ONNX Runtime, both models interleaved. It ships only if it loses at most 0.2 points
of validation accuracy in every mode.

    python benchmarks/int8.py --dataset ../shared/fer2013 [--calibration-faces 1024] [--out runs/int8]
"""
from __future__ import annotations

import json
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import report, timed, validation_parser  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.classifier import INPUT, ONNX_NAME, OnnxClassifier  # noqa: E402
from fer_model.hub import CONFIG_NAME, resolve  # noqa: E402
from fer_model.preprocess import normalize  # noqa: E402
from fer_model.tta import TTA_MODES, average_probabilities, center_crop  # noqa: E402
from train.calibration import fit_calibration, fit_uncertainty  # noqa: E402
from train.data import load_split, to_tensors  # noqa: E402
from train.evaluate import collect_logits, score  # noqa: E402

MAX_LOSS = 0.002
"""Largest accuracy loss (in any TTA mode) at which the int8 model would ship."""


def quantize(source: Path, out: Path, faces: np.ndarray, pre) -> Path:
    """`source/model.onnx` statically quantized to int8 into `out`, calibrated on normalized centre crops of `faces`."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Faces(CalibrationDataReader):
        def __init__(self):
            inputs = np.ascontiguousarray(center_crop(normalize(faces, pre), pre.input_size))
            self.batches = iter([{INPUT: inputs[i:i + 64]} for i in range(0, len(inputs), 64)])

        def get_next(self):
            return next(self.batches, None)

    out.mkdir(parents=True, exist_ok=True)
    prepared = out / "prepared.onnx"
    quant_pre_process(str(source / ONNX_NAME), str(prepared))
    quantize_static(str(prepared), str(out / ONNX_NAME), Faces(), quant_format=QuantFormat.QDQ,
                    per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
    prepared.unlink()
    shutil.copy(source / CONFIG_NAME, out / CONFIG_NAME)
    return out


def main() -> None:
    parser = validation_parser(__doc__, None)
    parser.add_argument("--calibration-faces", type=int, default=1024, help="training faces that set the int8 ranges")
    parser.add_argument("--out", default="runs/int8", help="folder for the int8 model")
    args = parser.parse_args()
    source = resolve(args.model)
    fp32 = EmotionRecognizer.from_pretrained(source)
    pre = fp32.config.preprocessing
    train_faces, _ = to_tensors(load_split(args.dataset, "train"), pre.image_size, args.calibration_faces)
    int8 = EmotionRecognizer.from_pretrained(quantize(source, Path(args.out), train_faces.numpy(), pre))
    faces, labels = to_tensors(load_split(args.dataset, "validation"), pre.image_size, args.limit)
    modes, uncertainty = {}, {}
    for mode in TTA_MODES:
        results = {}
        for name, recognizer in (("fp32", fp32), ("int8", int8)):
            logits = collect_logits(recognizer, faces, mode)
            temperature, bias = fit_calibration(logits, labels)
            metrics = score(logits, labels, recognizer.labels, temperature, bias)
            results[name] = {"accuracy": round(metrics["accuracy"], 4), "macro_f1": round(metrics["macro_f1"], 4),
                             "ece": round(metrics["calibration"]["ece"], 4), "temperature": temperature}
            if mode == "none":
                uncertainty[name] = fit_uncertainty(average_probabilities(logits, temperature, bias), labels)
        results["accuracy_loss_points"] = round(100 * (results["fp32"]["accuracy"] - results["int8"]["accuracy"]), 2)
        modes[mode] = results
        print(mode, json.dumps(results), flush=True)
    speed = {}
    for batch in (1, 64):
        inputs = np.random.default_rng(0).standard_normal((batch, 1, pre.input_size, pre.input_size)).astype(np.float32)
        nets = {name: OnnxClassifier(folder / ONNX_NAME) for name, folder in (("fp32", source), ("int8", Path(args.out)))}
        times = {name: [] for name in nets}
        for _ in range(4):
            for name, net in nets.items():
                times[name] += timed(lambda: net.logits(inputs), 100 if batch == 1 else 10)
        speed[f"batch{batch}_median_ms"] = {name: round(statistics.median(t), 3) for name, t in times.items()}
    worst = max(m["accuracy_loss_points"] for m in modes.values())
    report("int8", {"model": args.model or "embedded default", "calibration_faces": args.calibration_faces,
                    "validation_faces": len(labels), "by_tta": modes, "uncertainty": uncertainty, "speed": speed,
                    "onnx_bytes": {"fp32": (source / ONNX_NAME).stat().st_size,
                                   "int8": (Path(args.out) / ONNX_NAME).stat().st_size},
                    "worst_accuracy_loss_points": worst, "ships": worst <= 100 * MAX_LOSS})


if __name__ == "__main__":
    main()
