"""The `fer-model` command: emotions of the faces in photos, folders of photos and videos.

    fer-model predict photo.jpg holiday/ --csv faces.csv --annotate annotated/
    fer-model video clip.mp4 --csv clip.csv --out clip_annotated.webm --plot timeline.png --fps 5
    fer-model --model runs/mine calibrate labelled/ --out runs/mine-recalibrated
    fer-model batch photos/ clips/ dataset.parquet --out results/ --fps 5
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from .classifier import BACKENDS
from .detection import DETECTORS
from .errors import FERError, IncompleteRunError
from .image_io import IMAGE_SUFFIXES, folder_files
from .predictor import DEFAULT_TTA
from .calibration.tta import TTA_MODES
from .video import FOURCC


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def add_model_options(parser, defaults: bool = True) -> None:
    """The options every command shares; a command's own copy (`defaults` False) keeps what was said before it."""
    default = (lambda value: value) if defaults else (lambda value: argparse.SUPPRESS)
    parser.add_argument("--model", default=default(None), help="model folder or Hub repo id (default: the embedded model)")
    parser.add_argument("--detector", choices=list(DETECTORS), default=default(None), help="face detector (default: yunet)")
    parser.add_argument("--tta", choices=TTA_MODES, default=default(DEFAULT_TTA), help="test-time augmentation")
    parser.add_argument("--backend", choices=BACKENDS, default=default("onnx"),
                        help="run the CNN on ONNX Runtime, or on torch (needs the torch extra)")
    parser.add_argument("--threads", type=positive_int, default=default(None),
                        help="threads per call (default: FER_THREADS or 2)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fer-model", description=__doc__.split("\n\n")[0])
    add_model_options(parser)
    shared = argparse.ArgumentParser(add_help=False)
    add_model_options(shared, defaults=False)
    commands = parser.add_subparsers(dest="command", required=True)
    add_command = lambda *args, **kwargs: commands.add_parser(*args, parents=[shared], **kwargs)  # noqa: E731

    predict = add_command("predict", help="faces and emotions in images or folders of images",
                                  description="Faces and emotions in images; folders are searched recursively. "
                                              "Files that are not images are reported and skipped.")
    predict.add_argument("paths", nargs="+", type=Path, help="image files or folders")
    predict.add_argument("--json", action="store_true", help="print one JSON object per image instead of a table")
    predict.add_argument("--csv", type=Path, help="also write one row per face to this CSV file")
    predict.add_argument("--annotate", type=Path, metavar="DIR", help="write annotated copies of the images here")
    predict.add_argument("--baseline", type=Path, action="append", metavar="PHOTO",
                         help="a photo of the person at rest (repeat for several): their faces are read against it "
                              "(fer_model.baseline; pass photos of that person only)")

    video = add_command("video", help="per-frame emotions of a video, faces tracked across frames",
                                description="Per-frame emotions of a video: a CSV with one row per face per frame, "
                                            "an annotated video and a timeline plot.")
    video.add_argument("video", type=Path)
    video.add_argument("--csv", type=Path, required=True, help="per-frame CSV (one row per face per frame)")
    video.add_argument("--out", type=Path, help="annotated video: .webm (VP8, fast), .mp4 (VP9, slower) or .avi (Motion JPEG)")
    video.add_argument("--plot", type=Path, help="timeline plot (PNG): each emotion over time, one panel per face")
    add_sampling(video)
    video.add_argument("--max-frames", type=positive_int, default=None, help="stop after this many analysed frames")
    video.add_argument("--baseline", metavar="track|PHOTO",
                       help="read each face against its own resting face: 'track', its calmest frames as they come "
                            "(fer_model.baseline.TrackBaselines), or a photo of the person at rest")

    calibrate = add_command(
        "calibrate", help="re-fit a model's calibration on a labelled folder (no training)",
        description="Re-fit the model's calibration (temperatures, class offsets, uncertainty thresholds) on a "
                    "labelled folder FOLDER/<label>/<image> of photos or face crops, as much as its faces support; "
                    "each TTA mode keeps the new calibration only where a held-out part of the folder reads it "
                    "no worse (ECE and NLL). Writes the recalibrated model to --out. Needs the torch extra.")
    calibrate.add_argument("folder", type=Path, help="FOLDER/<label>/<image>, labels among the model's")
    calibrate.add_argument("--out", type=Path, required=True, help="folder for the recalibrated model")
    calibrate.add_argument("--held-out", type=float, default=0.5, help="share of each class kept to check the fit")

    batch = add_command(
        "batch", help="many photos, table rows and videos into Parquet tables, on every core or a Ray cluster",
        description="Every face of many inputs into DIR/faces/ (one row per face per image or frame), DIR/errors/, "
                    "DIR/tracks/ (per video and track) and DIR/run.json. Inputs: image and video files, folders "
                    "(recursive), glob patterns, .txt/.csv manifests of paths or URLs, Parquet/Arrow files or "
                    "Hugging Face dataset folders with an image column, hf:// and other fsspec URLs. Run again, it "
                    "does only what is missing. Needs the batch extra: pip install 'fer-model[batch]'.")
    batch.add_argument("inputs", nargs="+", help="files, folders, globs, manifests, tables or URLs")
    batch.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the tables")
    batch.add_argument("--csv", type=Path, help="also write every face row to this CSV file")
    batch.add_argument("--column", help="tables' image column (default: the column of image bytes)")
    add_sampling(batch)
    batch.add_argument("--segment-seconds", type=float, default=60.0,
                       help="cut videos into segments this long, analysed in parallel (default 60)")
    batch.add_argument("--runner", choices=["local", "ray"], default="local",
                       help="every core here (default), or a Ray cluster")
    batch.add_argument("--address", help="the Ray cluster, e.g. 127.0.0.1:6379 (default: RAY_ADDRESS)")
    batch.add_argument("--workers", type=positive_int, help="worker processes (default: one per core or cluster CPU)")

    args = parser.parse_args(argv)
    if args.command == "video" and args.out and args.out.suffix.lower() not in FOURCC:  # before any work starts
        parser.error(f"--out must end in {', '.join(FOURCC)}, not {args.out.suffix or 'nothing'}")
    try:
        if args.command == "calibrate":
            return run_calibrate(args)
        if args.command == "batch":
            return run_batch(args)
        from .predictor import EmotionRecognizer

        recognizer = EmotionRecognizer.from_pretrained(args.model, backend=args.backend, threads=args.threads,
                                                       detector=args.detector, tta=args.tta)
        if args.command == "predict" and args.baseline:
            recognizer = recognizer.personalize(args.baseline)
        if args.command == "video" and args.baseline not in (None, "track"):
            recognizer = recognizer.personalize(Path(args.baseline))
        return (run_predict if args.command == "predict" else run_video)(recognizer, args)
    except (FERError, ValueError, RuntimeError, OSError, ImportError) as err:
        print(f"fer-model: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fer-model: interrupted; what was done so far is saved", file=sys.stderr)
        return 130


