"""Face detection: every face at every size, none on textures, FER-style crops, threads, names, both engines."""
import io
import platform
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.common import ASTRONAUT_FACE, astronaut_canvas, count_matches, paste_face
from fer_model import EmotionRecognizer
from fer_model.detection import DETECTORS, Framing, create_detector
from fer_model.detection.base import iou, nms
from fer_model.detection.yunet import ENGINES
from fer_model.preprocess import crop_face


@pytest.fixture(scope="module", params=ENGINES)
def detector(request):
    """YuNet on ONNX Runtime (the default) and on OpenCV's dnn (the path before it)."""
    return create_detector(engine=request.param)


def test_both_engines_find_the_same_faces_on_photos(astronaut):
    canvases = [np.asarray(astronaut)] + [astronaut_canvas((1280, 960), [40, 90, 160, 60], seed=s)[0] for s in range(3)]
    for canvas in canvases:
        ours, opencv = create_detector().detect(canvas), create_detector(engine="opencv").detect(canvas)
        assert len(ours) == len(opencv) > 0
        for a, b in zip(ours, opencv):
            assert np.abs(np.subtract(a.box, b.box)).max() <= 1 and abs(a.score - b.score) < 1e-3


def test_nms_keeps_what_opencv_keeps():
    import cv2

    rng = np.random.default_rng(0)
    for _ in range(20):
        xy = rng.uniform(0, 200, (40, 2))
        boxes = np.concatenate([xy, xy[:, :1] * 0 + rng.uniform(20, 60, (40, 1)).repeat(2, 1)], 1)
        scores = rng.uniform(0.7, 1, 40)
        expected = np.ravel(cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), 0.7, 0.5)).tolist()
        assert nms(boxes, scores, 0.5) == expected
        kept = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1)[nms(boxes, scores, 0.5)]
        assert all(iou(k, np.delete(kept, i, 0)).max(initial=0) <= 0.5 for i, k in enumerate(kept))


@pytest.mark.parametrize("size, widths", [((2048, 1536), [60, 80, 100, 150, 200, 300, 60, 70]),
                                          ((640, 480), [20, 25, 30, 40, 60, 90])])
def test_default_detector_finds_every_face_from_3_percent_of_the_long_side(size, widths):
    canvas, truth = astronaut_canvas(size, widths, seed=len(widths))
    assert count_matches(create_detector().detect(canvas), truth) == (len(truth), 0)


@pytest.mark.parametrize("size, widths", [((3600, 2700), [28, 32, 40, 52, 70] * 12 + [400]),
                                          ((4000, 3000), [24] * 40),
                                          ((6000, 6000), [36, 90, 260, 800] * 2),
                                          ((8000, 5000), [30, 36, 44] * 20)])
def test_every_face_of_24_px_and_up_is_found_in_a_photo_of_any_size(size, widths):
    """Rows of faces across tile edges and pyramid levels, from 24 px to 800 px, in photos up to 40 MP: each
    found once, nothing else (YuNet's own misses near 12 px make 24-30 px faces at a photo's very edge the
    limit: benchmarks/detection.py measures recall by size)."""
    canvas, truth = astronaut_canvas(size, widths, seed=len(widths))
    assert count_matches(create_detector().detect(canvas), truth) == (len(truth), 0)


def test_the_detector_reads_more_only_where_a_photo_is_larger(monkeypatch):
    """A photo of up to about 1,000 px is read once, as one 416 px copy; past that the network reads grow with
    the pixels (the finest level in tiles), not faster."""
    from fer_model.detection import yunet

    detector, calls = create_detector(), []
    forward = detector._forward
    monkeypatch.setattr(detector, "_forward", lambda blob: calls.append(blob.shape[2] * blob.shape[3]) or forward(blob))
    pixels_read = {}
    for size in ((640, 480), (1000, 750), (4000, 3000), (8000, 5000)):
        calls.clear()
        detector.detect(np.zeros((size[1], size[0], 3), np.uint8))
        pixels_read[size] = sum(calls)
        assert len(calls) == 1 if max(size) <= 1000 else len(calls) > 1
    assert yunet.pyramid_sides(640, 480, 416) == [416]
    ratios = [pixels_read[s] / (s[0] * s[1]) for s in ((4000, 3000), (8000, 5000))]
    assert ratios[1] <= ratios[0] * 1.2  # per pixel of the photo, no more for a larger one


