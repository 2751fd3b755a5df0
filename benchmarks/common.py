"""What every benchmark reports beside its figures: the machine, the software and the exact command."""
from __future__ import annotations

import io
import json
import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "python": platform.python_version(), "torch": torch.__version__,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def report(name: str, figures: dict) -> dict:
    """Print the figures with the machine and command, and save them as benchmarks/results/<name>.json."""
    result = {"command": "python " + shlex.join(sys.argv), "machine": machine(), **figures}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


def photo_640x480(image_format: str = "JPEG") -> bytes:
    """scikit-image's public-domain astronaut portrait (one face) on a 640x480 canvas, encoded."""
    from PIL import Image
    from skimage import data

    canvas = Image.new("RGB", (640, 480), (120, 120, 120))
    canvas.paste(Image.fromarray(data.astronaut()).resize((420, 420)), (110, 30))
    buffer = io.BytesIO()
    canvas.save(buffer, image_format, quality=90)
    return buffer.getvalue()
