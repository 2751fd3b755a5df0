"""YuNet on each engine side by side (ONNX Runtime, the default, and OpenCV's dnn, the path before): faces
found, false faces and speed.

- Real photos: `../shared/photos` (two group photos, six faces each), when present.
- Synthetic canvases with exact truth: the astronaut's head at many sizes (60 px = 3% of a 2048 px
  photo, 20 px in a 640 px one), a face filling the frame, a face cut by the border.
- Textures with no face: scikit-image's coins, moon, chelsea (a cat), coffee, brick, gravel, rocket, grass.
- Speed: the downscale before detection, detection alone, and `EmotionRecognizer.predict` end to end (JPEG bytes in: decode, detect,
  crop, classify) on a 640x480 photo with one face and a 2048x1536 photo with eight.
- Thumbnails (120x120) of scikit-image's pictures and of noise: `face_in_crop`'s score, and whether `predict`
  reads one whole as a face crop (`WHOLE_FACE_SCORE`).
- Large photos, 1 to 40 megapixels (the default detector): recall and detection time by size, on canvases of
  24-320 px faces and on the group photo pasted at its own size (faces 80-90 px) onto a canvas of each size.

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


THUMBNAILS = ("astronaut", "camera", "clock", "chelsea", "coffee", "rocket", "coins", "moon", "text", "brick", "gravel",
              "grass")


def thumbnails() -> dict:
    """Per 120x120 thumbnail (scikit-image's pictures, and uniform noise): `face_in_crop`'s score and whether it
    passes `WHOLE_FACE_SCORE`."""
    import cv2
    from skimage import data

    from fer_model.predictor import WHOLE_FACE_SCORE

    detector = create_detector()
    images = {name: np.asarray(getattr(data, name)()) for name in THUMBNAILS}
    images["noise"] = (np.random.default_rng(0).random((100, 100, 3)) * 255).astype(np.uint8)
    results = {}
    for name, image in images.items():
        rgb = np.repeat(image[:, :, None], 3, 2) if image.ndim == 2 else image[:, :, :3]
        score = detector.face_in_crop(cv2.resize(np.ascontiguousarray(rgb), (120, 120), interpolation=cv2.INTER_AREA))
        results[name] = {"face_in_crop": round(score, 3), "read_whole": score >= WHOLE_FACE_SCORE}
    return results


LARGE = [(1280, 960), (2048, 1536), (3000, 2000), (4000, 3000), (6000, 4000), (7300, 5475)]
"""Photo sizes, 1.2 to 40 megapixels (the largest an image may be)."""


def large_photos(group: np.ndarray | None, repeats: int) -> dict:
    """Per size of `LARGE`: faces found of those there (and false ones) and detection time, for a canvas of faces of
    24 to 320 px and, given the group photo, for it pasted in the middle of an empty canvas of that size."""
    detector = create_detector()
    widths = [24, 32, 48, 64, 96, 160, 320]
    results = {}
    for width, height in LARGE:
        faces = [w for w in widths * 12 if w <= width // 8][:40]
        while True:  # as many of them as the canvas holds
            try:
                canvas, truth = astronaut_canvas((width, height), faces, seed=width)
                break
            except ValueError:
                faces = faces[:-1]
        found, false = count_matches(detector.detect(canvas), truth)
        row = {"megapixels": round(width * height / 1e6, 1), "faces_24_to_320_px": f"{found}/{len(truth)}",
               "false_faces": false,
               "detect_ms": summary(timed(lambda: detector.detect(canvas), max(2, repeats // 10), 1))["median_ms"]}
        if group is not None and group.shape[0] <= height and group.shape[1] <= width:
            pasted = np.full((height, width, 3), 128, np.uint8)
            top, left = (height - group.shape[0]) // 2, (width - group.shape[1]) // 2
            pasted[top:top + group.shape[0], left:left + group.shape[1]] = group
            row["group_photo_pasted"] = f"{len(detector.detect(pasted))}/6"
        results[f"{width}x{height}"] = row
    return results


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
    results["thumbnails"] = thumbnails()
    results["large_photos"] = large_photos(photos.get("group_steps_6faces.jpg"), args.repeats)
    report("detection", results)
    print("| detector (engine) | real photos | synthetic | false faces | detect 640x480 ms | photo 640x480 ms | photo 2048x1536 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print("\n| size | megapixels | faces of 24-320 px found | false faces | group photo pasted | detect ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size, r in results["large_photos"].items():
        print(f"| {size} | {r['megapixels']} | {r['faces_24_to_320_px']} | {r['false_faces']} "
              f"| {r.get('group_photo_pasted', '-')} | {r['detect_ms']:.0f} |")
    whole = [name for name, r in results["thumbnails"].items() if r["read_whole"]]
    print(f"\nthumbnails read whole as a face crop: {', '.join(whole) or 'none'}; not: "
          f"{', '.join(name for name in results['thumbnails'] if name not in whole)}")


if __name__ == "__main__":
    main()
