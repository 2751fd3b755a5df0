"""FER-2013 in any layout users have -> a canonical `DatasetDict` -> uint8 tensors.

Layouts: Kaggle's `fer2013.csv` (emotion, pixels, Usage: the original release), a Hub dataset id
or a local `datasets` folder (parquet), and image folders (`train/<class>/*.jpg`, `test/<class>/*.jpg`).
Labels that name FER-2013's emotions are mapped by name onto its order; other label sets (FER+'s contempt,
positive / negative / neutral) are kept as the data names them. Splits are `train`, `validation` and, when
present, `test`.
"""
from __future__ import annotations

import logging
import math
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, concatenate_datasets, load_dataset
from datasets.exceptions import DatasetNotFoundError

from fer_model.config import EMOTIONS
from fer_model.image_io import IMAGE_SUFFIXES
from fer_model.preprocess import to_face_array

FEATURES = Features({"image": Image(), "label": ClassLabel(names=list(EMOTIONS))})
KAGGLE_USAGE = {"Training": "train", "PublicTest": "validation", "PrivateTest": "test"}
SPLIT_ALIASES = {"valid": "validation", "val": "validation", "publictest": "validation", "privatetest": "test"}
LABEL_ALIASES = {"anger": "angry", "disgusted": "disgust", "fearful": "fear", "happiness": "happy",
                 "sadness": "sad", "surprised": "surprise", "neutrality": "neutral"}


DEFAULT_DATASET = "fer2013.csv"
"""Kaggle's FER-2013 file ("Challenges in Representation Learning: Facial Expression Recognition Challenge")."""


class DatasetFormatError(ValueError):
    """The dataset cannot be found or read as FER-2013 (no such path, unknown labels, missing columns or splits)."""


def load_fer_dataset(source: str, validation_fraction: float | None = None, seed: int = 0,
                     own_labels: bool = False) -> DatasetDict:
    """Read `source` (Hub id, parquet folder, fer2013.csv or image folder) as train/validation[/test];
    without a validation split, a stratified `validation_fraction` of train becomes one (default
    `held_out_fraction`). Labels: `to_canonical`."""
    dataset = read_splits(source, own_labels)
    if "train" not in dataset:
        raise DatasetFormatError(f"{source} has no train split to train on (splits: {sorted(dataset)})")
    if "validation" not in dataset:
        validation_fraction = validation_fraction or held_out_fraction(len(dataset["train"]))
        check_splittable(dataset["train"], validation_fraction, source)
        parts = dataset["train"].train_test_split(test_size=validation_fraction, stratify_by_column="label", seed=seed)
        dataset["train"], dataset["validation"] = parts["train"], parts["test"]
    return dataset


def held_out_fraction(images: int) -> float:
    """The share of a train split held out for validation and calibration: 10% of a large one, and up to 30% of a
    small one, so that about 150 faces are there to calibrate on (`fer_model.calibration.fit`)."""
    return min(0.3, max(0.1, 150 / images))


def check_splittable(split: Dataset, fraction: float, source: str) -> None:
    """Refuse, in one line, a train split too small to lose a `fraction` stratified by class to validation."""
    counts = Counter(split["label"])
    classes, total = len(counts), len(split)
    minimum = max(math.floor((classes - 1) / fraction) + 1, 2 * classes)  # ceil(fraction * n) faces of each class
    if total < minimum:
        raise DatasetFormatError(f"{source}: {total} images of {classes} classes; splitting off a validation part "
                                 f"({fraction:.0%}, every class in it) needs at least {minimum}")
    scarce = sorted(split.features["label"].int2str(label) for label, n in counts.items() if n < 2)
    if scarce:
        raise DatasetFormatError(f"{source}: {', '.join(scarce)} {'has' if len(scarce) == 1 else 'have'} one image; "
                                 "every class needs at least 2 (one to train on, one to validate)")


