"""Convert FER-2013 in any supported layout into the canonical parquet `DatasetDict`, optionally pushed to the Hub.

    python -m train.prepare --dataset fer2013.csv --out data/fer2013 [--push-to-hub user/fer2013]

The output folder loads with `datasets.load_dataset(<out>)` and `--dataset <out>` in training.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .data import load_fer_dataset


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="Hub dataset id, parquet folder, fer2013.csv or image folder")
    p.add_argument("--out", required=True, help="folder for data/<split>-00000-of-00001.parquet")
    p.add_argument("--validation-fraction", type=float, default=0.1, help="slice of train used when there is no validation split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--push-to-hub", metavar="REPO_ID", default=None, help="also upload as this Hub dataset")
    p.add_argument("--private", action="store_true")
    args = p.parse_args(argv)

    dataset = load_fer_dataset(args.dataset, args.validation_fraction, args.seed)
    out = Path(args.out) / "data"
    out.mkdir(parents=True, exist_ok=True)
    for name, split in dataset.items():
        split.to_parquet(str(out / f"{name}-00000-of-00001.parquet"))
        print(f"{name}: {len(split):,} images -> {out / f'{name}-00000-of-00001.parquet'}")
    if args.push_to_hub:
        dataset.push_to_hub(args.push_to_hub, private=args.private)
        print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub}")
    return out.parent


if __name__ == "__main__":
    main()
