"""benchmarks/in_the_wild.py on collections the test makes: a FOLDER/<label>/<image> tree, a Parquet file with a
subject column (read by person), and the figures it reports."""
import numpy as np
import pytest
from PIL import Image

from benchmarks.in_the_wild import collection, neutral_misreads, read
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
