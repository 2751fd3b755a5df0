"""Videos and the command line: tracking, sampling, CSV, annotated video, timeline, folders, exit codes."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from fer_model import EMOTIONS, InvalidVideoError
from fer_model.cli import main
from fer_model.video import IoUTracker, predict_video, read_frames, summarize

from benchmarks.common import write_clip

from .conftest import ROOT


@pytest.fixture(scope="module")
def clip(tmp_path_factory, astronaut):
    return write_clip(tmp_path_factory.mktemp("video") / "clip.mp4", astronaut, frames=20, fps=10)


def test_predict_video_tracks_one_face_with_one_id(recognizer, clip):
    results = list(predict_video(recognizer, clip))
    assert [r.index for r in results] == list(range(20))
    assert [r.time for r in results] == pytest.approx([i / 10 for i in range(20)])
    assert all(len(r.faces) == 1 for r in results)
    assert {f.track_id for r in results for f in r.faces} == {1}
    summary = summarize(results)
    assert list(summary) == [1] and summary[1]["frames"] == 20 and summary[1]["dominant"] in EMOTIONS
    assert summary[1]["seconds_on_screen"] == pytest.approx(2.0)


def test_faces_of_several_frames_are_one_batch(recognizer, clip, monkeypatch):
    calls = []
    logits = recognizer.classifier.logits
    monkeypatch.setattr(recognizer.classifier, "logits", lambda x: calls.append(x.shape[0]) or logits(x))
    list(predict_video(recognizer, clip, batch_frames=8, tta="none"))
    assert calls == [8, 8, 4]


def test_smoothing_averages_the_past(recognizer, clip):
    plain = [r.faces[0].scores for r in predict_video(recognizer, clip)]
    smooth = [r.faces[0].scores for r in predict_video(recognizer, clip, smoothing=0.5)]
    assert smooth[0] == pytest.approx(plain[0])
    assert smooth[1]["happy"] == pytest.approx(0.5 * plain[0]["happy"] + 0.5 * plain[1]["happy"], abs=1e-6)


@pytest.mark.parametrize("options, indices", [({"every": 5}, [0, 5, 10, 15]), ({"fps": 2.5}, [0, 4, 8, 12, 16]),
                                              ({"every": 3, "max_frames": 2}, [0, 3])])
def test_sampling(clip, options, indices):
    assert [index for index, _, _ in read_frames(clip, **options)] == indices


def test_tracker_keeps_ids_and_gives_new_faces_new_ones():
    tracker = IoUTracker()
    assert tracker.assign([(0, 0, 50, 50), (200, 0, 50, 50)]) == [1, 2]
    assert tracker.assign([(205, 2, 50, 50), (4, 1, 50, 50)]) == [2, 1]
    assert tracker.assign([(400, 400, 50, 50)]) == [3]


def test_cli_video_writes_csv_video_and_plot(clip, tmp_path, capsys):
    out = tmp_path / "annotated.webm"
    assert main(["video", str(clip), "--csv", str(tmp_path / "f.csv"), "--out", str(out),
                 "--plot", str(tmp_path / "t.png"), "--fps", "5"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "f.csv")))
    assert len(rows) == 10 and {r["track_id"] for r in rows} == {"1"}
    assert [r["frame"] for r in rows] == [str(i) for i in range(0, 20, 2)]
    assert set(EMOTIONS) <= set(rows[0]) and float(rows[0]["confidence"]) == max(float(rows[0][k]) for k in EMOTIONS)
    assert out.stat().st_size > 1000 and (tmp_path / "t.png").stat().st_size > 1000
    assert "face 1: mostly" in capsys.readouterr().out


def test_an_annotated_mp4_is_one_browsers_play(clip, tmp_path):
    import cv2

    assert main(["video", str(clip), "--csv", str(tmp_path / "f.csv"), "--out", str(tmp_path / "a.mp4")]) == 0
    capture = cv2.VideoCapture(str(tmp_path / "a.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") == b"VP90"  # VP9, not MPEG-4 Part 2
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 20


def test_cli_predict_folder_reads_its_images_and_skips_a_broken_one(tmp_path, astronaut, capsys):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    astronaut.save(folder / "astronaut.jpg")
    (folder / "notes.txt").write_text("not an image")
    data = (folder / "astronaut.jpg").read_bytes()
    (folder / "sub" / "broken.jpg").write_bytes(data[: len(data) // 3])
    code = main(["predict", str(folder), "--csv", str(tmp_path / "faces.csv"), "--annotate", str(tmp_path / "ann")])
    output = capsys.readouterr()
    assert code == 0
    assert "skipped" in output.err and "notes.txt" not in output.err and "broken.jpg" in output.err
    assert "1 image(s) read, 1 face(s), 1 skipped" in output.err
    rows = list(csv.DictReader(open(tmp_path / "faces.csv")))
    assert len(rows) == 1 and rows[0]["label"] in EMOTIONS
    assert (tmp_path / "ann" / "astronaut_annotated.png").is_file()


def test_cli_annotations_mirror_the_input_folders(tmp_path, astronaut):
    for name in ("a", "b/c"):
        (tmp_path / "in" / name).mkdir(parents=True)
        astronaut.save(tmp_path / "in" / name / "x.jpg")
    assert main(["predict", str(tmp_path / "in"), "--annotate", str(tmp_path / "ann")]) == 0
    assert sorted(p.relative_to(tmp_path / "ann").as_posix() for p in (tmp_path / "ann").rglob("*.png")) == [
        "a/x_annotated.png", "b/c/x_annotated.png"]


@pytest.mark.parametrize("args, says", [(["--threads", "0", "predict", "x.jpg"], "must be at least 1"),
                                        (["video", "clip.mp4", "--csv", "f.csv", "--every", "0"], "at least 1"),
                                        (["video", "clip.mp4", "--csv", "f.csv", "--fps", "0"], "above 0"),
                                        (["video", "clip.mp4", "--csv", "f.csv", "--fps", "-3"], "above 0"),
                                        (["predict", "x.jpg", "--tta", "sideways"], "invalid choice"),
                                        (["video", "clip.mp4", "--csv", "f.csv", "--out", "a.mov"], "--out must end in")])
def test_cli_refuses_bad_options_before_any_work(tmp_path, monkeypatch, capsys, args, says):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        main(args)
    assert stopped.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "f.csv").exists()


def test_cli_options_go_before_or_after_the_command(tmp_path, astronaut, monkeypatch):
    """`--tta` after `predict` is the same option as before it; one given before is kept when none comes after."""
    astronaut.save(tmp_path / "a.png")
    seen = []
    monkeypatch.setattr("fer_model.cli.run_predict", lambda recognizer, args: seen.append(recognizer.tta) or 0)
    assert main(["predict", str(tmp_path / "a.png"), "--tta", "ten_crop"]) == 0
    assert main(["--tta", "none", "predict", str(tmp_path / "a.png")]) == 0
    assert seen == ["ten_crop", "none"]


def test_cli_predict_csv_has_a_row_for_every_image(tmp_path, astronaut):
    """As batch does: an image with no face gets a row (face 0, empty fields) rather than none."""
    astronaut.save(tmp_path / "a.png")
    Image.new("RGB", (400, 300), (90, 90, 90)).save(tmp_path / "blank.png")
    assert main(["predict", str(tmp_path), "--csv", str(tmp_path / "faces.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "faces.csv")))
    assert [(Path(r["file"]).name, r["face"], r["label"]) for r in rows] == [("a.png", "1", rows[0]["label"]),
                                                                            ("blank.png", "0", "")]
    assert rows[0]["label"] in EMOTIONS and len(rows[0]) == len(rows[1])


def test_cli_predict_json(tmp_path, astronaut, capsys):
    astronaut.save(tmp_path / "a.png")
    assert main(["predict", str(tmp_path / "a.png"), "--json"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["count"] == 1 and line["faces"][0]["label"] in EMOTIONS


def test_cli_exit_codes_and_one_line_errors(tmp_path, clip):
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[:300])
    (tmp_path / "notes.txt").write_text("hello")
    for args in (["video", str(truncated), "--csv", str(tmp_path / "x.csv")],
                 ["video", str(tmp_path / "notes.txt"), "--csv", str(tmp_path / "x.csv")],
                 ["predict", str(tmp_path / "missing.jpg")],
                 ["predict", str(tmp_path / "notes.txt")]):
        result = subprocess.run([sys.executable, "-m", "fer_model.cli", *args], cwd=ROOT, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode != 0, args
        assert "Traceback" not in result.stderr and result.stderr.strip(), args
        if args[0] == "video":  # the one-line error alone: no FFmpeg log ("moov atom not found") before it
            assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "moov" not in result.stderr
    help_text = subprocess.run([sys.executable, "-m", "fer_model.cli", "video", "--help"], cwd=ROOT,
                               capture_output=True, text=True, timeout=60)
    assert help_text.returncode == 0 and "--every" in help_text.stdout


def test_writing_webm_prints_nothing(tmp_path, clip):
    """OpenCV's "tag not supported" warning, written by native code on every .webm, does not come out."""
    code = ("import fer_model, sys; from fer_model.cli import main; "
            f"sys.exit(main(['video', {str(clip)!r}, '--csv', 'x.csv', '--out', 'x.webm', '--max-frames', '3']))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and (tmp_path / "x.webm").stat().st_size > 0
    assert "tag" not in result.stderr and "OpenCV" not in result.stderr, result.stderr


def test_broken_videos_raise_the_documented_error(tmp_path, clip):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for path in (empty, tmp_path / "missing.mp4"):
        with pytest.raises(InvalidVideoError):
            list(read_frames(path))


def _plotted(monkeypatch, results, tmp_path):
    """The figure `plot_timeline` saves, kept open to look at."""
    import matplotlib.figure

    from fer_model.video import plot_timeline

    figures = []
    save = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: figures.append(fig) or save(fig, *a, **k))
    monkeypatch.setattr("matplotlib.pyplot.close", lambda fig=None: None)
    plot_timeline(results, tmp_path / "timeline.png", EMOTIONS)
    return figures[0]