PERSONS_HELD_OUT = 0.5
"""The share of a collection's images (whole persons) that training never sees; half of them select and calibrate
(`calibration`), the other half are only ever measured (`test`)."""


def person_splits(source: str, held_out: float = PERSONS_HELD_OUT, keep_columns: tuple[str, ...] = ()) -> DatasetDict:
    """Every image of `source` (all its splits; a `subject` column names the person) split by person into `train`,
    `calibration` and `test` (`held_out` of the images, halved): no person is in two of them (`split_by_person`).
    The split is fixed (seed 0), so that every run and benchmark holds out the same persons. `keep_columns`:
    other columns to keep (`source`, say)."""
    whole = read_splits(source, keep_columns=("subject", *keep_columns))
    whole = concatenate_datasets(list(whole.values())) if len(whole) > 1 else next(iter(whole.values()))
    if "subject" not in whole.column_names:
        raise DatasetFormatError(f"{source} has no subject column to split by person")
    held = np.flatnonzero(split_by_person(whole["subject"], whole["label"], held_out))
    test = split_by_person([whole["subject"][i] for i in held], [whole["label"][i] for i in held], 0.5, seed=1)
    return DatasetDict({"train": whole.select(np.setdiff1d(np.arange(len(whole)), held)),
                        "calibration": whole.select(held[~test]), "test": whole.select(held[test])})


def split_by_person(subjects: list[str], labels: list[int], held_out: float, seed: int = 0) -> np.ndarray:
    """A boolean mask of the images held out: whole persons, about `held_out` of the images of each class.
    Persons go one by one, those of the rarest classes first (seeded order among equals), to the side that holds
    less than its share of their rarest class, so that a class of a few persons still lands on both sides."""
    subjects, labels = np.asarray(subjects), np.asarray(labels)
    class_counts = np.bincount(labels)
    persons = np.random.default_rng(seed).permutation(np.unique(subjects))
    rarest = {person: min(labels[subjects == person], key=lambda c: class_counts[c]) for person in persons}
    persons = sorted(persons, key=lambda person: class_counts[rarest[person]])  # stable: seeded among equals
    held_counts, kept_counts = np.zeros_like(class_counts), np.zeros_like(class_counts)
    held = np.zeros(len(labels), dtype=bool)
    for person in persons:
        mine = subjects == person
        c = rarest[person]
        to_held = held_counts[c] * (1 - held_out) <= kept_counts[c] * held_out
        held |= mine & to_held
        np.add.at(held_counts if to_held else kept_counts, labels[mine], 1)
    return held


def load_split(source: str, split: str, own_labels: bool = False) -> Dataset:
    """One split of `source` (train, validation, test or an alias such as PublicTest), with no other split needed."""
    dataset = read_splits(source, own_labels)
    name = SPLIT_ALIASES.get(split.lower(), split)
    if name not in dataset:
        raise DatasetFormatError(f"split {split!r} not in {source} (splits: {sorted(dataset)})")
    return dataset[name]


def read_splits(source: str, own_labels: bool = False, keep_columns: tuple[str, ...] = ()) -> DatasetDict:
    """Every split of `source` as it is, canonical names and labels (`to_canonical`), and the `keep_columns`
    it has."""
    path = Path(source)
    if not path.exists() and (path.is_absolute() or source.startswith((".", "~")) or source.count("/") != 1
                              or path.suffix == ".csv"):
        raise DatasetFormatError(f"no such dataset folder or file: {source} (a Hub dataset id looks like user/name)")
    csv = path if path.suffix == ".csv" else next(iter(sorted(path.glob("*.csv"))), None) if path.is_dir() else None
    with _quiet_dataset_cards(), _no_bars_for(path):
        if path.suffix == ".parquet" and path.is_file():
            dataset = load_dataset("parquet", data_files={"train": str(path)})
        elif csv is not None:
            dataset = _from_kaggle_csv(csv)
        elif path.is_dir() and _is_image_folder(path):
            dataset = load_dataset("imagefolder", data_dir=str(path))
        elif path.is_dir():
            dataset = load_dataset(str(path))
        else:
            try:
                dataset = load_dataset(source)
            except (ConnectionError, FileNotFoundError, DatasetNotFoundError) as err:
                raise DatasetFormatError(f"no such dataset folder: {source}, and no Hub dataset {source} could be "
                                         f"loaded ({type(err).__name__})") from err
        dataset = DatasetDict({SPLIT_ALIASES.get(name.lower(), name): split for name, split in dataset.items()})
        return DatasetDict({name: with_votes(to_canonical(split, own_labels, keep_columns), source, name)
                            for name, split in dataset.items()})


