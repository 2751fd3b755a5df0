"""`fer-model batch` on this machine: inputs of every kind, the tables, the same answers as predict and
predict_video however videos are cut, resuming after a kill, and one-line errors."""
import io
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from fer_model import EMOTIONS, batch
from fer_model.batch.segments import Segment, TrackJoiner, plan_segments, warmup_frames
from fer_model.batch.sources import expand
from fer_model.batch.table import FACE_COLUMNS, TRACK_COLUMNS
from fer_model.cli import main
from fer_model.video import predict_video, summarize

from .conftest import ROOT, subprocess_env

pytest.importorskip("daft")


def two_face_clip(path, face, frames=40, fps=10.0, gone=range(15, 24)):
    """Two faces drifting right; the second leaves the picture for the frames in `gone` (Motion JPEG)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 360))
    small = np.asarray(face.convert("RGB").resize((200, 200)))
    for i in range(frames):
        canvas = np.full((360, 640, 3), 90, np.uint8)
        canvas[80:280, 20 + 2 * i:220 + 2 * i] = small
        if i not in gone:
            canvas[80:280, 340 + i:540 + i] = small[:, ::-1]
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, astronaut):
    """A folder of photos (one with a face, one without, one corrupt, one text file), a video, a
    Hugging Face style Parquet table with a corrupt row, and a manifest naming a photo outside the folder."""
    from skimage import data

    root = tmp_path_factory.mktemp("collection")
    photos = root / "photos"
    (photos / "more").mkdir(parents=True)
    astronaut.save(photos / "astronaut.jpg")
    astronaut.transpose(Image.FLIP_LEFT_RIGHT).resize((256, 256)).save(photos / "more" / "small.png")
    Image.fromarray(data.coffee()).save(photos / "coffee.png")
    (photos / "broken.jpg").write_bytes(b"not a picture")
    (photos / "broken.mp4").write_bytes(b"not a video")
    (photos / "notes.md").write_text("not an input")
    two_face_clip(root / "clip.avi", astronaut)
    cells = []
    for image in (astronaut.resize((200, 200)), astronaut.convert("L").resize((48, 48))):
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        cells.append({"bytes": buffer.getvalue(), "path": None})
    cells.append({"bytes": b"\x89PNG broken", "path": None})
    pq.write_table(pa.table({"image": cells, "label": [3, 3, 0]}), root / "table.parquet")
    astronaut.rotate(5).save(root / "listed.jpg")
    (root / "manifest.txt").write_text("# one photo\nlisted.jpg\n")
    return root


@pytest.fixture(scope="module")
def run_all(inputs, tmp_path_factory):
    """Everything in one run on the engine's two workers (a run this small would otherwise run in-process)."""
    out = tmp_path_factory.mktemp("run") / "results"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batch, "IN_PROCESS_FRAMES", 0)
        record = batch.run([str(inputs / "photos"), str(inputs / "clip.avi"), str(inputs / "table.parquet"),
                            str(inputs / "manifest.txt")], out, smoothing=0.5, segment_seconds=1.3, csv=out / "all.csv",
                           workers=2, progress=False)
    assert record["engine"] == "daft (local)"
    return out, record


def read(folder):
    return pq.read_table(folder).to_pandas()


def test_every_input_once_in_faces_or_errors(inputs, run_all):
    out, record = run_all
    faces, errors = read(out / "faces"), read(out / "errors")
    sources = set(faces.source) | set(errors.source)
    expected = {str(inputs / "photos" / name)
                for name in ("astronaut.jpg", "coffee.png", "broken.jpg", "broken.mp4", "more/small.png")}
    expected |= {str(inputs / "clip.avi"), str(inputs / "listed.jpg")}
    expected |= {f"{inputs / 'table.parquet'}#{row}" for row in range(3)}
    assert sources == expected and not set(faces.source) & set(errors.source)
    assert list(faces.columns) == FACE_COLUMNS + list(EMOTIONS)
    assert sorted(errors.source) == sorted([str(inputs / "photos" / "broken.jpg"), str(inputs / "photos" / "broken.mp4"),
                                            f"{inputs / 'table.parquet'}#2"])
    assert all("\n" not in m and m for m in errors.message)
    no_face = faces[faces.source == str(inputs / "photos" / "coffee.png")]
    assert len(no_face) == 1 and no_face[["face", "label", "x", "confidence"]].isna().all(axis=None)
    assert record["status"] == "complete" and record["counts"] == {
        "inputs": 10, "faces": int(faces.face.notna().sum()), "no_face": 1, "errors": 3}