def add_sampling(command) -> None:
    """A video command's frame sampling and smoothing options."""
    sampling = command.add_mutually_exclusive_group()
    sampling.add_argument("--every", type=positive_int, help="analyse every N-th frame")
    sampling.add_argument("--fps", type=positive_float, help="analyse about this many frames a second")
    command.add_argument("--smoothing", type=float, default=0.0, help="weight of the past in each face's scores (0..1)")


def image_files(paths: list[Path]) -> list[Path]:
    """The given files, and the images in the given folders (by their ending, as `batch` takes them: hidden ones
    left out), in order."""
    files = []
    for path in paths:
        if path.is_dir():
            files += [p for p in folder_files(path) if p.suffix.lower() in IMAGE_SUFFIXES]
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return files


def annotated_paths(files: list[Path], folder: Path) -> dict[Path, Path]:
    """Where each image's annotated copy goes: the input folders mirrored under `folder`, from the folder
    all the inputs share, so that same-named images from different folders keep their own copies."""
    resolved = [path.resolve() for path in files]
    common = Path(os.path.commonpath([path.parent for path in resolved]))
    return {path: folder / full.relative_to(common).with_name(f"{full.stem}_annotated.png")
            for path, full in zip(files, resolved)}


def run_predict(recognizer, args) -> int:
    from tqdm.auto import tqdm

    files = image_files(args.paths)
    if not files:
        raise ValueError("no image files found")
    rows, skipped = [], 0
    table = open(args.csv, "w", newline="") if args.csv else None
    writer = csv.writer(table) if table else None
    if writer:
        writer.writerow(["file", "face", "x", "y", "width", "height", "label", "confidence", "uncertain",
                         *recognizer.labels])
    annotated = annotated_paths(files, args.annotate) if args.annotate else {}
    try:
        for path in tqdm(files, desc="images", unit="img", disable=len(files) < 3 or args.json, file=sys.stderr):
            try:
                faces = recognizer.predict(path)
            except FERError as err:
                skipped += 1
                tqdm.write(f"skipped {path}: {err}", file=sys.stderr)
                continue
            if args.json:
                print(json.dumps({"file": str(path), "count": len(faces), "faces": [f.to_dict() for f in faces]}))
            rows += [(str(path), i + 1, face) for i, face in enumerate(faces)] or [(str(path), 0, None)]
            if writer:  # a row for every image read, as batch writes: face 0 and empty fields where it has none
                writer.writerows([[str(path), i + 1, *f.box, f.label, f"{f.confidence:.4f}", int(f.uncertain),
                                   *(f"{f.scores[k]:.4f}" for k in recognizer.labels)] for i, f in enumerate(faces)]
                                 or [[str(path), 0] + [""] * (7 + len(recognizer.labels))])
                table.flush()
            if args.annotate:
                annotated[path].parent.mkdir(parents=True, exist_ok=True)
                recognizer.annotate(path, faces).save(annotated[path])
    finally:
        if table:
            table.close()
    if not args.json and rows:
        print(format_table(rows))
    print(f"{len(files) - skipped} image(s) read, {sum(1 for r in rows if r[2])} face(s), {skipped} skipped",
          file=sys.stderr)
    return 0 if skipped < len(files) else 1