def with_votes(split: Dataset, source: str, name: str) -> Dataset:
    """`split` with a `votes` column where the dataset folder has FER+'s votes for it (`train.ferplus`)."""
    from .ferplus import read_votes, votes_file

    path = votes_file(source, name) if Path(source).is_dir() else None
    return split if path is None else split.add_column("votes", read_votes(path, len(split)).tolist())


def split_votes(split: Dataset, limit: int | None = None) -> np.ndarray | None:
    """The (N, 10) FER+ vote counts of the faces `to_tensors(split, limit=limit)` gives (whole faces), or None
    where the split has none."""
    return np.asarray(subset(split, limit)["votes"]) if "votes" in split.column_names else None


def subset(split: Dataset, limit: int | None) -> Dataset:
    """The seeded subset of `limit` images that training and evaluation read with a limit (all without one)."""
    return split if limit is None else split.shuffle(seed=0).select(range(min(limit, len(split))))


@contextmanager
def _quiet_dataset_cards():
    """A dataset folder whose README.md has no YAML block makes huggingface_hub warn on every load."""
    logger = logging.getLogger("huggingface_hub.repocard")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextmanager
def _no_bars_for(path: Path):
    """No progress bars ("Downloading data" among them) while `datasets` reads a local folder or file."""
    import datasets

    quiet = path.exists() and not datasets.are_progress_bars_disabled()
    if quiet:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if quiet:
            datasets.enable_progress_bars()


def to_canonical(split: Dataset, own_labels: bool = False, keep_columns: tuple[str, ...] = ()) -> Dataset:
    """Columns `image` and `label` (and those of `keep_columns` the split has). Labels that name FER-2013's
    emotions (any subset, aliases too) are remapped by name onto its 7-label order; other label sets, or any
    with `own_labels`, are kept as the data names them."""
    image_column = next((name for name, f in split.features.items() if isinstance(f, Image)), None)
    label_column = next((name for name, f in split.features.items() if isinstance(f, ClassLabel)), None)
    if image_column is None or label_column is None:
        raise DatasetFormatError(f"expected an image column and a ClassLabel column, found {dict(split.features)}")
    names = split.features[label_column].names
    kept = [c for c in keep_columns if c in split.column_names and c not in (image_column, label_column)]
    split = split.select_columns([image_column, label_column, *kept]).rename_columns(
        {image_column: "image", label_column: "label"})
    extra = {c: split.features[c] for c in kept}
    mapping = None if own_labels else map_label_names(names)
    if mapping is None:
        own = [n.strip().lower() for n in names]
        if len(set(own)) != len(own):
            raise DatasetFormatError(f"label names {list(names)} repeat themselves")
        return split.cast(Features({"image": Image(), "label": ClassLabel(names=own), **extra}))
    if mapping != list(range(len(EMOTIONS))):
        split = split.map(lambda batch: {"label": [mapping[i] for i in batch["label"]]}, batched=True,
                          features=Features({"image": split.features["image"], "label": FEATURES["label"], **extra}))
    return split.cast(Features({**FEATURES, **extra}))


def map_label_names(names: list[str]) -> list[int] | None:
    """For each dataset label name, its FER-2013 id; None when some name is not one of the 7 emotions."""
    canonical = [LABEL_ALIASES.get(n.strip().lower(), n.strip().lower()) for n in names]
    if any(c not in EMOTIONS for c in canonical) or len(set(canonical)) != len(canonical):
        return None
    return [EMOTIONS.index(c) for c in canonical]


