"""Train several teachers at once within one time budget: each a `train.train` run of its own, side by side on
the machine's GPU (or CPU), each writing its weights and metrics.jsonl; then one summary of them all.

    python -m train.teachers --dataset data/fer2013 --output-dir runs/teachers --minutes 8 \\
        --teacher "votes=--vote-mix 1 --widths 64,128,256,512" \\
        --teacher "mixed=--vote-mix 0.5 --widths 64,128,256,512 --seed 1" -- --capture 0.25 --epochs 300

Every run gets `--dataset`, `--output-dir OUTPUT_DIR/NAME`, `--time-budget MINUTES`, `--skip-finish` and
`--resume` (a stopped batch of teachers continues where each left off), then the arguments after `--`, then its
own. Each run's output goes to OUTPUT_DIR/NAME.log; `summary.json` lists each one's exit code and best epoch.
`python -m train.finish OUTPUT_DIR/NAME --dataset ...` completes a teacher's folder (calibration, int8, card)
where ONNX Runtime runs; `python -m train.train --teacher OUTPUT_DIR/NAME ...` distils them.
"""
from __future__ import annotations

import argparse
import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from .report import HISTORY_FILE


def parse_teacher(text: str) -> tuple[str, list[str]]:
    """"NAME=ARGS" -> (NAME, the arguments)."""
    name, _, arguments = text.partition("=")
    if not name.strip() or not name.strip().replace("-", "").replace("_", "").isalnum():
        raise argparse.ArgumentTypeError(f"{text!r}: a teacher is NAME=ARGUMENTS, NAME of letters, digits, - and _")
    return name.strip(), shlex.split(arguments)


def best_epoch(folder: Path, monitor: str) -> dict | None:
    """The recorded epoch with the best `monitor` (lowest for a loss), or None without a history."""
    history = folder / HISTORY_FILE
    if not history.is_file():
        return None
    records = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
    scored = [r for r in records if monitor in r]
    if not scored:
        return None
    return (min if monitor.endswith("loss") else max)(scored, key=lambda r: r[monitor])


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    common = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                usage="python -m train.teachers [options] [-- arguments every run gets]")
    p.add_argument("--dataset", required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--minutes", type=float, required=True, help="each run's --time-budget (they run side by side)")
    p.add_argument("--teacher", action="append", type=parse_teacher, required=True, metavar="NAME=ARGS",
                   help="one run: its name and its own train.train arguments; repeat for each teacher")
    p.add_argument("--monitor", default="val_accuracy", help="the metric summary.json picks each best epoch by")
    args = p.parse_args(argv)
    names = [name for name, _ in args.teacher]
    if len(set(names)) != len(names):
        p.error(f"teacher names repeat: {names}")
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for name, own in args.teacher:
        command = [sys.executable, "-m", "train.train", "--dataset", args.dataset, "--output-dir", str(out / name),
                   "--time-budget", str(args.minutes), "--skip-finish", "--resume", "--monitor", args.monitor,
                   *common, *own]
        log = open(out / f"{name}.log", "a")
        runs[name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log, command)
        print(f"{name}: started ({out / name}.log)", flush=True)

    def forward(signum, frame):  # each run saves its state and stops; --resume continues it
        for process, _, _ in runs.values():
            process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    try:
        summary = {}
        for name, (process, log, command) in runs.items():
            code = process.wait()
            log.close()
            best = best_epoch(out / name, args.monitor)
            summary[name] = {"exit_code": code, "command": shlex.join(command[1:]), "best_epoch": best}
            shown = f"best {args.monitor} {best[args.monitor]:.4f} at epoch {best['epoch']}" if best else "no epoch"
            print(f"{name}: exit {code}, {shown} ({(time.monotonic() - started) / 60:.1f} min)", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if any(r["exit_code"] for r in summary.values()):
        raise SystemExit(f"error: {', '.join(n for n, r in summary.items() if r['exit_code'])} failed: see their logs")
    return summary


if __name__ == "__main__":
    main()