def test_the_timeline_legend_sits_below_the_panels(monkeypatch, tmp_path):
    """An app's label over the picture's top-left corner hides no legend entry."""
    from fer_model.video import FrameResult, TrackedFace

    scores = {k: 1 / 7 for k in EMOTIONS}
    results = [FrameResult(i, i / 5, [TrackedFace((0, 0, 9, 9), "happy", scores, 0.9, False, 1)]) for i in range(10)]
    fig = _plotted(monkeypatch, results, tmp_path)
    fig.canvas.draw()
    legend, panel = fig.legends[0].get_window_extent(), fig.axes[0].get_window_extent()
    assert legend.y1 < panel.y0 and [t.get_text() for t in fig.legends[0].get_texts()] == list(EMOTIONS)


def test_a_video_with_no_face_says_so_over_its_length(monkeypatch, tmp_path):
    from fer_model.video import FrameResult

    fig = _plotted(monkeypatch, [FrameResult(i, i / 5, []) for i in range(25)], tmp_path)
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 4.8) and any("No face found" in t.get_text() for t in ax.texts)


def test_every_option_is_checked_before_any_output_is_touched(clip, tmp_path, capsys):
    table = tmp_path / "x.csv"
    table.write_text("an earlier table\n")
    assert main(["video", str(clip), "--csv", str(table), "--smoothing", "5"]) != 0
    captured = capsys.readouterr()
    assert "smoothing" in captured.err and "frames" not in captured.err  # no progress bar began
    assert table.read_text() == "an earlier table\n"


