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


def test_a_track_is_read_against_its_calmest_frames_once_they_read_neutral():
    from fer_model.baseline import TrackBaselines

    rests = TrackBaselines()
    neutral, happy = EMOTIONS.index("neutral"), EMOTIONS.index("happy")
    face = np.random.default_rng(0).normal(0, 1, (1, 44, 44)).astype(np.float32)
    smiling = np.full(7, 0.02)
    smiling[happy] = 0.88
    read, rested = rests.apply(1, smiling, face)
    assert not rested and np.array_equal(read, smiling)  # no calm frame yet: read alone
    calm = np.full(7, 0.05)
    calm[neutral], calm[happy] = 0.55, 0.15
    rests.apply(1, calm, face)
    read, rested = rests.apply(1, smiling, face)
    assert rested and read[happy] < smiling[happy] and read.argmax() == happy
    held = TrackBaselines()  # an expression held the whole clip is never taken for rest
    assert not any(held.apply(2, smiling, face)[1] for _ in range(20))


def test_a_video_is_read_against_each_track_or_a_photo_and_the_summary_says_which(recognizer, tmp_path, astronaut,
                                                                                 capsys):
    from benchmarks.common import write_clip
    from fer_model.video import predict_video, summarize

    clip = write_clip(tmp_path / "clip.mp4", astronaut, frames=6, fps=5)
    plain = list(predict_video(recognizer, clip))
    tracked = list(predict_video(recognizer, clip, baseline="track"))
    assert plain[0].faces[0].label == "happy"  # the astronaut smiles throughout: never calm, read alone
    assert summarize(tracked)[1]["baseline"] == {"none found": 1.0}
    assert [f.scores for r in tracked for f in r.faces] == [f.scores for r in plain for f in r.faces]
    photo = list(predict_video(recognizer.personalize(astronaut), clip))
    assert {f.baseline for r in photo for f in r.faces} == {"photo"}
    assert photo[0].faces[0].scores != plain[0].faces[0].scores
    astronaut.save(tmp_path / "rest.jpg")
    assert main(["video", str(clip), "--csv", str(tmp_path / "a.csv"), "--baseline", str(tmp_path / "rest.jpg")]) == 0
    assert "read against the resting-face photo" in capsys.readouterr().out
    assert main(["video", str(clip), "--csv", str(tmp_path / "b.csv"), "--baseline", "track"]) == 0
    assert "never calm enough for a resting face: read alone" in capsys.readouterr().out
    with pytest.raises(ValueError, match="baseline is None or 'track'"):
        list(predict_video(recognizer, clip, baseline="sometimes"))