def test_image_rows_are_what_predict_gives(inputs, run_all, recognizer):
    faces = read(run_all[0] / "faces")
    for source, image in [(str(inputs / "photos" / "more" / "small.png"), inputs / "photos" / "more" / "small.png"),
                          (f"{inputs / 'table.parquet'}#1", None), (str(inputs / "listed.jpg"), inputs / "listed.jpg")]:
        if image is None:
            image = pq.read_table(inputs / "table.parquet").column("image")[1].as_py()["bytes"]
        expected = recognizer.predict(image, "flip")
        rows = faces[faces.source == source].sort_values("face")
        assert len(rows) == len(expected) >= 1
        for (_, row), face in zip(rows.iterrows(), expected):
            assert (row.x, row.y, row.width, row.height) == face.box and row.label == face.label
            assert np.allclose([row[k] for k in EMOTIONS], [face.scores[k] for k in EMOTIONS], atol=1e-4)


def video_rows(faces, source):
    return faces[faces.source == source].sort_values(["frame", "face"])


def assert_same_video(rows, results):
    expected = [(r.index, f) for r in results for f in r.faces]
    assert list(rows.frame) == [index for index, _ in expected]
    assert [tuple(r) for r in rows[["x", "y", "width", "height"]].to_numpy()] == [f.box for _, f in expected]
    assert np.allclose(rows[list(EMOTIONS)].to_numpy(), [[f.scores[k] for k in EMOTIONS] for _, f in expected], atol=1e-4)
    # the same partition into tracks, whatever the numbers
    pairs = set(zip(rows.track_id.astype(int), (f.track_id for _, f in expected)))
    assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})


def test_video_rows_are_what_predict_video_gives_across_segments(inputs, run_all, recognizer):
    source = str(inputs / "clip.avi")
    results = list(predict_video(recognizer, source, smoothing=0.5, tta="flip"))
    assert len(plan_segments(source, None, None, 0.5, 1.3)) == 4
    assert_same_video(video_rows(read(run_all[0] / "faces"), source), results)
    tracks = read(run_all[0] / "tracks")
    assert list(tracks.columns) == TRACK_COLUMNS + list(EMOTIONS)
    summary = summarize(results, 0.1)
    assert sorted(tracks.frames) == sorted(s["frames"] for s in summary.values())
    assert set(tracks.dominant) == {s["dominant"] for s in summary.values()}


@pytest.mark.parametrize("every, segment_seconds", [(None, 0.6), (3, 1.0), (2, None)])
def test_any_cut_gives_the_same_rows(inputs, recognizer, tmp_path, every, segment_seconds):
    source = str(inputs / "clip.avi")
    batch.run([source], tmp_path, every=every, smoothing=0.3, segment_seconds=segment_seconds, tta="none",
              workers=2, progress=False)
    expected = list(predict_video(recognizer, source, every=every, smoothing=0.3, tta="none"))
    assert_same_video(video_rows(read(tmp_path / "faces"), source), expected)


def test_tables_read_with_pandas_polars_duckdb_datasets_and_csv(run_all):
    import duckdb
    import polars

    out, _ = run_all
    frame = pd.read_parquet(out / "faces")
    pandas_rows = len(frame)
    assert frame.source.isna().sum() == 0 and frame.face.isna().any()  # no-face rows are there, with empty cells
    assert {column: str(frame[column].dtype) for column in ("frame", "face", "x", "track_id", "uncertain")} == {
        "frame": "Int64", "face": "Int32", "x": "Int32", "track_id": "Int64", "uncertain": "boolean"}
    assert str(pd.read_parquet(out / "tracks").frames.dtype) == "Int64"
    assert len(polars.read_parquet(str(out / "faces" / "*.parquet"))) == pandas_rows
    counted = duckdb.sql(f"select count(*), count(distinct source) from '{out / 'tracks' / '*.parquet'}'").fetchall()[0]
    assert counted == (3, 1)  # the video's three tracks
    from datasets import load_dataset

    dataset = load_dataset("parquet", data_files=str(out / "faces" / "*.parquet"), split="train")
    assert len(dataset) == pandas_rows and dataset.column_names == FACE_COLUMNS + list(EMOTIONS)
    assert len(pd.read_csv(out / "all.csv")) == pandas_rows
    record = json.loads((out / "run.json").read_text())
    from fer_model.hub import DEFAULT_MODEL_DIR

    import hashlib

    onnx = DEFAULT_MODEL_DIR / record["model"]["onnx"]
    assert record["model"]["onnx_sha256"] == hashlib.sha256(onnx.read_bytes()).hexdigest()
    assert record["options"]["smoothing"] == 0.5 and record["duration_s"] > 0


