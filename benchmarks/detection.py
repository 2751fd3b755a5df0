"""YuNet on each engine side by side (ONNX Runtime, the default, and OpenCV's dnn, the path before): faces
found, false faces and speed.

- Real photos: `../shared/photos` (two group photos, six faces each), when present.
- Synthetic canvases with exact truth: the astronaut's head at many sizes (60 px = 3% of a 2048 px
  photo, 20 px in a 640 px one), a face filling the frame, a face cut by the border.
- Textures with no face: scikit-image's coins, moon, chelsea (a cat), coffee, brick, gravel, rocket, grass.
- Speed: the downscale before detection, detection alone, and `EmotionRecognizer.predict` end to end (JPEG bytes in: decode, detect,
  crop, classify) on a 640x480 photo with one face and a 2048x1536 photo with eight.

    python benchmarks/detection.py [--photos ../shared/photos] [--repeats 30]
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import (ASTRONAUT_FACE, astronaut_canvas, count_matches, photo_640x480, report,  # noqa: E402
                               summary, timed)
from fer_model import EmotionRecognizer  # noqa: E402
from fer_model.detection import create_detector  # noqa: E402
from fer_model.detection.yunet import ENGINES  # noqa: E402
from fer_model.detection.base import downscaled  # noqa: E402

TEXTURES = ("coins", "moon", "chelsea", "coffee", "brick", "gravel", "rocket", "grass")
PHOTO_FACES = {"group_steps_6faces.jpg": 6, "group_table_6faces.jpg": 6}


def synthetic_scenes() -> dict[str, tuple[np.ndarray, list]]:
    """Name -> (RGB image, true boxes)."""
    from skimage import data

    scenes = {"2048x1536, 8 faces 60-300 px": astronaut_canvas((2048, 1536), [60, 80, 100, 150, 200, 300, 60, 70]),
              "640x480, 6 faces 20-90 px": astronaut_canvas((640, 480), [20, 25, 30, 40, 60, 90], seed=1)}
    x, y, w, h = ASTRONAUT_FACE
    close_up = data.astronaut()[y - 10:y + h + 10, x - 20:x + w + 20]
    scenes["face filling the frame"] = (np.ascontiguousarray(close_up), [(20, 10, w, h)])
    portrait = data.astronaut()
    cut = np.ascontiguousarray(portrait[:, x + w // 3:])  # the left third of the face is outside
    scenes["face cut by the left border"] = (cut, [(0, y, w - w // 3, h)])
    return scenes


def textures() -> dict[str, np.ndarray]:
    from skimage import data

    images = {}
    for name in TEXTURES:
        image = np.asarray(getattr(data, name)())
        images[name] = np.ascontiguousarray(np.repeat(image[:, :, None], 3, 2) if image.ndim == 2 else image[:, :, :3])
    return images


def jpeg(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def downscale_speed(images: dict[str, np.ndarray], repeats: int) -> dict:
    """The detectors' downscale (`downscaled`) against OpenCV's INTER_AREA alone, to a 416 px longer side."""
    import cv2

    speeds = {}
    for name, image in images.items():
        small, _ = downscaled(image, 416)
        size = small.shape[1::-1]
        speeds[name] = {"downscaled_ms": summary(timed(lambda: downscaled(image, 416), repeats))["median_ms"],
                        "inter_area_ms": summary(timed(lambda: cv2.resize(image, size, interpolation=cv2.INTER_AREA),
                                                       repeats))["median_ms"]}
    return speeds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", default="../shared/photos", help="folder with the real group photos")
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args()
    photos = {name: np.asarray(Image.open(Path(args.photos) / name).convert("RGB"))
              for name in PHOTO_FACES if (Path(args.photos) / name).is_file()}
    scenes, texture_images = synthetic_scenes(), textures()
    small_photo = photo_640x480()
    group_photo = jpeg(scenes["2048x1536, 8 faces 60-300 px"][0])
    results, rows = {}, []
    for engine in ENGINES:
        name = f"yunet ({engine})"
        detector = create_detector(engine=engine)
        recognizer = EmotionRecognizer.from_pretrained(detector=detector)
        real = {photo: len(detector.detect(image)) for photo, image in photos.items()}
        synthetic = {scene: count_matches(detector.detect(image), truth) for scene, (image, truth) in scenes.items()}
        false_on_textures = {texture: len(detector.detect(image)) for texture, image in texture_images.items()}
        speed = {"detect_640x480": summary(timed(lambda: detector.detect(np.asarray(Image.open(io.BytesIO(small_photo)))),
                                                 args.repeats, warmup=3)),
                 "predict_640x480_one_face": summary(timed(lambda: recognizer.predict(small_photo), args.repeats, 3)),
                 "predict_2048x1536_eight_faces": summary(timed(lambda: recognizer.predict(group_photo),
                                                                max(5, args.repeats // 3), 2))}
        results[name] = {"real_photos_faces_found": real, "synthetic_found_false": synthetic,
                         "false_faces_on_textures": false_on_textures, "speed": speed}
        true_total = sum(len(t) for _, t in scenes.values())
        rows.append(f"| {name} | {sum(real.values())}/{sum(PHOTO_FACES[k] for k in real)} "
                    f"| {sum(f for f, _ in synthetic.values())}/{true_total} "
                    f"| {sum(x for _, x in synthetic.values()) + sum(false_on_textures.values())} "
                    f"| {speed['detect_640x480']['median_ms']:.1f} | {speed['predict_640x480_one_face']['median_ms']:.1f} "
                    f"| {speed['predict_2048x1536_eight_faces']['median_ms']:.1f} |")
    results["downscale_to_416"] = downscale_speed(
        {"640x480": np.asarray(Image.open(io.BytesIO(small_photo))), "2048x1536": scenes["2048x1536, 8 faces 60-300 px"][0]},
        args.repeats)
    report("detection", results)
    print("| detector (engine) | real photos | synthetic | false faces | detect 640x480 ms | photo 640x480 ms | photo 2048x1536 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
