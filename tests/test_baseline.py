"""Reading a person against their resting face: the rule, its gate, the recognizer and the command line."""
import numpy as np
import pytest
from PIL import Image, ImageEnhance

from fer_model import EMOTIONS, InvalidImageError
from fer_model.baseline import gate, relative_to, similarity
from fer_model.cli import main


def test_a_face_that_looks_sad_at_rest_reads_sad_only_where_it_looks_sadder():
    sad, neutral = EMOTIONS.index("sad"), EMOTIONS.index("neutral")
    rest = np.log(np.array([0.05, 0.02, 0.05, 0.05, 0.55, 0.03, 0.25]))
    at_rest = relative_to(np.exp(rest)[None], rest, np.array([0.5]))[0]
    assert at_rest[sad] < 0.4 and at_rest.sum() == pytest.approx(1)  # its own resting face: much less sure
    calmer = np.array([[0.04, 0.02, 0.04, 0.03, 0.45, 0.02, 0.40]])  # plainly sad, but less so than at rest
    assert calmer[0].argmax() == sad and relative_to(calmer, rest, np.array([0.5]))[0].argmax() == neutral
    sadder = np.array([[0.03, 0.02, 0.03, 0.02, 0.80, 0.02, 0.08]])
    assert relative_to(sadder, rest, np.array([0.5]))[0].argmax() == sad
    assert np.allclose(relative_to(sadder, rest, np.array([0.0])), sadder)  # a closed gate changes nothing


def test_the_gate_opens_with_how_alike_two_crops_look():
    rng = np.random.default_rng(0)
    face = rng.normal(0, 1, (1, 48, 48))
    assert similarity(face, np.concatenate([face * 2 + 3, -face])) == pytest.approx([1.0])  # light and contrast
    assert abs(similarity(face, rng.normal(0, 1, (1, 48, 48)))[0]) < 0.1
    assert gate(np.array([0.5, 0.86, 0.99]), (0.8, 0.92)).tolist() == pytest.approx([0.0, 0.5, 1.0])


def test_personalize_reads_the_same_photo_against_itself_and_leaves_the_recognizer_as_it_was(recognizer, astronaut):
    plain = recognizer.predict(astronaut)
    personal = recognizer.personalize(astronaut)
    assert personal is not recognizer and recognizer.baseline is None
    assert recognizer.predict(astronaut)[0].scores == plain[0].scores
    mine = personal.predict(astronaut)[0]
    assert mine.box == plain[0].box and mine.scores[plain[0].label] < plain[0].confidence
    assert sum(mine.scores.values()) == pytest.approx(1)


def test_a_photo_taken_in_other_light_and_framing_reads_as_it_would_plainly(recognizer, astronaut):
    """The gate stays shut for a face that looks unlike the resting one (here: darker, flipped, moved)."""
    other = ImageEnhance.Brightness(astronaut.transpose(Image.FLIP_LEFT_RIGHT)).enhance(0.5).rotate(12)
    personal = recognizer.personalize(other)
    assert personal.baseline.weights(personal.baseline.inputs).tolist() == [0.5]
    for face, plain in zip(personal.predict(astronaut), recognizer.predict(astronaut)):
        assert face.scores == pytest.approx(plain.scores)


def test_a_resting_photo_with_no_face_is_one_line_and_a_personal_model_is_never_saved(recognizer, astronaut,
                                                                                       blank_photo, tmp_path):
    with pytest.raises(InvalidImageError, match="no face found in resting-face photo 2 of 2"):
        recognizer.personalize([astronaut, blank_photo])
    with pytest.raises(ValueError, match="never saved"):
        recognizer.personalize(astronaut).save_pretrained(tmp_path / "x")


def test_the_command_line_reads_photos_against_a_resting_face(tmp_path, astronaut, capsys):
    astronaut.save(tmp_path / "a.jpg")
    assert main(["predict", str(tmp_path / "a.jpg"), "--json"]) == 0
    plain = capsys.readouterr().out
    assert main(["predict", str(tmp_path / "a.jpg"), "--json", "--baseline", str(tmp_path / "a.jpg")]) == 0
    assert capsys.readouterr().out != plain
    assert main(["predict", str(tmp_path / "a.jpg"), "--baseline", str(tmp_path / "missing.jpg")]) == 2
    error = capsys.readouterr().err
    assert "missing.jpg" in error and error.count("\n") == 1
