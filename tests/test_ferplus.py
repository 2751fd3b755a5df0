"""FER+'s raters' votes: joining them to a dataset, the soft targets, the majority metrics, training on them."""
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fer_model import EMOTIONS
from train.data import DatasetFormatError, load_fer_dataset, split_votes
from train.ferplus import COLUMNS, agreement, has_target, majority, shares, targets

from .test_train import SMALL_MODEL


def vote_rows(**counts) -> list[int]:
    """One face's 10 vote counts in FER+'s column order, from keyword counts (NF as nf)."""
    return [counts.get(c.lower() if c != "NF" else "nf", 0) for c in COLUMNS]


def write_votes(folder, split: str, votes: np.ndarray, order=None) -> None:
    """FER+ votes for `split`, rows in `order` (default: reversed, so that only `idx` joins them)."""
    order = np.arange(len(votes))[::-1] if order is None else order
    columns = {"idx": pa.array(order.astype(np.int32)),
               **{c: pa.array(votes[order, i].astype(np.int8)) for i, c in enumerate(COLUMNS)}}
    (folder / "ferplus").mkdir(exist_ok=True)
    pq.write_table(pa.table(columns), folder / "ferplus" / f"{split}.parquet")


def test_contempt_and_unknown_are_dropped_and_a_face_without_emotion_votes_has_no_target():
    votes = np.array([vote_rows(neutral=6, sadness=2, contempt=2), vote_rows(nf=10), vote_rows(happiness=5, unknown=5)])
    share = shares(votes)
    assert share[0, EMOTIONS.index("neutral")] == pytest.approx(0.75) and share[0].sum() == pytest.approx(1)
    assert share[1].sum() == 0 and has_target(votes).tolist() == [True, False, True]
    assert share[2, EMOTIONS.index("happy")] == 1
    mixed = targets([EMOTIONS.index("sad"), 0, 3], votes, 0.5)
    assert mixed[0, EMOTIONS.index("sad")] == pytest.approx(0.5 + 0.5 * 0.25)
    assert mixed[1].tolist() == np.eye(7)[0].tolist()  # no votes: the label alone


def test_the_majority_is_a_unique_top_vote_for_an_emotion():
    votes = np.array([vote_rows(anger=4, disgust=3, fear=3), vote_rows(neutral=5, sadness=5),
                      vote_rows(contempt=6, anger=4), vote_rows(nf=9, surprise=1)])
    assert majority(votes).tolist() == [EMOTIONS.index("angry"), -1, -1, -1]


def test_agreement_reads_the_majority_and_the_cross_entropy_to_the_shares():
    votes = np.array([vote_rows(happiness=10), vote_rows(neutral=5, sadness=5), vote_rows(fear=8, surprise=2)])
    p = np.full((3, 7), 0.01)
    p[0, EMOTIONS.index("happy")] = p[1, EMOTIONS.index("neutral")] = p[2, EMOTIONS.index("surprise")] = 0.94
    scores = agreement(p, votes)
    assert scores["ferplus_faces"] == 2 and scores["ferplus_accuracy"] == 0.5
    expected = -(np.log(0.94) + 0.5 * np.log(0.94) + 0.5 * np.log(0.01) + 0.8 * np.log(0.01) + 0.2 * np.log(0.94)) / 3
    assert scores["ferplus_cross_entropy"] == pytest.approx(expected)


@pytest.fixture(scope="module")
def voted_fer(tiny_fer, tmp_path_factory):
    """The tests' small dataset with votes that all say "happy" for the train faces and the label for validation."""
    folder = tmp_path_factory.mktemp("voted") / "fer"
    shutil.copytree(tiny_fer, folder)
    data = load_fer_dataset(str(folder))
    happy = np.tile(vote_rows(happiness=9, contempt=1), (len(data["train"]), 1))
    write_votes(folder, "train", happy)
    own = np.array([vote_rows(**{COLUMNS[EMOTION_INDEX[label]].lower(): 10}) for label in data["validation"]["label"]])
    write_votes(folder, "validation", own)
    return folder, own


EMOTION_INDEX = {EMOTIONS.index(e): COLUMNS.index(c) for e, c in
                 {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness", "sad": "sadness",
                  "surprise": "surprise", "neutral": "neutral"}.items()}


def test_votes_join_each_split_by_idx_and_follow_a_limited_subset(voted_fer):
    folder, own = voted_fer
    validation = load_fer_dataset(str(folder))["validation"]
    assert np.array_equal(split_votes(validation), own)
    limited = split_votes(validation, limit=20)
    assert limited.shape == (20, 10)
    labels = validation.shuffle(seed=0).select(range(20))["label"]  # to_tensors' subset, face for face
    assert majority(limited).tolist() == labels