def test_track_joiner_continues_tracks_through_the_overlap():
    def row(frame, x, track):
        return {"frame": frame, "x": x, "y": 0, "width": 10, "height": 10, "track_id": track}

    joiner = TrackJoiner()
    first = joiner.join([row(0, 0, 7), row(0, 50, 8), row(1, 1, 7), row(1, 51, 8)], [])
    assert [r["track_id"] for r in first] == [1, 2, 1, 2]
    # the next segment's warm-up saw frame 1: its track 1 is the face at x=51 (video track 2), 2 the one at x=1
    second = joiner.join([row(2, 52, 1), row(2, 2, 2), row(2, 90, 3)], [(1, (51, 0, 10, 10), 1), (1, (1, 0, 10, 10), 2)])
    assert [r["track_id"] for r in second] == [2, 1, 3]


def test_segments_of_another_cut_or_reading_wait_apart(inputs, tmp_path):
    from fer_model.batch.output import RunFolder

    folder, source = RunFolder(tmp_path, list(EMOTIONS)), str(inputs / "clip.avi")
    cuts = [plan_segments(source, every, None, smoothing, seconds)[0]
            for every, smoothing, seconds in [(None, 0.0, 1.0), (None, 0.0, 2.0), (2, 0.0, 1.0), (None, 0.2, 1.0)]]
    assert len({folder.segment_folder(segment) for segment in cuts}) == 4


def test_warm_up_is_long_enough_for_smoothing():
    assert warmup_frames(0.0) == 6
    assert 0.9 ** warmup_frames(0.9) < 1e-6 <= 0.9 ** (warmup_frames(0.9) - 1)


def test_expand_recognises_inputs_by_ending(inputs, tmp_path):
    found = expand([str(inputs)], exclude=inputs / "photos" / "more")
    assert [s for s, _ in found.images] == sorted(str(p) for p in [
        inputs / "listed.jpg", *(inputs / "photos" / n for n in ("astronaut.jpg", "broken.jpg", "coffee.png"))])
    assert found.videos == [str(inputs / "clip.avi"), str(inputs / "photos" / "broken.mp4")]
    assert [t.rows for t in found.tables] == [3]
    assert found.tables[0].column == "image" and found.count == 9
    (tmp_path / "list.csv").write_text(f"id,path\n1,{inputs / 'listed.jpg'}\n2,https://example.org/a.jpg\n")
    assert [s for s, _ in expand([str(tmp_path / "list.csv")]).images] == [str(inputs / "listed.jpg"),
                                                                           "https://example.org/a.jpg"]
    assert len(expand([str(inputs / "photos" / "**" / "*.png")]).images) == 2
    with pytest.raises(FileNotFoundError, match="no such file"):
        expand([str(tmp_path / "missing")])
    pq.write_table(pa.table({"label": [1]}), tmp_path / "labels.parquet")
    with pytest.raises(ValueError, match="--column"):
        expand([str(tmp_path / "labels.parquet")])


def test_a_saved_hugging_face_dataset_folder(inputs, tmp_path, recognizer):
    from datasets import Dataset, Image as ImageFeature

    paths = [str(inputs / "listed.jpg"), str(inputs / "photos" / "coffee.png")]
    Dataset.from_dict({"picture": paths}).cast_column("picture", ImageFeature()).save_to_disk(tmp_path / "saved")
    batch.run([str(tmp_path / "saved")], tmp_path / "out", workers=1, progress=False)
    faces = read(tmp_path / "out" / "faces")
    assert sorted(faces.groupby("source").face.count()) == [0, len(recognizer.predict(paths[0]))]