def _is_image_folder(path: Path) -> bool:
    """Images in class folders: FOLDER/<label>/<image>, or FOLDER/<split>/<label>/<image>."""
    return any(f.suffix.lower() in IMAGE_SUFFIXES for pattern in ("*/*", "*/*/*") for f in path.glob(pattern))


def _from_kaggle_csv(csv: Path) -> DatasetDict:
    import pandas as pd

    table = pd.read_csv(csv)
    missing = {"emotion", "pixels"} - set(table.columns)
    if missing:
        raise DatasetFormatError(f"{csv} lacks the Kaggle FER-2013 columns {sorted(missing)}")
    usage = table["Usage"] if "Usage" in table else pd.Series(["Training"] * len(table))
    splits = {}
    for kaggle_name, split in KAGGLE_USAGE.items():
        rows = table[usage == kaggle_name]
        if len(rows):
            images = [_pixels_to_image(p) for p in rows["pixels"]]
            splits[split] = Dataset.from_dict({"image": images, "label": rows["emotion"].astype(int).tolist()},
                                              features=FEATURES)
    if not splits:
        raise DatasetFormatError(f"{csv}: no rows with Usage in {list(KAGGLE_USAGE)}")
    return DatasetDict(splits)


def _pixels_to_image(pixels: str):
    from PIL import Image as PILImage

    values = np.array(pixels.split(), dtype=np.uint8)
    side = int(round(len(values) ** 0.5))
    if side * side != len(values):
        raise DatasetFormatError(f"a pixels row has {len(values)} values, not a square image")
    return PILImage.fromarray(values.reshape(side, side), "L")


def to_tensors(split: Dataset, image_size: int = 48, limit: int | None = None,
               faces: str = "whole") -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a split once into uint8 faces (N, size, size) and int64 labels (N,). `faces` "whole" resizes each
    image whole; "crop" finds its face as `predict` does and keeps images with exactly one (`face_crops`)."""
    split = subset(split, limit)
    if faces == "crop":
        crops, labels, _ = face_crops(split, image_size)
        return torch.from_numpy(crops), torch.tensor(labels, dtype=torch.int64)
    crops = np.stack([to_face_array(image, image_size) for image in split["image"]])
    return torch.from_numpy(crops), torch.tensor(split["label"], dtype=torch.int64)


def face_crops(split: Dataset, image_size: int = 48) -> tuple[np.ndarray, list[int], dict]:
    """Each image's one face, cropped as `predict` crops it (a face-sized image whole): uint8 faces (N, size,
    size), their labels, and how many images were used and skipped (no face, several faces), also printed."""
    from functools import partial

    from fer_model.detection import create_detector
    from fer_model.predictor import find_faces, single_faces

    crops, kept, counts, _ = single_faces(partial(find_faces, create_detector(), size=image_size), split["image"])
    every_label = split["label"]
    labels = [every_label[i] for i in kept]
    unreadable = counts.pop("unreadable")  # a dataset's images decode; one too small to be an image is skipped
    print(f"faces: {counts['used']} of {len(split)} images used; skipped {counts['no face']} with no face and "
          f"{counts['several faces']} with several" + (f", {unreadable} unusable" if unreadable else ""))
    if not crops:
        raise DatasetFormatError("no image has exactly one face: check the folder, or train on whole images "
                                 "with --faces whole")
    return np.stack(crops), labels, counts


def faces_mode(option: str, source: str) -> str:
    """`--faces`: "crop" or "whole" as given; "auto" crops in a folder of images in class subfolders (photos,
    as `predict` sees them) and takes a dataset's images (FER-2013's crops) whole."""
    if option != "auto":
        return option
    path = Path(source)
    return "crop" if path.is_dir() and not any(path.glob("*.csv")) and _is_image_folder(path) else "whole"
