"""The recipe log: one row per finished training run, so the next person starts from the evidence.

    python benchmarks/recipes.py record runs/fer --note "crop 44, AdamW, cosine, 45 epochs"
    python benchmarks/recipes.py table            # the Markdown table (also in benchmarks/results/recipes.md)

A row holds the run's command(s), epochs, wall minutes, device, and validation accuracy plain and with
every TTA mode the run was scored with (from the run's metrics.json, metrics.jsonl and command.txt).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import RESULTS, machine  # noqa: E402

LOG = RESULTS / "recipes.jsonl"
TABLE = RESULTS / "recipes.md"


def record(folder: Path, note: str, device: str | None) -> dict:
    metrics = json.loads((folder / "metrics.json").read_text())
    history = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    config = json.loads((folder / "config.json").read_text())
    row = {"run": folder.name, "note": note, "commands": (folder / "command.txt").read_text().strip().splitlines(),
           "model": config["model"], "crop_size": config["preprocessing"].get("crop_size"),
           "epochs": len(history), "wall_minutes": round(sum(h["seconds"] for h in history) / 60, 1),
           "device": device or machine()["gpu"] or machine()["cpu"],
           "val_accuracy": {mode.removeprefix("validation_") if mode != "validation" else "none": round(m["accuracy"], 4)
                            for mode, m in metrics.items() if mode.startswith("validation")},
           "best_epoch_val_accuracy": round(max(h["val_accuracy"] for h in history), 4)}
    with open(LOG, "a") as file:
        file.write(json.dumps(row) + "\n")
    write_table()
    return row


def write_table() -> str:
    rows = [json.loads(line) for line in LOG.read_text().splitlines()] if LOG.is_file() else []
    lines = ["| run | recipe | widths | crop | epochs | wall min | device | val acc | flip TTA | ten-crop TTA |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        acc = r["val_accuracy"]
        cell = lambda mode: f"{acc[mode]:.2%}" if mode in acc else "–"  # noqa: E731
        lines.append(f"| {r['run']} | {r['note']} | {'-'.join(map(str, r['model']['widths']))} | {r['crop_size'] or 48} "
                     f"| {r['epochs']} | {r['wall_minutes']} | {r['device']} | {cell('none')} | {cell('flip')} "
                     f"| {cell('ten_crop')} |")
    table = "\n".join(lines) + "\n"
    TABLE.write_text("# Training runs (FER-2013 validation)\n\nMade by `python benchmarks/recipes.py`; "
                     "commands in `recipes.jsonl`.\n\n" + table)
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = p.add_subparsers(dest="command", required=True)
    add = commands.add_parser("record", help="add a finished run to the log")
    add.add_argument("folder", type=Path)
    add.add_argument("--note", required=True, help="what the recipe changes, in a few words")
    add.add_argument("--device", default=None, help="default: this machine's GPU or CPU")
    commands.add_parser("table", help="print the Markdown table")
    args = p.parse_args()
    if args.command == "record":
        print(json.dumps(record(args.folder, args.note, args.device), indent=2))
    else:
        print(write_table())


if __name__ == "__main__":
    main()
