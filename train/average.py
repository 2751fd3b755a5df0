"""A model whose weights are the average of a base model's and of a model fine-tuned from it (WiSE-FT,
Wortsman et al., 2022), finished as a run is: calibrated, scored, quantized and given a card (`train.finish`).

    python -m train.average fer_model/weights/default runs/wild3 --weight 0.5 --output-dir runs/wild_average \\
        --dataset ../shared/fer2013

`--weight` is the fine-tuned model's share: 0 is the base, 1 the fine-tuned model.
"""
from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np

from fer_model.errors import FERError
from fer_model.hub import read_config, resolve

from .report import COMMAND_FILE, HISTORY_FILE


def average_states(base: dict, tuned: dict, weight: float) -> dict:
    """`(1 - weight) * base + weight * tuned` for every float array of two state dicts (numpy), in float64 and
    cast to the fine-tuned model's type; other arrays (BatchNorm's batch counts) are the fine-tuned model's."""
    if base.keys() != tuned.keys():
        raise ValueError(f"the two models' weights differ: {sorted(base.keys() ^ tuned.keys())[:3]}")
    return {k: ((1 - weight) * base[k].astype(np.float64) + weight * v.astype(np.float64)).astype(v.dtype)
            if v.dtype.kind == "f" else v for k, v in tuned.items()}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("base", help="the model fine-tuned from: a folder, or default for the embedded default")
    p.add_argument("tuned", help="the fine-tuned run's folder (its command.txt and metrics.jsonl are carried over)")
    p.add_argument("--weight", type=float, required=True, help="the fine-tuned model's share, 0 to 1")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--dataset", required=True, help="the dataset the run was trained on (calibration, int8 ranges)")
    args = p.parse_args(argv)
    if not 0 <= args.weight <= 1:
        p.error(f"--weight must be within 0 and 1, not {args.weight}")

    import torch
    from safetensors.numpy import load_file

    from fer_model.classifier import WEIGHTS_NAME
    from fer_model.hub import model_from_state, save_pretrained

    from .finish import finish_folder

    tuned, out = Path(args.tuned), Path(args.output_dir)
    try:
        base = resolve(args.base)
        config, base_config = read_config(tuned), read_config(base)
    except FERError as err:
        p.error(str(err))
    if base_config.model != config.model or base_config.labels != config.labels:
        p.error(f"{base} and {tuned} are not the same network (config.json's model and labels differ)")
    state = average_states(load_file(base / WEIGHTS_NAME), load_file(tuned / WEIGHTS_NAME), args.weight)
    model = model_from_state({k: torch.from_numpy(v) for k, v in state.items()}, config, tuned / WEIGHTS_NAME)
    saved_as = next(str(v.dtype) for v in state.values() if v.dtype.kind == "f")  # as the fine-tuned run saved it
    save_pretrained(model, config, out, getattr(torch, saved_as))
    if (tuned / HISTORY_FILE).is_file():
        shutil.copy(tuned / HISTORY_FILE, out / HISTORY_FILE)
    recipe = (tuned / COMMAND_FILE).read_text().strip() if (tuned / COMMAND_FILE).is_file() else ""
    (out / COMMAND_FILE).write_text(recipe + "\n" + shlex.join(["python", "-m", "train.average", *(
        sys.argv[1:] if argv is None else argv)]) + "\n")
    return finish_folder(out, args.dataset, fine_tuned_from=args.base)


if __name__ == "__main__":
    main()