def test_outputs_in_missing_folders_are_written_there(clip, tmp_path):
    assert main(["video", str(clip), "--csv", str(tmp_path / "tables" / "x.csv"), "--out",
                 str(tmp_path / "nodir" / "a.webm"), "--plot", str(tmp_path / "plots" / "t.png"),
                 "--max-frames", "3"]) == 0
    for path in ("tables/x.csv", "nodir/a.webm", "plots/t.png"):
        assert (tmp_path / path).stat().st_size > 0


def test_a_face_read_uncertain_in_most_frames_is_summarised_as_uncertain():
    from fer_model.video import TrackTally, VideoAnalysis

    tally = TrackTally()
    scores = {"angry": 0.05, "disgust": 0.30, "fear": 0.1, "happy": 0.02, "sad": 0.33, "surprise": 0.05, "neutral": 0.15}
    for i in range(4):
        tally.add(i * 0.5, 4, scores, uncertain=i < 3)
        tally.add(i * 0.5, 5, {**scores, "happy": 0.9}, uncertain=False)
    text = VideoAnalysis([], tally.summary(0.5), False).describe()
    assert "face 4: uncertain in 75% of its frames: **sad** 33% / disgust 30% on average" in text
    assert "face 5: mostly **happy** (90% on average)" in text


def test_predict_reads_a_folder_as_batch_does_and_prints_no_empty_table(tmp_path, astronaut, capsys):
    """Only images count in a folder (a gt.json beside them is no skipped image), as `batch` takes a folder; a file
    that is no image is skipped in one line, with no table header above nothing."""
    from fer_model.batch.sources import expand

    astronaut.save(tmp_path / "a.jpg")
    (tmp_path / "gt.json").write_text("{}")
    (tmp_path / ".hidden").mkdir()
    astronaut.save(tmp_path / ".hidden" / "b.jpg")
    assert main(["predict", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "1 image(s) read" in captured.err and "0 skipped" in captured.err
    assert [Path(p) for p, _ in expand([str(tmp_path)]).images] == [tmp_path / "a.jpg"]
    (tmp_path / "notimage.jpg").write_text("plain text")
    assert main(["predict", str(tmp_path / "notimage.jpg")]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "skipped" in captured.err and "notimage.jpg" in captured.err


def test_the_timeline_leaves_its_top_blank_for_the_app_label_and_toolbar(recognizer, clip, tmp_path):
    """The app shows the picture under its label and toolbar (about 40 px): the first panel's title and its 1.0
    tick lie below the top 45 pixels, which are plain white."""
    import numpy as np

    from fer_model.video import plot_timeline

    path = plot_timeline(list(predict_video(recognizer, clip, max_frames=4)), tmp_path / "t.png", recognizer.labels)
    picture = np.asarray(Image.open(path).convert("L"))
    assert (picture[:45] == 255).all()
    assert (picture[45:120] < 128).any()  # the panel begins right below


def test_a_video_on_its_side_says_its_faces_were_turned(recognizer, tmp_path, astronaut):
    import numpy as np

    clip = write_clip(tmp_path / "side.mp4", Image.fromarray(np.rot90(np.asarray(astronaut)).copy()), frames=3, fps=5)
    faces = [face for result in predict_video(recognizer, clip, smoothing=0.5) for face in result.faces]
    assert len(faces) == 3 and {face.turned for face in faces} == {270}
    assert faces[0].to_dict()["turned"] == 270
