"""What the int8 graph's weights weigh on a first visit of the browser page, against what the model reads, at
fewer bits: each convolution's and linear layer's float weights (model.onnx) requantized symmetric per output
channel to `bits` bits (levels -(2^(bits-1) - 1) .. 2^(bits-1) - 1, still stored as int8, so every runtime runs
the same graph), the int32 biases requantized to match, the activations' quantization kept. For each: the
model file's bytes gzip (level 6, as the browser benchmark counts them) and brotli, and FER-2013 validation
accuracy read by the package (`face_logits`, each TTA mode, the shipped int8 calibration), beside the shipped
int8 model.

    python benchmarks/weight_bits.py [--bits 8 7 6 5 4] [--fer2013 ../shared/fer2013]
"""
from __future__ import annotations

import argparse
import gzip
import shutil
import sys
import tempfile
from pathlib import Path

import brotli
import numpy as np
import onnx
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import report  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.calibration.tta import average_probabilities, modes_for  # noqa: E402
from train.data import load_split  # noqa: E402

DEFAULT = ROOT / "fer_model" / "weights" / "default"


def requantized(bits: int) -> onnx.ModelProto:
    """The shipped int8 graph with its weights requantized from the float ones to `bits` bits."""
    model = onnx.load(DEFAULT / "model_int8.onnx")
    floats = {t.name: numpy_helper.to_array(t) for t in onnx.load(DEFAULT / "model.onnx").graph.initializer}
    tensors = {t.name: t for t in model.graph.initializer}
    inputs = {node.input[1].removesuffix("_DequantizeLinear_Output"): node.input[0]  # weight -> its input's tensor
              for node in model.graph.node if node.op_type in ("Conv", "Gemm")}
    scale_of = {n.output[0]: n.input[1] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    top = 2 ** (bits - 1) - 1
    for name, w in floats.items():
        if not name.endswith(".weight"):
            continue
        x_scale = numpy_helper.to_array(tensors[scale_of[inputs[name]]])
        channel_max = np.abs(w.reshape(len(w), -1)).max(1)
        scale = (np.maximum(channel_max, 1e-12) / top).astype(np.float32)
        q = np.clip(np.round(w / scale.reshape(-1, *[1] * (w.ndim - 1))), -top, top).astype(np.int8)
        bias_scale = (x_scale * scale).astype(np.float32)
        bias = np.round(floats[name.removesuffix("weight") + "bias"] / bias_scale).astype(np.int32)
        for suffix, value in (("weight_quantized", q), ("weight_scale", scale),
                              ("bias_quantized", bias), ("bias_quantized_scale", bias_scale)):
            tensors[f"{name.removesuffix('weight')}{suffix}"].CopyFrom(
                numpy_helper.from_array(value, f"{name.removesuffix('weight')}{suffix}"))
    return model


def accuracy(folder: Path, crops: np.ndarray, labels: np.ndarray) -> dict:
    recognizer = EmotionRecognizer.from_pretrained(str(folder), precision="int8")
    out = {}
    for mode in modes_for(recognizer.config.preprocessing.crop_size):
        logits = recognizer.face_logits(crops, mode)
        p = average_probabilities(logits, recognizer.calibration.temperature(mode), recognizer.calibration.class_bias(mode))
        out[mode] = round(float((np.asarray(p).argmax(1) == labels).mean()), 4)
    return out


def sizes(data: bytes) -> dict:
    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, 6)), "brotli_bytes": len(brotli.compress(data, quality=11))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bits", type=int, nargs="+", default=[8, 7, 6, 5, 4])
    p.add_argument("--fer2013", default="../shared/fer2013", help="FER-2013 in the datasets layout (its validation split)")
    args = p.parse_args()
    split = load_split(args.fer2013, "validation")
    crops = np.stack([np.asarray(image.convert("L")) for image in split["image"]])
    labels = np.asarray(split["label"])
    figures = {"shipped": {**sizes((DEFAULT / "model_int8.onnx").read_bytes()), "fer2013_validation": accuracy(DEFAULT, crops, labels)}}
    print("shipped", figures["shipped"], flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "model"
        shutil.copytree(DEFAULT, folder)
        for bits in args.bits:
            model = requantized(bits)
            data = model.SerializeToString()
            (folder / "model_int8.onnx").write_bytes(data)
            figures[f"{bits}_bits"] = {**sizes(data), "fer2013_validation": accuracy(folder, crops, labels)}
            print(f"{bits} bits", figures[f"{bits}_bits"], flush=True)
    report("weight_bits", {"fer2013": args.fer2013, "images": len(labels), **figures})


if __name__ == "__main__":
    main()