def test_cli_batch_one_line_errors(tmp_path, capsys, inputs):
    assert main(["batch", str(tmp_path / "nothing"), "--out", str(tmp_path / "out")]) == 2
    assert main(["--backend", "torch", "batch", str(inputs / "listed.jpg"), "--out", str(tmp_path / "out")]) == 2
    assert main(["batch", str(inputs / "table.parquet"), "--column", "label", "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "no such file or folder" in err and "ONNX model only" in err and "Traceback" not in err
    assert len(read(tmp_path / "o" / "errors")) == 3  # integers are not images: each row says so


def test_killed_run_resumes_with_every_input_exactly_once(tmp_path, astronaut, recognizer):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(240):
        astronaut.resize((160 + i % 7 * 8, 160 + i % 7 * 8)).save(photos / f"{i:03d}.jpg", quality=80)
    clip = str(two_face_clip(tmp_path / "clip.avi", astronaut, frames=60))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "fer_model.cli", "batch", str(photos), clip, "--out", str(out),
               "--workers", "1", "--segment-seconds", "1"]

    def kill_once(done) -> None:
        """Start the run and kill -9 it (and its workers) as soon as `done()`."""
        process = subprocess.Popen(command, env=subprocess_env(), cwd=ROOT, start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while not done() and process.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    kill_once(lambda: len(list(out.glob(".work/segments-*/*.parquet"))) >= 2)  # in the middle of the video
    assert 2 <= len(list(out.glob(".work/segments-*/*.parquet"))) < 6 and not list(out.glob("faces/*.parquet"))
    assert not list(out.rglob("*.pkl"))  # waiting segments are data, never pickles
    kill_once(lambda: len(list(out.glob("faces/part-*.parquet"))) >= 2)  # in the middle of the photos
    partial = read(out / "faces")
    assert clip in set(partial.source) and 0 < partial.source.nunique() - 1 < 240
    assert subprocess.run(command, env=subprocess_env(), cwd=ROOT, capture_output=True).returncode == 0
    faces = read(out / "faces")
    images = faces[faces.source != clip]
    assert images.source.nunique() == 240 and len(images) == 240  # one face each, none twice
    assert_same_video(video_rows(faces, clip), list(predict_video(recognizer, clip, tta="flip")))
    record = json.loads((out / "run.json").read_text())
    assert record["already_done"] == partial.source.nunique() and record["counts"]["inputs"] == 241
    assert not list(out.glob(".work/segments-*"))


def test_fsspec_urls_of_images_and_of_a_folder_of_tables(inputs, tmp_path, recognizer):
    """hf:// and s3:// take the same path as file:// here: an image URL is read through fsspec, and a URL
    with no file ending is a folder whose Parquet files are tables."""
    image_url, folder_url = f"file://{inputs / 'listed.jpg'}", f"file://{inputs}"
    batch.run([image_url, folder_url], tmp_path / "out", workers=1, progress=False)
    faces, errors = read(tmp_path / "out" / "faces"), read(tmp_path / "out" / "errors")
    assert set(faces.source) == {image_url, f"{folder_url}/table.parquet#0", f"{folder_url}/table.parquet#1"}
    assert list(errors.source) == [f"{folder_url}/table.parquet#2"]
    expected = recognizer.predict(inputs / "listed.jpg")[0]
    assert faces[faces.source == image_url].iloc[0].happy == pytest.approx(expected.scores["happy"], abs=1e-4)


def test_nothing_to_do_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images, videos or table rows"):
        batch.run(str(tmp_path / "empty"), tmp_path / "out", progress=False)
    with pytest.raises(Exception):
        batch.run(str(tmp_path / "missing.jpg"), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # nothing made for a run with nothing to read


def test_a_second_run_into_a_folder_in_use_is_refused_naming_the_other(tmp_path, inputs):
    """While one run holds `--out`, another is refused in one line and writes nothing; once the first is gone
    (even killed: the lock is the kernel's), the folder is free again."""
    from fer_model.batch.output import RunFolder

    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from fer_model.batch.output import RunFolder\n"
                               f"with RunFolder({str(out)!r}, []).locked():\n    print('held', flush=True); time.sleep(600)"],
                              cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        command = [sys.executable, "-m", "fer_model.cli", "batch", str(inputs / "listed.jpg"), "--out", str(out)]
        refused = subprocess.run(command, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
        assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0
        assert f"pid {holder.pid}" in refused.stderr and "in use by another run" in refused.stderr
        assert not list(out.glob("faces/*")) and not (out / "run.json").exists()
    finally:
        holder.kill()  # SIGKILL: no chance to let go of the lock itself
        holder.wait()
    assert subprocess.run(command, cwd=ROOT, env=subprocess_env(), capture_output=True, timeout=300).returncode == 0
    with RunFolder(out, []).locked():
        pass


def test_the_bar_counts_a_video_by_its_frames(inputs):
    """A long video moves the bar as its segments finish, by the frames each reads, as photos do one by one."""
    from fer_model.batch import _size
    from fer_model.video import video_info

    source = str(inputs / "clip.avi")
    segments = plan_segments(source, None, None, 0.0, 1.0)
    assert len(segments) > 1 and sum(_size(s) for s in segments) == video_info(source).frames
    assert sum(_size(s) for s in plan_segments(source, 2, None, 0.0, 1.0)) == len(range(0, video_info(source).frames, 2))


def test_a_folder_keeps_one_model_and_one_reading(inputs, tmp_path):
    import shutil

    from fer_model.hub import DEFAULT_MODEL_DIR

    float_model = shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "float_model")  # without its int8 graph
    config = json.loads((float_model / "config.json").read_text())
    (float_model / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "int8"}))
    photo, out = str(inputs / "listed.jpg"), tmp_path / "out"
    batch.run([photo], out, tta="none", progress=False)
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    with pytest.raises(ValueError, match="another model or reading \\(tta none -> flip\\)"):
        batch.run([photo], out, progress=False)
    with pytest.raises(ValueError, match="another model or reading \\(model "):
        batch.run([photo], out, tta="none", model=str(float_model), progress=False)
    assert batch.run([photo], out, tta="none", segment_seconds=5, progress=False)["already_done"] == 1