def test_votes_that_do_not_cover_the_split_are_refused_in_one_line(tiny_fer, tmp_path):
    folder = tmp_path / "fer"
    shutil.copytree(tiny_fer, folder)
    write_votes(folder, "validation", np.tile(vote_rows(neutral=10), (5, 1)))
    with pytest.raises(DatasetFormatError, match="must join one to one on idx"):
        load_fer_dataset(str(folder))


def test_training_on_the_votes_learns_them_and_reports_the_raters_majority(voted_fer, tmp_path):
    """Votes that call every train face happy pull a model trained on them toward happy, where one trained on the
    labels (spread over 7 classes) does not; the history and the metrics read the validation majority."""
    from fer_model.hub import load_pretrained
    from fer_model.preprocess import normalize
    from train.data import to_tensors
    from train.train import main

    folder, _ = voted_fer
    common = [*SMALL_MODEL, "--dataset", str(folder), "--epochs", "4", "--lr", "0.01", "--warmup-epochs", "0",
              "--ema-decay", "0", "--label-smoothing", "0",
              "--monitor", "val_agreement", "--min-delta", "-1", "--patience", "9"]
    main([*common, "--output-dir", str(tmp_path / "labels")])
    main([*common, "--vote-mix", "1", "--output-dir", str(tmp_path / "votes")])
    faces, _ = to_tensors(load_fer_dataset(str(folder))["validation"])

    def happy_share(run):
        import torch

        model, config = load_pretrained(tmp_path / run)
        with torch.no_grad():
            return model(normalize(faces, config.preprocessing)).softmax(1)[:, EMOTIONS.index("happy")].mean().item()

    assert happy_share("votes") > 0.5 > happy_share("labels")
    history = [json.loads(line) for line in (tmp_path / "votes" / "metrics.jsonl").read_text().splitlines()]
    assert {"val_ferplus_accuracy", "val_ferplus_cross_entropy", "val_agreement"} <= set(history[-1])
    metrics = json.loads((tmp_path / "votes" / "metrics.json").read_text())["validation"]
    assert metrics["ferplus_faces"] == 128 and 0 <= metrics["ferplus_accuracy"] <= 1
    assert "FER+ maj." in (tmp_path / "votes" / "classification_report.txt").read_text()


def test_vote_mix_without_votes_is_one_line(tiny_fer, tmp_path):
    from train.train import main

    with pytest.raises(SystemExit, match="has no FER\\+ votes"):
        main([*SMALL_MODEL, "--dataset", str(tiny_fer), "--vote-mix", "0.5", "--output-dir", str(tmp_path / "x")])


def test_a_bundle_in_parts_rebuilds_the_data_and_trains_teachers_from_it(voted_fer, tmp_path):
    """Packed into parts smaller than the data, the dataset (votes included) unpacks equal to the original, and two
    teachers train side by side from the unpacked copy, each writing its weights and history."""
    from train.bundle import BundleError, pack, unpack, verify
    from train.teachers import main as teachers

    folder, _ = voted_fer
    manifest = pack([folder], tmp_path / "bundle", part_mib=0.5)
    assert len(manifest["parts"]) >= 2
    assert manifest["datasets"]["fer"]["copied"] == ["ferplus/train.parquet", "ferplus/validation.parquet"]
    assert set(verify(tmp_path / "bundle", [folder])) >= {"fer/data/train-00000-of-00001.parquet",
                                                           "fer/ferplus/train.parquet"}
    (unpacked,) = unpack(tmp_path / "bundle", tmp_path / "data")
    summary = teachers(["--dataset", str(unpacked), "--output-dir", str(tmp_path / "teachers"), "--minutes", "5",
                        "--teacher", "votes=--vote-mix 1", "--teacher", "labels=--seed 1", "--",
                        *SMALL_MODEL, "--epochs", "1"])
    for name in ("votes", "labels"):
        assert summary[name]["exit_code"] == 0 and summary[name]["best_epoch"]["epoch"] == 1
        assert (tmp_path / "teachers" / name / "model.safetensors").is_file()
        assert not (tmp_path / "teachers" / name / "model_int8.onnx").exists()  # --skip-finish
    assert "val_ferplus_accuracy" in summary["votes"]["best_epoch"]
    shutil.rmtree(tmp_path / "bundle" / manifest["parts"][-1]["folder"])
    with pytest.raises(BundleError, match="is missing"):
        unpack(tmp_path / "bundle", tmp_path / "again")