@pytest.mark.parametrize("make", ["noise", "cat", "coffee", "rocket"])
def test_a_small_image_with_no_face_is_not_read_as_one(make):
    """A thumbnail is read whole only where the detector takes it for a face crop (`WHOLE_FACE_SCORE`)."""
    import cv2
    from skimage import data

    image = (np.random.default_rng(0).random((100, 100, 3)) * 255).astype(np.uint8) if make == "noise" else \
        cv2.resize(getattr(data, make)(), (120, 120))
    assert EmotionRecognizer.from_pretrained().predict(image) == []


def test_a_tight_face_crop_the_detector_finds_no_face_in_is_still_read_whole(fer_crop, monkeypatch):
    """As in many of FER-2013's crops, the face fills the frame and no box is found: `face_in_crop` still takes
    it for a face, and it is read whole."""
    recognizer = EmotionRecognizer.from_pretrained()
    monkeypatch.setattr(recognizer.detector, "detect", lambda image: [])
    assert recognizer.detector.face_in_crop(np.asarray(fer_crop.convert("RGB"))) > 0.5
    faces = recognizer.predict(fer_crop)
    assert len(faces) == 1 and faces[0].detection_score is None and faces[0].box == (0, 0, 48, 48)


def test_every_detector_finds_large_faces_exactly(detector):
    canvas, truth = astronaut_canvas((1280, 720), [100, 150, 200], seed=3)
    assert count_matches(detector.detect(canvas), truth) == (3, 0)


def test_a_face_filling_the_frame_is_found(detector, astronaut):
    x, y, w, h = ASTRONAUT_FACE
    close_up = np.ascontiguousarray(np.asarray(astronaut)[y - 10:y + h + 10, x - 20:x + w + 20])
    assert count_matches(detector.detect(close_up), [(20, 10, w, h)]) == (1, 0)


def test_faces_come_largest_first_with_scores(detector):
    canvas, _ = astronaut_canvas((1280, 720), [100, 200, 150], seed=4)
    faces = detector.detect(canvas)
    areas = [f.box[2] * f.box[3] for f in faces]
    assert areas == sorted(areas, reverse=True)
    assert all(0 < f.score <= 1 for f in faces)


@pytest.mark.parametrize("texture", ["coins", "moon", "chelsea", "coffee", "brick", "gravel"])
def test_no_false_faces_on_textures(detector, texture):
    from skimage import data

    image = np.asarray(getattr(data, texture)())
    rgb = np.ascontiguousarray(np.repeat(image[:, :, None], 3, 2) if image.ndim == 2 else image)
    assert detector.detect(rgb) == []


def test_jpeg_reencoding_gives_the_same_faces(detector):
    canvas, _ = astronaut_canvas((1024, 768), [60, 90, 160], seed=5)
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, "JPEG", quality=75)
    again = np.asarray(Image.open(buffer).convert("RGB"))
    before, after = detector.detect(canvas), detector.detect(again)
    assert len(before) == len(after) == 3
    for a, b in zip(before, after):
        assert np.abs(np.subtract(a.box, b.box)).max() <= max(3, a.box[2] * 0.1)


def test_fer_faces_pasted_into_a_photo_are_found_and_framed_like_fer(fer_dataset):
    """Upscaled FER-2013 faces pasted into a canvas are found, and the detector's framing maps its boxes
    back onto the pasted squares (median over faces: the statistic benchmarks/fit_framing.py fits)."""
    detector = create_detector()
    side, found = 160, []
    for i in range(60):
        face = np.asarray(fer_dataset["validation"][i]["image"])
        x, y = 100 + i, 80
        faces = detector.detect(paste_face(face, (480, 360), side, (x, y), seed=i))
        if faces:
            cx, cy, crop_side = detector.framing.square(faces[0].box)
            found.append((crop_side / side, (cx - x - side / 2) / side, (cy - y - side / 2) / side))
    assert len(found) >= 42  # measured on 1,000 faces: 82%
    scale, dx, dy = np.median(found, axis=0)
    assert abs(scale - 1) < 0.08 and abs(dx) < 0.04 and abs(dy) < 0.04