def test_a_process_keeps_its_daft_runner(inputs, tmp_path):
    from fer_model.batch import engine

    engine.use_runner("local", None)
    with pytest.raises(RuntimeError, match="already runs Daft on its native runner"):
        batch.run([str(inputs / "listed.jpg")], tmp_path, runner="ray", progress=False)


@pytest.mark.parametrize("stop", ["ctrl-c", "worker killed"])
def test_a_stopped_run_says_so_in_one_line_and_the_same_command_finishes(tmp_path, astronaut, stop):
    import psutil

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(320):
        astronaut.resize((160, 160)).save(photos / f"{i:03d}.jpg")
    command = [sys.executable, "-m", "fer_model.cli", "batch", str(photos), "--out", str(tmp_path / "out")]
    process = subprocess.Popen(command, env=subprocess_env(), cwd=ROOT, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list((tmp_path / "out" / "faces").glob("*.parquet")) and time.time() < deadline:
        time.sleep(0.02)
    if stop == "ctrl-c":  # the terminal sends SIGINT to the whole process group
        os.killpg(process.pid, signal.SIGINT)
    else:
        psutil.Process(process.pid).children()[0].kill()
    err = process.communicate(timeout=120)[1]
    assert process.returncode in (2, 130) and "Traceback" not in err, err[-2000:]  # 130: Python saw the Ctrl-C
    message = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("fer-model: ")]
    assert len(message) == 1 and "run the same command again" in message[0]
    assert json.loads((tmp_path / "out" / "run.json").read_text())["status"] == "interrupted"
    assert subprocess.run(command, env=subprocess_env(), cwd=ROOT, capture_output=True).returncode == 0
    faces = read(tmp_path / "out" / "faces")
    assert faces.source.nunique() == len(faces) == 320


