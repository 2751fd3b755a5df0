"""The README's picture: faces at several sizes on one canvas, annotated by the embedded model.

    python tools/readme_figures.py          # writes docs/annotated.jpg
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import astronaut_canvas  # noqa: E402
from fer_model import EmotionRecognizer  # noqa: E402


def main() -> None:
    canvas, _ = astronaut_canvas((1280, 640), [70, 110, 160, 200, 90], seed=21)
    recognizer = EmotionRecognizer.from_pretrained()
    recognizer.annotate(canvas).save(ROOT / "docs" / "annotated.jpg", quality=85)


if __name__ == "__main__":
    main()
