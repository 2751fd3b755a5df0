"""FER+'s ten raters' votes for FER-2013's faces (Barsoum et al., 2016): the vote shares over the 7 emotions as
soft targets, and the raters' majority as a second label to read the model against.

A FER-2013 `datasets` folder with a `ferplus/` folder beside its data (`ferplus/train.parquet`,
`ferplus/validation.parquet`: one row of vote counts per row of the split, in the split's order, joined on `idx`)
gets a `votes` column in those splits (`train.data.read_splits`). The columns are FER+'s: neutral, happiness,
surprise, sadness, anger, disgust, fear, contempt, unknown and NF (not a face).

- **Contempt and unknown** votes are dropped and the emotions' votes renormalised: the product has no contempt
  class, and the 165 train faces most raters call contempt carry every FER-2013 label (angry 60, disgust 30,
  fear 27, sad 22, neutral 16, ...), so no one emotion stands for it.
- **Not a face**: a face with no vote for any of the 7 emotions (152 train faces, nearly all NF) has no target
  and is left out of training on the votes.
- **The majority** is the top vote over all 10 columns when it is unique and one of the 7 emotions; faces without
  one (ties; contempt, unknown or NF on top) are left out of the majority accuracy.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_model.config import EMOTIONS

FOLDER = "ferplus"
COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
EMOTION_COLUMNS = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness", "sad": "sadness",
                   "surprise": "surprise", "neutral": "neutral"}
"""FER+'s column of each of FER-2013's emotions."""
TO_EMOTIONS = np.array([COLUMNS.index(EMOTION_COLUMNS[e]) for e in EMOTIONS])
"""Column indices that reorder FER+'s 10 columns into FER-2013's 7 emotions."""


def votes_file(source: str | Path, split: str) -> Path | None:
    """The votes of `split` of the dataset folder `source`, where it has them."""
    path = Path(source) / FOLDER / f"{split}.parquet"
    return path if path.is_file() else None


def read_votes(path: Path, rows: int) -> np.ndarray:
    """(rows, 10) int vote counts in FER+'s column order, row i for the split's row i; a file that does not cover
    the split's rows one to one is refused (`train.data.DatasetFormatError`)."""
    import pyarrow.parquet as pq

    from .data import DatasetFormatError

    table = pq.read_table(path)
    missing = [c for c in ("idx", *COLUMNS) if c not in table.column_names]
    if missing:
        raise DatasetFormatError(f"{path} lacks the FER+ columns {missing}")
    idx = table.column("idx").to_numpy()
    if len(idx) != rows or not np.array_equal(np.sort(idx), np.arange(rows)):
        raise DatasetFormatError(f"{path} has votes for {len(idx)} rows (idx {idx.min()}..{idx.max()}), the split "
                                 f"{rows}: they must join one to one on idx")
    votes = np.stack([table.column(c).to_numpy() for c in COLUMNS], axis=1).astype(np.int64)
    return votes[np.argsort(idx)]


def shares(votes) -> np.ndarray:
    """(N, 7) float32 vote shares over FER-2013's emotions, contempt and unknown dropped; a row with no emotion
    vote is all zeros (`has_target`)."""
    emotion_votes = np.asarray(votes, dtype=np.float64)[:, TO_EMOTIONS]
    total = emotion_votes.sum(1, keepdims=True)
    return np.divide(emotion_votes, total, out=np.zeros_like(emotion_votes), where=total > 0).astype(np.float32)


def has_target(votes) -> np.ndarray:
    """Whether each face has at least one vote for one of the 7 emotions (a row of `shares` that sums to 1)."""
    return np.asarray(votes)[:, TO_EMOTIONS].sum(1) > 0


def majority(votes) -> np.ndarray:
    """The raters' majority as a FER-2013 label id per face; -1 where the top vote over all 10 columns is tied or
    not an emotion."""
    votes = np.asarray(votes)
    top = votes.max(1, keepdims=True)
    unique = (votes == top).sum(1) == 1
    column = votes.argmax(1)
    to_label = np.full(len(COLUMNS), -1)
    to_label[TO_EMOTIONS] = np.arange(len(EMOTIONS))
    return np.where(unique, to_label[column], -1)


def targets(labels, votes, mix: float) -> np.ndarray:
    """(N, 7) training targets: `mix` of the vote shares and 1 - `mix` of FER-2013's one-hot label. A face with no
    emotion vote keeps its label alone (training leaves such faces out: `has_target`)."""
    onehot = np.eye(len(EMOTIONS), dtype=np.float32)[np.asarray(labels)]
    share = shares(votes)
    blended = (1 - mix) * onehot + mix * share
    return np.where(has_target(votes)[:, None], blended, onehot).astype(np.float32)


def agreement(probabilities, votes) -> dict:
    """How probabilities (N, 7) read against the raters: `ferplus_accuracy`, the accuracy on the faces with a
    majority (`ferplus_faces` of them), `ferplus_ece` against that majority, and `ferplus_cross_entropy`, the mean
    cross-entropy to the vote shares of the faces with a target."""
    from fer_model.calibration.fit import calibration_metrics

    p = np.asarray(probabilities, dtype=np.float64)
    label = majority(votes)
    with_majority = label >= 0
    target = has_target(votes)
    cross_entropy = -(shares(votes)[target] * np.log(np.clip(p[target], 1e-12, None))).sum(1).mean()
    return {"ferplus_accuracy": float((p[with_majority].argmax(1) == label[with_majority]).mean()),
            "ferplus_faces": int(with_majority.sum()),
            "ferplus_ece": calibration_metrics(p[with_majority], label[with_majority])["ece"],
            "ferplus_cross_entropy": float(cross_entropy)}
