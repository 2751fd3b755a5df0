"""What every benchmark reports beside its figures: the machine, the software and the exact command."""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import shlex
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

import fer_model  # noqa: F401  (before torch, as in the app and the CLI: fer_model.runtime)
from fer_model.runtime import cpu_name  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def served_sizes(data: bytes) -> dict:
    """A file's bytes, and as a CDN would send it: gzip (level 6) and brotli (quality 11)."""
    import gzip

    import brotli

    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, 6)),
            "brotli_bytes": len(brotli.compress(data, quality=11))}


def machine() -> dict:
    """The CPU (and its bf16 support, and whether its cores run two threads each), GPU, threads and versions;
    torch's only where it is installed."""
    import onnxruntime
    import psutil

    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    info = {"cpu": cpu_name(), "avx512_bf16": "avx512_bf16" in flags, "cores": os.cpu_count(),
            "physical_cores": psutil.cpu_count(logical=False),
            "opencv_threads": cv2.getNumThreads(), "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__, "opencv": cv2.__version__,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    try:
        import torch
    except ImportError:
        return info
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {**info, "gpu": gpu, "torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def report(name: str, figures: dict) -> dict:
    """Print the figures with the machine and command, and save them as benchmarks/results/<name>.json."""
    result = {"command": "python " + shlex.join(sys.argv), "machine": machine(), **figures}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


def photo_640x480(image_format: str = "JPEG") -> bytes:
    """scikit-image's public-domain astronaut portrait (one face) on a 640x480 canvas, encoded."""
    from skimage import data

    canvas = Image.new("RGB", (640, 480), (120, 120, 120))
    canvas.paste(Image.fromarray(data.astronaut()).resize((420, 420)), (110, 30))
    buffer = io.BytesIO()
    canvas.save(buffer, image_format, quality=90)
    return buffer.getvalue()


def paste_face(face: np.ndarray, canvas_size: tuple[int, int], side: int, top_left: tuple[int, int],
               seed: int = 0) -> np.ndarray:
    """A grayscale face (H, W) upscaled to `side` px and pasted at `top_left` (x, y) into an RGB canvas
    (width, height) of smooth noise around the face's own mean brightness."""
    import cv2

    width, height = canvas_size
    rng = np.random.default_rng(seed)
    noise = cv2.resize(rng.normal(0, 25, (height // 16 + 1, width // 16 + 1)), (width, height))
    canvas = np.clip(face.mean() + noise, 0, 255).astype(np.uint8)
    x, y = top_left
    canvas[y:y + side, x:x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    return np.repeat(canvas[:, :, None], 3, axis=2)


ASTRONAUT_FACE = (180, 64, 87, 111)
"""The face in `skimage.data.astronaut()` (x, y, w, h), as YuNet boxes it; truth for synthetic canvases."""


def astronaut_canvas(canvas_size: tuple[int, int], face_widths: list[int], seed: int = 0):
    """An RGB canvas (width, height) of smooth noise with the astronaut's head pasted once per face width, in a
    row-major grid; returns the canvas and the true face boxes (x, y, w, h)."""
    import cv2
    from skimage import data

    width, height = canvas_size
    rng = np.random.default_rng(seed)
    noise = cv2.resize(rng.normal(0, 30, (height // 32 + 1, width // 32 + 1, 3)), (width, height))
    canvas = np.clip(128 + noise, 0, 255).astype(np.uint8)
    x, y, w, h = ASTRONAUT_FACE
    head = data.astronaut()[max(0, y - h // 2):y + h + h // 2, max(0, x - w // 2):x + w + w // 2]
    hx, hy = x - max(0, x - w // 2), y - max(0, y - h // 2)
    cursor_x, cursor_y, row_height, boxes = 0, 0, 0, []
    for face_width in face_widths:
        scale = face_width / w
        patch = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        if cursor_x + patch.shape[1] > width:
            cursor_x, cursor_y, row_height = 0, cursor_y + row_height, 0
        if cursor_y + patch.shape[0] > height or patch.shape[1] > width:
            raise ValueError(f"faces {face_widths} do not fit a {width}x{height} canvas")
        canvas[cursor_y:cursor_y + patch.shape[0], cursor_x:cursor_x + patch.shape[1]] = patch
        boxes.append((round(cursor_x + hx * scale), round(cursor_y + hy * scale), round(w * scale), round(h * scale)))
        cursor_x, row_height = cursor_x + patch.shape[1], max(row_height, patch.shape[0])
    return canvas, boxes


def count_matches(found: list, truth: list) -> tuple[int, int]:
    """(true faces found, false faces): a detection matches a true face when its centre lies in the true box."""
    matched, false = set(), 0
    for face in found:
        x, y, w, h = face.box
        hit = next((i for i, (tx, ty, tw, th) in enumerate(truth) if i not in matched
                    and tx <= x + w / 2 <= tx + tw and ty <= y + h / 2 <= ty + th), None)
        if hit is None:
            false += 1
        else:
            matched.add(hit)
    return len(matched), false


def timed(fn, repeats: int, warmup: int = 10) -> list[float]:
    """Milliseconds of each of `repeats` calls of `fn`, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def timed_for(fn, seconds: float, warmup: int = 10) -> tuple[list[float], list[float]]:
    """Start times (s from the first call) and milliseconds of every call of `fn` made in `seconds`, after
    `warmup` calls: long enough to span the phases in which a shared machine runs faster or slower."""
    for _ in range(warmup):
        fn()
    starts, times, begin = [], [], time.perf_counter()
    while (start := time.perf_counter()) - begin < seconds:
        fn()
        starts.append(start - begin)
        times.append((time.perf_counter() - start) * 1000)
    return starts, times


def summary(times: list[float]) -> dict:
    """Median, 95th percentile and minimum of timings in ms."""
    ordered = sorted(times)
    return {"median_ms": round(statistics.median(ordered), 3), "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
            "min_ms": round(ordered[0], 3), "runs": len(ordered)}


def write_clip(path, face, frames: int = 20, fps: float = 10.0):
    """A 640x480 video of the RGB image `face` (resized to 320 px) moving 10 px a frame left to right,
    written with OpenCV's mp4v codec."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    small = np.asarray(Image.fromarray(np.asarray(face)).convert("RGB").resize((320, 320)))
    for i in range(frames):
        x = 10 * i % 310
        canvas = np.full((480, 640, 3), 90, np.uint8)
        canvas[80:400, x:x + 320] = small
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def validation_parser(doc: str, limit: int) -> argparse.ArgumentParser:
    """The options of the benchmarks that score FER-2013 validation faces: --dataset, --model, --limit."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--dataset", default="../shared/fer2013", help="FER-2013 in any layout train.data reads")
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: the embedded default)")
    parser.add_argument("--limit", type=int, default=limit, help="validation faces to use")
    return parser


CHROMIUM_FLAGS = ["--disable-background-networking", "--disable-component-update"]
"""Headless Chromium here: without these it keeps trying the network it cannot reach."""


def write_y4m(path, frames: list[np.ndarray], fps: int = 30):
    """A Y4M clip (4:2:0, as Chromium's fake camera reads it) of RGB frames, which it loops."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            yuv = np.asarray(Image.fromarray(rgb).convert("YCbCr"))
            out.write(b"FRAME\n" + yuv[:, :, 0].tobytes())
            for k in (1, 2):
                out.write(yuv[::2, ::2, k].tobytes())
    return path


def data_url(image: np.ndarray) -> str:
    """An RGB array as a PNG data: URL, for a page to fetch."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