@pytest.mark.parametrize("missing", ["daft", "pyarrow"])
def test_without_the_batch_extra_the_command_says_which_to_install(tmp_path, inputs, missing):
    code = (f"import sys; sys.modules[{missing!r}] = None; from fer_model.cli import main; "
            f"sys.exit(main(['batch', {str(inputs / 'listed.jpg')!r}, '--out', {str(tmp_path / 'out')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "pip install 'fer-model[batch]'" in done.stderr and "Traceback" not in done.stderr


def test_batch_runs_print_no_daft_query_id():
    """Daft prints "Daft Query ID" on a terminal's stderr unless told not to; a batch run tells it."""
    import fer_model.batch.engine  # noqa: F401

    assert os.environ["DAFT_SHOW_QUERY_ID"] == "0"


def test_after_ctrl_c_the_engine_s_torn_down_objects_report_nothing():
    """What an interrupted Daft leaves behind ("Exception ignored ... no running event loop") stays quiet from the
    Ctrl-C on; before it, such a report goes to Python's hook as usual."""
    from fer_model.cli import quiet_after_ctrl_c

    class Leftover:
        def __del__(self):
            raise RuntimeError("no running event loop")

    reported, previous = [], sys.unraisablehook
    sys.unraisablehook = lambda unraisable: reported.append(str(unraisable.exc_value))
    try:
        with pytest.raises(KeyboardInterrupt), quiet_after_ctrl_c() as stopping:
            Leftover()
            assert reported == ["no running event loop"] and not stopping.is_set()
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the interrupt arrives here
        Leftover()
        assert reported == ["no running event loop"] and stopping.is_set()
    finally:
        sys.unraisablehook = previous


def test_a_study_is_read_person_by_person(tmp_path, astronaut, recognizer, blank_photo):
    """A manifest's or table's `person` column: each person's photos are read against the photo their `baseline`
    names, else against their rows labelled neutral (a `datasets` ClassLabel id too); a person with neither reads
    plainly, and one whose resting photo shows no face is an error for each of their photos."""
    import json as json_module

    for name, angle in (("a", 0), ("rest", 4), ("b", 4), ("c", -3), ("d", 2), ("e", 1)):
        astronaut.rotate(angle).save(tmp_path / f"{name}.jpg")
    Image.fromarray(blank_photo).save(tmp_path / "blank.jpg")
    (tmp_path / "study.csv").write_text("path,person,label,baseline\na.jpg,ann,happy,rest.jpg\nb.jpg,bob,neutral,\n"
                                        "c.jpg,bob,happy,\nd.jpg,,,\ne.jpg,dan,,blank.jpg\na.jpg,dan,,\n")
    buffer = io.BytesIO()
    astronaut.rotate(4).save(buffer, "PNG")
    features = {"image": {"_type": "Image"}, "person": {"_type": "Value", "dtype": "string"},
                "label": {"_type": "ClassLabel", "names": EMOTIONS}}
    table = pa.table({"image": [{"bytes": buffer.getvalue(), "path": None}, {"bytes": None, "path": "a.jpg"}],
                      "person": ["eve", "eve"], "label": [EMOTIONS.index("neutral"), EMOTIONS.index("happy")]})
    pq.write_table(table.replace_schema_metadata({"huggingface": json_module.dumps({"info": {"features": features}})}),
                   tmp_path / "study.parquet")
    batch.run([str(tmp_path / "study.csv"), str(tmp_path / "study.parquet")], tmp_path / "out", workers=1,
              progress=False)
    faces = read(tmp_path / "out" / "faces").set_index("source")
    errors = read(tmp_path / "out" / "errors")
    a, b, c, d, e, rest = (str(tmp_path / f"{name}.jpg") for name in ("a", "b", "c", "d", "e", "rest"))
    table_rows = [f"{tmp_path / 'study.parquet'}#{row}" for row in (0, 1)]
    expected = {a: (recognizer.personalize(rest).predict(a)[0], "ann", rest),
                c: (recognizer.personalize(b).predict(c)[0], "bob", b),
                d: (recognizer.predict(d)[0], None, None),
                table_rows[1]: (recognizer.personalize(astronaut.rotate(4)).predict(a)[0], "eve", table_rows[0])}
    for source, (face, person, baseline) in expected.items():
        row = faces.loc[source]
        assert (row.person, row.baseline) == (person, baseline) if person else pd.isna(row.person) and pd.isna(row.baseline)
        assert [row[label] for label in EMOTIONS] == pytest.approx([face.scores[label] for label in EMOTIONS], abs=1e-4)
    assert abs(faces.loc[a].happy - recognizer.predict(a)[0].scores["happy"]) > 0.01  # the resting face counted
    assert faces.loc[a].person == "ann"  # a photo listed twice is read once, as its first entry says
    assert errors.to_dict("records") == [{"source": e, "message": "person dan: no face found in resting-face photo 1 of 1"}]


def test_a_small_run_runs_in_this_process_with_the_rows_predict_gives(inputs, tmp_path, recognizer):
    record = batch.run([str(inputs / "photos" / "astronaut.jpg")], tmp_path / "out", workers=2, progress=False)
    assert record["engine"] == "this process" and record["counts"]["faces"] == 1
    row, face = read(tmp_path / "out" / "faces").iloc[0], recognizer.predict(inputs / "photos" / "astronaut.jpg")[0]
    assert [row[label] for label in EMOTIONS] == pytest.approx([face.scores[label] for label in EMOTIONS], abs=1e-4)