def format_table(rows) -> str:
    lines = [f"{'file':<40} {'face':>4}  {'box (x, y, w, h)':<22} {'emotion'}"]
    for path, number, face in rows:
        name = path if len(path) <= 40 else "…" + path[-39:]
        lines.append(f"{name:<40} {number:>4}  {str(face.box) if face else '-':<22} "
                     f"{face.describe() if face else 'no face found'}")
    return "\n".join(lines)


def run_video(recognizer, args) -> int:
    from functools import partial

    from tqdm.auto import tqdm

    from .video import analyze_video

    analysis = analyze_video(recognizer, args.video, args.csv, args.out, args.plot, every=args.every, fps=args.fps,
                             smoothing=args.smoothing, max_frames=args.max_frames,
                             progress=partial(tqdm, desc="frames", unit="frame", file=sys.stderr),
                             baseline="track" if args.baseline == "track" else None)
    print(analysis.describe().replace("**", ""))
    return 0


def run_calibrate(args) -> int:
    from functools import partial

    from tqdm.auto import tqdm

    from .errors import require
    from .calibration.folder import recalibrate

    require("torch", "fer-model calibrate")
    if not 0 < args.held_out < 1:
        raise ValueError(f"--held-out is a share between 0 and 1, not {args.held_out}")
    report = recalibrate(args.model, args.folder, args.out, args.held_out,
                         progress=partial(tqdm, desc="images", unit="img", file=sys.stderr))
    images = report["images"]
    print(f"{images['used']} faces used ({report['fit_faces']} to fit, {report['held_out_faces']} held out); skipped "
          f"{images['no face']} images with no face, {images['several faces']} with several, "
          f"{images['unreadable']} unreadable", file=sys.stderr)
    if not report["written"]:
        reasons = {graph["reason"] for graph in report["graphs"].values()}
        print(f"nothing changed: the model's own calibration is kept in every mode ({'; '.join(sorted(reasons))}); "
              f"nothing written to {args.out}")
        return 0
    for precision, graph in report["graphs"].items():
        print(f"{precision}: {graph['method']} ({graph['reason']})")
        for mode, m in graph["modes"].items():
            print(f"  TTA {mode:8}: held-out ECE {m['before']['ece']:.4f} -> {m['after']['ece']:.4f}, NLL "
                  f"{m['before']['nll']:.4f} -> {m['after']['nll']:.4f}, accuracy {m['before']['accuracy']:.1%} -> "
                  f"{m['after']['accuracy']:.1%}: kept the {m['kept']} calibration")
    print(f"recalibrated model written to {args.out}")
    return 0


@contextmanager
def quiet_after_ctrl_c():
    """From a Ctrl-C on, the objects that the interrupted engine's threads leave behind are torn down without their
    "Exception ignored in ..." reports (an event loop already gone, say), to the process's end: the run's state is
    on disk and one line says so. Before it, such reports print as usual."""
    stopping = threading.Event()

    def on_interrupt(signum, frame):
        stopping.set()
        signal.default_int_handler(signum, frame)

    def report(unraisable):
        if not stopping.is_set():
            previous_hook(unraisable)

    previous_hook, previous_handler = sys.unraisablehook, signal.getsignal(signal.SIGINT)
    sys.unraisablehook = report
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield stopping
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous_handler)
        if not stopping.is_set():
            sys.unraisablehook = previous_hook


def run_batch(args) -> int:
    from . import batch

    if args.backend != "onnx":
        raise ValueError("batch runs the ONNX model only; leave out --backend")
    try:
        with quiet_after_ctrl_c():
            record = batch.run(args.inputs, args.out, model=args.model, tta=args.tta, threads=args.threads or 1,
                               detector=args.detector, every=args.every, fps=args.fps, smoothing=args.smoothing,
                               segment_seconds=args.segment_seconds, column=args.column, runner=args.runner,
                               address=args.address, workers=args.workers, csv=args.csv)
    except IncompleteRunError as err:
        message, code = f"fer-model: error: {err}", 2
    except KeyboardInterrupt:
        message, code = "fer-model: interrupted; what was done is saved: run the same command again to do the rest", 130
    else:
        counts = record["counts"]
        print(f"{counts['inputs']} inputs: {counts['faces']} faces, {counts['no_face']} with no face, "
              f"{counts['errors']} unreadable (in {args.out / 'errors'}); {record['duration_s']:.1f} s; "
              f"tables in {args.out}", file=sys.stderr)
        return 0
    print(message, file=sys.stderr, flush=True)
    os._exit(code)  # everything done is on disk; Daft's threads, cut off mid-query, would abort a normal exit


if __name__ == "__main__":
    sys.exit(main())
