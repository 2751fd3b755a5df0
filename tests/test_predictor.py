"""EmotionRecognizer end to end on real photos and FER-2013 crops."""
import numpy as np
import pytest

from fer_model import EMOTIONS, EmotionRecognizer, FacePrediction, InvalidImageError

from .conftest import synthetic_faces


def _check_scores(scores):
    assert list(scores) == list(EMOTIONS)
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert all(0 <= v <= 1 for v in scores.values())


def test_predict_one_face_on_a_photo(recognizer, astronaut):
    faces = recognizer.predict(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert isinstance(face, FacePrediction)
    x, y, w, h = face.box
    assert 0 <= x and 0 <= y and x + w <= astronaut.width and y + h <= astronaut.height
    _check_scores(face.scores)
    assert face.label == max(face.scores, key=face.scores.get)
    assert face.to_dict()["confidence"] == face.scores[face.label]


def test_a_fer_style_crop_is_one_face(recognizer, fer_crop):
    faces = recognizer.predict(fer_crop)
    assert len(faces) == 1 and faces[0].box[2] > 30  # the face fills the crop
    _check_scores(faces[0].scores)


def test_a_small_square_image_is_classified_whole_only_when_it_looks_like_a_face(recognizer, fer_crop, monkeypatch):
    assert recognizer.predict(np.full((48, 48), 128, np.uint8)) == []  # a grey square is no face crop
    monkeypatch.setattr(recognizer.detector, "detect", lambda image: [])  # a crop the face fills: no box found
    faces = recognizer.predict(fer_crop)
    assert len(faces) == 1 and faces[0].box == (0, 0, 48, 48) and faces[0].detection_score is None
    _check_scores(faces[0].scores)


def test_no_face_is_an_empty_result(recognizer, blank_photo):
    assert recognizer.predict(blank_photo) == []


def test_faces_are_sorted_largest_first(recognizer, astronaut):
    canvas = np.full((600, 900, 3), 90, np.uint8)
    canvas[40:552, 20:532] = np.asarray(astronaut)
    canvas[260:580, 560:880] = np.asarray(astronaut.resize((320, 320)))
    faces = recognizer.predict(canvas)
    assert len(faces) == 2
    assert faces[0].box[2] > faces[1].box[2]
    assert faces[0].box[0] < 532 and faces[1].box[0] >= 560


def test_predict_faces_is_one_batch(recognizer, monkeypatch):
    crops = list(synthetic_faces(6))
    calls = []
    logits = recognizer.classifier.logits
    monkeypatch.setattr(recognizer.classifier, "logits", lambda x: calls.append(x.shape) or logits(x))
    side = recognizer.config.preprocessing.input_size
    for tta, views in (("none", 1), ("flip", 2), ("ten_crop", 10)):
        calls.clear()
        scores = recognizer.predict_faces(crops, tta)
        assert len(scores) == 6 and calls == [(6 * views, 1, side, side)]
        for s in scores:
            _check_scores(s)
    as_array = recognizer.predict_faces(np.stack(crops), "ten_crop")
    for a, b in zip(as_array, scores):
        assert a == pytest.approx(b, abs=1e-6)


def test_predict_faces_of_nothing(recognizer):
    assert recognizer.predict_faces([]) == []


def test_flip_tta_averages_the_mirrored_face(recognizer, fer_crop, monkeypatch):
    monkeypatch.setattr(recognizer.config, "temperatures", {})  # the same calibration for every mode: none
    monkeypatch.setattr(recognizer.config, "class_biases", {})
    plain = recognizer.predict_faces([fer_crop])[0]
    mirrored = recognizer.predict_faces([np.asarray(fer_crop)[:, ::-1]])[0]
    tta = recognizer.predict_faces([fer_crop], tta="flip")[0]
    for label in EMOTIONS:
        assert tta[label] == pytest.approx((plain[label] + mirrored[label]) / 2, abs=1e-5)


def test_annotate_draws_on_a_copy(recognizer, astronaut):
    faces = recognizer.predict(astronaut)
    annotated = recognizer.annotate(astronaut, faces)
    assert annotated.size == astronaut.size and annotated.mode == "RGB"
    before, after = np.asarray(astronaut), np.asarray(annotated)
    assert (before != after).any()
    x, y, w, h = faces[0].box
    assert (after[y + h // 2, x:x + 2] == (255, 200, 0)).all()  # the box edge


def test_bad_input_raises_documented_error(recognizer):
    with pytest.raises(InvalidImageError):
        recognizer.predict(b"GIF89a not really")


def test_the_torch_backend_runs_without_gradients_on_the_device_asked(fer_crop):
    recognizer = EmotionRecognizer.from_pretrained(backend="torch", device="cpu")
    assert recognizer.classifier.device.type == "cpu"
    assert len(recognizer.predict(fer_crop)) == 1
    assert all(p.grad is None for p in recognizer.model.parameters())


def test_labels_of_crowded_faces_do_not_overlap():
    """Faces side by side in two rows, their labels wider than the faces: every label is placed whole inside the
    image and clear of every other."""
    from fer_model.predictor import label_positions

    boxes = [(40 + 70 * i, 60 + 90 * row, 60, 70) for row in range(2) for i in range(6)]
    sizes = [(150, 22)] * len(boxes)
    corners = label_positions(boxes, sizes, (520, 300))
    rects = [(x, y, x + w, y + h) for (x, y), (w, h) in zip(corners, sizes)]
    assert all(0 <= x0 and 0 <= y0 and x1 <= 520 and y1 <= 300 for x0, y0, x1, y1 in rects)
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1]), (a, b)


def test_a_lone_face_keeps_its_label_above_the_box():
    from fer_model.predictor import label_positions

    assert label_positions([(100, 80, 60, 70)], [(90, 20)], (640, 480)) == [(100, 60)]
    assert label_positions([(100, 5, 60, 70)], [(90, 20)], (640, 480)) == [(100, 75)]  # no room above: below
