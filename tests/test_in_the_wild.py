"""benchmarks/in_the_wild.py on collections the test makes: a FOLDER/<label>/<image> tree, a Parquet file with a
subject column (read by person), and the figures it reports."""
import numpy as np
import pytest
from PIL import Image

from benchmarks.in_the_wild import collection, intervals_by_group, main, neutral_misreads, read
from fer_model import EMOTIONS, EmotionRecognizer

pytest.importorskip("datasets")


def _photos(astronaut, count):
    rng = np.random.default_rng(0)
    for i in range(count):
        canvas = Image.new("RGB", (320, 240), tuple(int(v) for v in rng.integers(40, 200, 3)))
        side = int(rng.integers(120, 200))
        canvas.paste(astronaut.resize((side, side)), (int(rng.integers(0, 320 - side)), int(rng.integers(0, 240 - side))))
        yield canvas


def test_a_folder_of_labelled_photos_is_read_through_the_whole_pipeline(tmp_path, astronaut):
    for label in ("happy", "neutral"):
        (tmp_path / "faces" / label).mkdir(parents=True)
    photos = list(_photos(astronaut, 6))
    for i, photo in enumerate(photos):
        photo.save(tmp_path / "faces" / ("happy", "neutral")[i % 2] / f"{i}.jpg")
    Image.new("RGB", (300, 200), (90, 90, 90)).save(tmp_path / "faces" / "happy" / "blank.jpg")
    recognizer = EmotionRecognizer.from_pretrained()
    split = collection(str(tmp_path / "faces"), "all")
    figures = read(recognizer, split, "faces", plot=tmp_path / "confusion.png")
    assert figures["images"] == 7 and figures["no_face"] == 1 and (tmp_path / "confusion.png").is_file()
    flip = figures["flip"]
    expected = [recognizer.predict(p, tta="flip")[0].label for p in photos]
    truth = [("happy", "neutral")[i % 2] for i in range(6)]
    assert flip["accuracy"] == pytest.approx(np.mean([e == t for e, t in zip(expected, truth)]), abs=1e-4)
    assert set(flip["recall"]) == {"happy", "neutral"} and 0 <= flip["ece"] <= 1
    assert flip["uncertain"] * 6 == pytest.approx(sum(f.uncertain for p in photos for f in recognizer.predict(p, tta="flip")[:1]))


def test_a_parquet_file_with_subjects_is_read_by_person(tmp_path, astronaut):
    """A `datasets` Parquet file (as `Dataset.to_parquet` writes one) whose `subject` column names the persons."""
    from datasets import ClassLabel, Dataset, Features, Value
    from datasets import Image as ImageFeature

    features = Features({"image": ImageFeature(), "label": ClassLabel(names=list(EMOTIONS)), "subject": Value("string")})
    Dataset.from_dict({"image": list(_photos(astronaut, 40)), "label": [i % 7 for i in range(40)],
                       "subject": [f"person_{i // 4}" for i in range(40)]},  # ten persons, four photos each
                      features=features).to_parquet(tmp_path / "faces.parquet")
    held = collection(str(tmp_path / "faces.parquet"), "held-out")
    test, calibration = (collection(str(tmp_path / "faces.parquet"), part) for part in ("test", "calibration"))
    assert len(held) == len(test) + len(calibration) and 0 < len(test) and 0 < len(held) < 40
    assert not set(test["subject"]) & set(calibration["subject"])
    assert len(collection(str(tmp_path / "faces.parquet"), "all")) == 40


def test_neutral_misreads_are_shares_of_the_neutral_row():
    matrix = np.zeros((7, 7), int)
    matrix[6, 6], matrix[6, 0], matrix[6, 4] = 5, 3, 2
    assert neutral_misreads(matrix.tolist(), list(EMOTIONS)) == {"neutral": 0.5, "angry": 0.3, "sad": 0.2}


def test_intervals_resample_whole_persons():
    """Persons whose faces are all right or all wrong: resampling persons spreads accuracy wider than resampling
    faces would; both intervals hold the measured figure; one person gives no spread."""
    rng = np.random.default_rng(1)
    persons = np.repeat(np.arange(40), 10)
    labels = rng.integers(0, 3, 400)
    predicted = np.where(np.repeat(rng.random(40) < 0.7, 10), labels, (labels + 1) % 3)
    accuracy = (predicted == labels).mean()
    by_person = intervals_by_group(labels, predicted, persons, 7)
    by_face = intervals_by_group(labels, predicted, np.arange(400), 7)
    for spread in (by_person, by_face):
        assert spread["accuracy_95"][0] < accuracy < spread["accuracy_95"][1]
        assert spread["balanced_accuracy_95"][0] < spread["balanced_accuracy_95"][1]
    width = {name: s["accuracy_95"][1] - s["accuracy_95"][0] for name, s in (("person", by_person), ("face", by_face))}
    assert width["person"] > 2 * width["face"]
    one = intervals_by_group(labels[:10], predicted[:10], persons[:10], 7)
    assert one["accuracy_95"] == [round(float((labels[:10] == predicted[:10]).mean()), 4)] * 2


def test_a_collection_without_faces_is_refused_in_one_line(tmp_path):
    for label in ("happy", "sad"):
        (tmp_path / "faces" / label).mkdir(parents=True)
        Image.new("RGB", (300, 200), (90, 90, 90)).save(tmp_path / "faces" / label / "blank.jpg")
    with pytest.raises(SystemExit, match="no face found in any of the 2 images"):
        main(["--dataset", str(tmp_path / "faces"), "--persons", "all", "--fer2013", ""])