def test_a_face_cut_by_the_border_is_padded_not_shifted():
    gray = np.tile(np.arange(200, dtype=np.uint8), (200, 1))  # brightness = x
    crop = crop_face(gray, (-40, 50, 100, 100), Framing(scale=1.0), 100)
    assert crop.shape == (100, 100)
    assert (crop[:, :40] == 0).all()  # the 40 columns left of the image repeat its border
    assert crop[0, 40] == 0 and crop[0, 99] == 59  # the rest sits where it is in the image


def test_crop_is_square_and_centred_on_the_box_with_the_framing():
    gray = np.tile(np.arange(400, dtype=np.uint8) // 2, (400, 1))
    crop = crop_face(gray, (100, 100, 80, 80), Framing(scale=2.0), 160)
    assert crop.shape == (160, 160)
    assert crop[80, 0] == 60 // 2 * 1 and crop[80, 159] == (219 // 2)  # x from 60 to 219


def test_detector_chosen_by_name():
    for name in DETECTORS:
        assert create_detector(name).name == name
        assert EmotionRecognizer.from_pretrained(detector=name).detector.name == name
    with pytest.raises(ValueError, match="unknown face detector 'nope'.*yunet"):
        create_detector("nope")
    with pytest.raises(ValueError, match="unknown YuNet engine 'gpu'"):
        create_detector(engine="gpu")


def test_detector_options_are_parameters():
    strict = create_detector(score_threshold=0.999)
    canvas, _ = astronaut_canvas((640, 480), [120], seed=6)
    assert strict.detect(canvas) == [] and create_detector().detect(canvas)


PAGE_FAULTS_PER_CALL = """
import io, resource
from PIL import Image
from benchmarks.common import astronaut_canvas
from fer_model import EmotionRecognizer
canvas, _ = astronaut_canvas((2048, 1536), [60, 80, 100, 150, 200, 300, 60, 70], seed=8)
buffer = io.BytesIO()
Image.fromarray(canvas).save(buffer, "JPEG", quality=90)
recognizer, jpeg = EmotionRecognizer.from_pretrained(), buffer.getvalue()
recognizer.predict(jpeg)
recognizer.predict(jpeg)  # ONNX Runtime's arena grows once more on the second call
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    recognizer.predict(jpeg)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator")
def test_a_photo_reuses_the_memory_of_the_last():
    """A fresh process, as a user's: a 2048x1536 photo page-faults ~12,400 fresh pages when glibc unmaps
    its buffers after each photo (this script with MALLOC_MMAP_THRESHOLD_=131072), ~200 when ONNX Runtime
    re-plans its memory for each batch size; `fer_model.runtime` keeps them (1 measured)."""
    result = subprocess.run([sys.executable, "-c", PAGE_FAULTS_PER_CALL], capture_output=True, text=True, check=True,
                            timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert float(result.stdout) < 1000


def test_four_threads_give_the_sequential_predictions(recognizer):
    photos = [astronaut_canvas((960, 720), [60 + 20 * i, 140], seed=i)[0] for i in range(8)]
    sequential = [recognizer.predict(p) for p in photos]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(recognizer.predict, photos))
    assert parallel == sequential
    assert all(len(faces) == 2 for faces in sequential)


@pytest.mark.parametrize("shape", [(480, 640), (1536, 2048), (3001, 4003), (8, 5000), (5000, 9), (300, 200)])
def test_downscaling_keeps_the_longer_side_and_reports_its_factor(shape):
    import cv2

    from fer_model.detection.base import downscaled

    y, x = np.mgrid[:shape[0], :shape[1]]
    image = np.dstack([(127 + 100 * np.sin(x / 37.0) * np.cos(y / 23.0)).astype(np.uint8)] * 3)
    small, factor = downscaled(image, 416)
    assert max(small.shape[:2]) == min(416, max(shape))
    assert factor * max(shape) == pytest.approx(max(small.shape[:2]), rel=0.01)
    if min(small.shape[:2]) > 16:  # as smooth as OpenCV's own area averaging of the region `factor` maps
        height, width = (round(side / factor) for side in small.shape[:2])
        area = cv2.resize(image[:height, :width], small.shape[1::-1], interpolation=cv2.INTER_AREA)
        assert np.abs(small.astype(int) - area).mean() < 1  # nearest-neighbour sampling gives 1.8 to 11


@pytest.mark.parametrize("side", [12, 16, 20, 32])
def test_a_tiny_thumbnail_of_a_scene_needs_stronger_evidence_to_be_read_as_a_face(side):
    """Thumbnails of whole scenes under FER-2013's 48 pixels score up to about 0.46 as face crops: under 24 pixels
    none is read whole, and up to 48 a score of 0.5 is needed."""
    import cv2
    from skimage import data

    from fer_model.predictor import whole_face_score

    recognizer = EmotionRecognizer.from_pretrained()
    for scene in ("coffee", "chelsea", "hubble_deep_field", "camera"):
        image = getattr(data, scene)()
        image = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        height, width = image.shape[:2]
        square = min(height, width)
        square = image[(height - square) // 2:, (width - square) // 2:][:square, :square]
        assert recognizer.predict(cv2.resize(square, (side, side), interpolation=cv2.INTER_AREA)) == [], scene
    assert whole_face_score(16) == float("inf") and whole_face_score(30) > whole_face_score(48)


def test_a_face_running_over_the_edge_is_reported_inside_the_image(astronaut):
    """A face cut by the photo's left and top edges: its box lies inside the photo (the crop is framed as before)."""
    from fer_model.detection.base import clip_box

    photo = np.asarray(astronaut)[80:, 205:]  # the detector sees the face run over the left and top edges
    faces = EmotionRecognizer.from_pretrained().predict(photo)
    assert faces
    for face in faces:
        x, y, w, h = face.box
        assert x >= 0 and y >= 0 and x + w <= photo.shape[1] and y + h <= photo.shape[0] and w > 0 and h > 0
    assert clip_box((-1, 240, 72, 114), 300, 300) == (0, 240, 71, 60)


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_a_photo_on_its_side_or_upside_down_finds_its_faces_upright(turns):
    """The astronaut turned by quarter turns with no EXIF tag: its face is found, read as upright (the same crop,
    the same scores), its box in the photo as it is, and `turned` says which turn stood it upright."""
    from skimage import data

    recognizer = EmotionRecognizer.from_pretrained()
    upright = recognizer.predict(data.astronaut())[0]
    faces = recognizer.predict(np.ascontiguousarray(np.rot90(data.astronaut(), turns)))
    assert len(faces) == 1 and faces[0].turned == 90 * ((4 - turns) % 4)
    assert faces[0].scores == pytest.approx(upright.scores, abs=1e-6) and faces[0].to_dict()["turned"] == faces[0].turned
    x, y, w, h = upright.box
    expected = {1: (y, 512 - (x + w), h, w), 2: (512 - (x + w), 512 - (y + h), w, h), 3: (512 - (y + h), x, h, w)}
    assert faces[0].box == expected[turns]
    assert "turned" not in upright.to_dict()


def test_an_upright_face_costs_one_detection_and_a_photo_with_none_four(monkeypatch):
    from skimage import data

    recognizer = EmotionRecognizer.from_pretrained()
    calls = []
    detect = recognizer.detector.detect
    monkeypatch.setattr(recognizer.detector, "detect", lambda image: calls.append(image.shape) or detect(image))
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[40:440, 120:520] = np.asarray(Image.fromarray(data.astronaut()).resize((400, 400)))
    assert recognizer.predict(canvas)[0].turned == 0 and len(calls) == 1
    calls.clear()
    assert recognizer.predict(np.full((480, 640, 3), 128, np.uint8)) == [] and len(calls) == 4
