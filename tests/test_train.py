"""Training end to end on small data: outputs, early stopping, resume after SIGTERM/SIGKILL, loaders, evaluate, Hub push."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, load_dataset
from datasets import Image as ImageFeature
from PIL import Image

from fer_model import EMOTIONS, EmotionRecognizer
from train.data import DatasetFormatError, load_fer_dataset, map_label_names, to_canonical, to_tensors
from train.train import Progress

from .conftest import ROOT, subprocess_env

SMALL_MODEL = ["--widths", "8,16,32,64", "--hidden", "32", "--batch-size", "32", "--limit-train", "256",
               "--limit-val", "128"]


@pytest.fixture(scope="module")
def tiny(tiny_fer):
    """Arguments of a small model on the small dataset made by the tests."""
    return [*SMALL_MODEL, "--dataset", str(tiny_fer)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny):
    """One epoch on 256 faces."""
    from train.train import main

    out = tmp_path_factory.mktemp("run")
    results = main([*tiny, "--epochs", "1", "--output-dir", str(out)])
    return out, results


def test_one_epoch_writes_a_loadable_model_card_and_metrics(trained):
    out, results = trained
    for name in ["config.json", "model.safetensors", "README.md", "metrics.json", "metrics.jsonl", "command.txt",
                 "confusion_matrix.png", "learning_curves.png", "reliability.png", "classification_report.txt"]:
        assert (out / name).is_file(), name
    recognizer = EmotionRecognizer.from_pretrained(out)
    assert recognizer.config.model.widths == (8, 16, 32, 64)
    metrics = json.loads((out / "metrics.json").read_text())["validation"]
    assert metrics["num_examples"] == 128 and 0 <= metrics["accuracy"] <= 1
    assert metrics["accuracy"] == results["accuracy"]
    assert sum(map(sum, metrics["confusion_matrix"])) == 128
    card = (out / "README.md").read_text()
    assert "model-index" in card and "python -m train.train" in card and "--limit-train 256" in card
    assert f"{metrics['accuracy']:.4f}" in card
    assert "Trained for 1 epoch in" in card and json.loads((out / "metrics.jsonl").read_text())["device"] in card
    assert (out / "checkpoint").is_dir()


def test_early_stopping_on_a_metric_that_does_not_improve(tmp_path, tiny, capsys):
    from train.train import main

    main([*tiny, "--epochs", "10", "--patience", "2", "--min-delta", "100", "--output-dir", str(tmp_path)])
    history = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert "early stop" in capsys.readouterr().out


@pytest.mark.parametrize("balance", ["loss", "sampler"])
def test_class_balancing_runs(tmp_path, tiny, balance):
    from train.train import main

    results = main([*tiny, "--epochs", "1", "--balance", balance, "--output-dir", str(tmp_path)])
    assert results["num_examples"] == 128


def test_mixup_cutmix_and_sparse_checkpoints(tmp_path, tiny):
    from train.train import main

    main([*tiny, "--epochs", "3", "--mixup", "0.2", "--cutmix", "1.0", "--checkpoint-every", "2",
          "--patience", "10", "--output-dir", str(tmp_path)])
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3
    main([*tiny, "--epochs", "3", "--resume", "--output-dir", str(tmp_path)])  # the last epoch was saved: nothing left
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3
    with pytest.raises(SystemExit):
        main([*tiny, "--batch-size", "31", "--mixup", "0.2", "--output-dir", str(tmp_path)])


def test_time_budget_fits_the_schedule_to_the_minutes_left(monkeypatch):
    from types import SimpleNamespace

    from train import train

    clock = [0.0]
    monkeypatch.setattr(train.time, "monotonic", lambda: clock[0])
    budget, scheduler = train.TimeBudget(minutes=1, max_epochs=400), SimpleNamespace(t_initial=400 * 10)
    clock[0] = 5.0  # the first epoch pays for warm-up and is not counted
    assert not budget.fit(scheduler, 1, steps_per_epoch=10)
    clock[0] = 7.0  # 2 s an epoch, 53 s left: 26 more epochs
    assert budget.fit(scheduler, 2, steps_per_epoch=10) and train.epochs(scheduler, 10) == 28
    clock[0] = 8.0  # faster now (1.5 s an epoch on average): the end moves out, never past --epochs
    assert budget.fit(scheduler, 3, steps_per_epoch=10) and train.epochs(scheduler, 10) == 3 + 34
    clock[0] = 100.0  # over budget: stop after this epoch
    budget.fit(scheduler, 4, steps_per_epoch=10)
    assert train.epochs(scheduler, 10) == 4


def test_finish_reads_the_split_sizes_from_the_recorded_command():
    from train.finish import training_arguments

    run = training_arguments("python -m train.train --dataset x --epochs 3\npython -m train.train --dataset x "
                             "--limit-train 256 --resume")
    assert run.limit_train == 256 and run.resume
    assert training_arguments("(command not recorded)") is None and training_arguments("") is None


def test_class_weights_favour_rare_classes():
    from train.train import class_weights

    weights = class_weights(torch.tensor([0] * 90 + [1] * 10), 2)
    assert weights[1] / weights[0] == pytest.approx(3.0)


def test_same_seed_same_weights(trained, tmp_path, tiny):
    from train.train import main

    out, _ = trained
    main([*tiny, "--epochs", "1", "--output-dir", str(tmp_path)])
    assert (tmp_path / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()


def test_progress_tracks_the_best_score():
    progress = Progress()
    assert [progress.update(s, lower_is_better=True) for s in (1.0, 0.9, 0.95, 0.91)] == [True, True, False, False]
    assert progress.best == 0.9 and progress.bad_epochs == 2
    accuracy = Progress()
    assert [accuracy.update(s, lower_is_better=False, min_delta=0.01) for s in (0.5, 0.505, 0.52)] == [True, False, True]


def _training(out, tiny, *extra):
    """The command and environment of a 6-epoch run on 1,024 images, in a process of its own."""
    env = subprocess_env(PYTHONUNBUFFERED="1")
    return [sys.executable, "-m", "train.train", *tiny, "--limit-train", "1024", "--epochs", "6",
            "--output-dir", str(out), *extra], env


def _start(out, tiny):
    command, env = _training(out, tiny)
    log = open(out / "train.log", "w")  # a file, not a pipe: a full pipe would block the run
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def _interrupt_after_first_epoch(process, out, sig):
    deadline = time.time() + 300
    while not (out / "checkpoint").is_dir():
        assert process.poll() is None and time.time() < deadline, (out / "train.log").read_text()
        time.sleep(0.1)
    time.sleep(0.2)
    process.send_signal(sig)
    return process.wait(timeout=300), (out / "train.log").read_text()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_run_resumes_with_every_epoch_accounted_for(tmp_path, tiny, sig):
    code, output = _interrupt_after_first_epoch(_start(tmp_path, tiny), tmp_path, sig)
    if sig == signal.SIGTERM:
        assert code == 143 and "SIGTERM: stopped at epoch" in output, output
    else:
        assert code == -signal.SIGKILL
    resumed = _start_resume(tmp_path, tiny)
    assert "resumed from" in resumed
    if sig == signal.SIGTERM:
        assert ", step 0" not in resumed.split("resumed from")[1].splitlines()[0]  # mid-epoch, not a restart
    history = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "README.md").is_file()


def _start_resume(out, tiny):
    command, env = _training(out, tiny, "--resume")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _face(value: int) -> Image.Image:
    return Image.fromarray(np.full((48, 48), value, np.uint8))


def test_kaggle_csv_loader(tmp_path):
    rows = [(label, usage) for usage in ("Training", "PublicTest", "PrivateTest") for label in range(7)]
    lines = ["emotion,pixels,Usage"] + [f"{label},{' '.join([str(label * 30)] * 2304)},{usage}" for label, usage in rows]
    (tmp_path / "fer2013.csv").write_text("\n".join(lines) + "\n")
    dataset = load_fer_dataset(str(tmp_path / "fer2013.csv"))
    assert {name: len(split) for name, split in dataset.items()} == {"train": 7, "validation": 7, "test": 7}
    faces, labels = to_tensors(dataset["validation"])
    assert faces.shape == (7, 48, 48)
    assert (faces[:, 0, 0] == labels * 30).all()
    assert dataset["train"].features["label"].names == list(EMOTIONS)


def test_image_folder_loader_remaps_alphabetical_labels(tmp_path):
    for split, per_class in (("train", 10), ("test", 2)):
        for label_id, name in enumerate(EMOTIONS):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                _face(label_id * 30).save(folder / f"{i}.jpg", quality=100)
    dataset = load_fer_dataset(str(tmp_path))
    assert set(dataset) == {"train", "validation", "test"}
    assert len(dataset["train"]) + len(dataset["validation"]) == 70 and len(dataset["test"]) == 14
    assert sorted(dataset["validation"]["label"]) == sorted(list(range(7)) * 3)  # stratified: 30% of 70 faces
    for split in dataset.values():
        faces, labels = to_tensors(split)
        assert (np.abs(faces[:, 24, 24].int() - labels.int() * 30) <= 3).all()


def _image_folder(root, per_class: dict[str, int]):
    for label_id, (name, count) in enumerate(per_class.items()):
        (root / "train" / name).mkdir(parents=True)
        for i in range(count):
            _face(label_id * 30 + i).save(root / "train" / name / f"{i}.png")
    return root


@pytest.mark.parametrize("per_class, says", [({"happy": 2, "sad": 2, "surprise": 2}, "6 images of 3 classes"),
                                             ({"happy": 12, "sad": 12, "surprise": 1}, "surprise has one image")])
def test_too_small_folders_get_a_one_line_error_with_the_minimum(tmp_path, per_class, says):
    from train.data import DatasetFormatError

    with pytest.raises(DatasetFormatError, match=says) as error:
        load_fer_dataset(str(_image_folder(tmp_path, per_class)))
    assert "\n" not in str(error.value) and ("at least 7" in str(error.value) or "at least 2 " in str(error.value))


def test_a_local_folder_loads_without_download_bars(tmp_path, capsys):
    load_fer_dataset(str(_image_folder(tmp_path, {"happy": 10, "sad": 10})))
    assert "Downloading" not in capsys.readouterr().err


def test_few_images_log_per_sample_loss_and_accuracy(tmp_path):
    from train.train import main

    _image_folder(tmp_path / "data", {name: 10 for name in EMOTIONS})  # 49 to train on: fewer than a batch
    main([*SMALL_MODEL, "--batch-size", "128", "--dataset", str(tmp_path / "data"), "--epochs", "1", "--faces", "whole",
          "--output-dir", str(tmp_path / "run")])
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert record["train_accuracy"] * 49 == pytest.approx(round(record["train_accuracy"] * 49))  # a share of 49
    assert record["train_accuracy"] > 0  # (a share of 128 would be k/128: never k'/49 but for 0)


def test_alphabetical_names_are_mapped_by_name():
    alphabetical = sorted(EMOTIONS)
    split = Dataset.from_dict({"img": [_face(0)] * 7, "emotion": list(range(7))},
                              features=Features({"img": ImageFeature(), "emotion": ClassLabel(names=alphabetical)}))
    canonical = to_canonical(split)
    assert canonical.features["label"].names == list(EMOTIONS)
    assert [EMOTIONS[i] for i in canonical["label"]] == alphabetical
    assert map_label_names(["Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Neutral"]) == list(range(7))


def _labelled(names, labels):
    return Dataset.from_dict({"image": [_face(0)] * len(labels), "label": labels},
                             features=Features({"image": ImageFeature(), "label": ClassLabel(names=names)}))


def test_a_label_set_of_its_own_is_kept_and_a_subset_of_fer2013_maps_onto_its_seven():
    own = to_canonical(_labelled(["Negative", "Neutral", "Positive"], [0, 1, 2]))
    assert own.features["label"].names == ["negative", "neutral", "positive"] and own["label"] == [0, 1, 2]
    with_contempt = to_canonical(_labelled([*EMOTIONS, "contempt"], [7, 3]))
    assert with_contempt.features["label"].names == [*EMOTIONS, "contempt"]
    subset = to_canonical(_labelled(["happy", "sad", "surprise"], [0, 1, 2]))
    assert subset.features["label"].names == list(EMOTIONS) and subset["label"] == [3, 4, 5]
    asked = to_canonical(_labelled(["happy", "sad", "surprise"], [0, 1, 2]), own_labels=True)
    assert asked.features["label"].names == ["happy", "sad", "surprise"]
    with pytest.raises(DatasetFormatError, match="repeat"):
        to_canonical(_labelled(["Cat", "cat"], [0, 1]))


def test_prepare_writes_the_canonical_parquet_layout(tmp_path):
    from train.prepare import main

    lines = ["emotion,pixels,Usage"] + [f"{i % 7},{' '.join(['7'] * 2304)},{u}" for i, u in
                                        enumerate(["Training"] * 14 + ["PublicTest"] * 7)]
    (tmp_path / "fer2013.csv").write_text("\n".join(lines) + "\n")
    main(["--dataset", str(tmp_path / "fer2013.csv"), "--out", str(tmp_path / "out")])
    reloaded = load_dataset(str(tmp_path / "out"))
    assert {k: len(v) for k, v in reloaded.items()} == {"train": 14, "validation": 7}
    assert reloaded["train"].features["label"].names == list(EMOTIONS)


def test_evaluate_cli_prints_json(trained, tiny_fer, tmp_path):
    out, _ = trained
    result = subprocess.run([sys.executable, "-m", "train.evaluate", "--model", str(out), "--dataset", str(tiny_fer),
                             "--limit", "64", "--tta", "flip", "--out", str(tmp_path)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env=subprocess_env())
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["num_examples"] == 64 and report["tta"] == "flip" and report["split"] == "validation"
    assert set(report["per_class"]) == set(EMOTIONS) and len(report["confusion_matrix"]) == 7
    assert (tmp_path / "confusion_matrix_validation.png").is_file()


def test_push_to_hub_sends_the_model_files(tmp_path, tiny, monkeypatch):
    import huggingface_hub
    from huggingface_hub.utils import filter_repo_objects

    from train.train import main

    sent = {}
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: sent.update(repo=repo_id))

    def upload_folder(self, folder_path, repo_id, allow_patterns=None, **kw):
        files = [str(p.relative_to(folder_path)) for p in __import__("pathlib").Path(folder_path).rglob("*") if p.is_file()]
        sent["files"] = sorted(filter_repo_objects(files, allow_patterns=allow_patterns))
        return "https://huggingface.co/someone/fer/commit/1"

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    main([*tiny, "--epochs", "1", "--output-dir", str(tmp_path), "--push-to-hub", "--hub-model-id", "someone/fer"])
    assert sent["repo"] == "someone/fer"
    assert sent["files"] == ["README.md", "command.txt", "config.json", "confusion_matrix.png", "learning_curves.png",
                             "metrics.json", "model.onnx", "model.safetensors", "model_int8.onnx", "reliability.png",
                             "yunet.onnx"]


def test_bf16_is_the_default_on_a_cpu_that_has_it():
    from train.train import default_mixed_precision

    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert default_mixed_precision() == ("bf16" if native and not torch.cuda.is_available() else
                                         default_mixed_precision())
    assert default_mixed_precision() in ("bf16", "no")


def test_bf16_on_cpu_trains_a_step_and_saves_loadable_weights(tmp_path, tiny):
    """After a run in fp32 in the same process (as the automatic choice is on a CPU without native bf16):
    every run starts from a fresh accelerate state."""
    from train.train import main

    main([*tiny, "--epochs", "1", "--mixed-precision", "no", "--output-dir", str(tmp_path / "fp32")])
    results = main([*tiny, "--epochs", "1", "--mixed-precision", "bf16", "--output-dir", str(tmp_path / "bf16")])
    assert 0 <= results["accuracy"] <= 1
    recognizer = EmotionRecognizer.from_pretrained(tmp_path / "bf16")
    assert len(recognizer.predict_faces([np.zeros((48, 48), np.uint8)])) == 1


def test_crop_training_and_ten_crop_tta(tmp_path, tiny, monkeypatch):
    from train.train import main

    main([*tiny, "--epochs", "1", "--crop-size", "40", "--output-dir", str(tmp_path)])
    recognizer = EmotionRecognizer.from_pretrained(tmp_path)
    assert recognizer.config.preprocessing.crop_size == 40 and recognizer.config.preprocessing.input_size == 40
    shapes = []
    logits = recognizer.classifier.logits
    monkeypatch.setattr(recognizer.classifier, "logits", lambda x: shapes.append(tuple(x.shape)) or logits(x))
    faces = [np.full((48, 48), v, np.uint8) for v in (10, 200, 90)]
    for mode, views in (("none", 1), ("flip", 2), ("ten_crop", 10)):
        scores = recognizer.predict_faces(faces, tta=mode)
        assert shapes[-1] == (3 * views, 1, 40, 40) and len(scores) == 3
        assert all(sum(s.values()) == pytest.approx(1, abs=1e-5) for s in scores)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"validation", "validation_flip", "validation_ten_crop"} <= set(metrics)
    assert set(recognizer.config.temperatures) == set(recognizer.config.class_biases) == {"none", "flip", "ten_crop"}
    assert metrics["uncertainty"]["method"] == "regularised"  # 128 faces: bounded offsets, base thresholds
    assert all(max(b) - min(b) <= 2 for b in recognizer.config.class_biases.values())


def save_biased_teacher(folder, biases):
    """A small random network with a strong, odd preference (its last layer's `biases`), saved as a model."""
    from fer_model import FERConfig, ModelConfig
    from fer_model.hub import build_model, save_pretrained

    torch.manual_seed(1)
    config = FERConfig(model=ModelConfig(widths=(8, 8, 8, 8), hidden=16))
    teacher = build_model(config)
    with torch.no_grad():
        teacher.head[-1].bias.copy_(torch.tensor(biases))
    save_pretrained(teacher, config, folder)


def test_distillation_moves_the_student_toward_the_teacher(tmp_path, tiny, tiny_fer):
    """A student distilled from a (random) teacher ends closer to the teacher's outputs than one trained on labels."""
    from fer_model.hub import load_pretrained
    from fer_model.preprocess import normalize
    from train.train import main

    save_biased_teacher(tmp_path / "teacher", [3.0, -2, 0, 1, -1, 0.5, 2])
    common = [*tiny, "--epochs", "5", "--label-smoothing", "0", "--warmup-epochs", "0", "--ema-decay", "0",
              "--monitor", "val_accuracy", "--min-delta", "-1", "--patience", "9"]  # keep the last epoch
    main([*common, "--output-dir", str(tmp_path / "plain")])
    main([*common, "--teacher", str(tmp_path / "teacher"), "--kd-weight", "1.0", "--kd-temperature", "2",
          "--output-dir", str(tmp_path / "student")])
    assert f"distilled from `{tmp_path / 'teacher'}`" in (tmp_path / "student" / "README.md").read_text()
    faces, _ = to_tensors(load_fer_dataset(str(tiny_fer))["validation"])

    def probabilities(folder):  # the network's own outputs, before the calibration the run fits at its end
        model, config = load_pretrained(folder)
        with torch.no_grad():
            return model(normalize(faces, config.preprocessing)).softmax(1)

    target = probabilities(tmp_path / "teacher")

    def distance(folder):
        return torch.nn.functional.kl_div(probabilities(folder).log(), target, reduction="batchmean").item()

    assert distance(tmp_path / "student") < distance(tmp_path / "plain") * 0.7


def test_init_from_fine_tunes_the_source_model_with_its_architecture(tmp_path, trained, tiny):
    """With a zero learning rate, fine-tuning keeps the source's weights; its architecture overrides --widths."""
    from fer_model.hub import load_pretrained
    from train.train import main

    source, _ = trained
    main([*tiny, "--init-from", str(source), "--widths", "4,4,4,4", "--epochs", "1", "--lr", "0",
          "--weight-decay", "0", "--warmup-epochs", "0", "--ema-decay", "0", "--output-dir", str(tmp_path / "tuned")])
    before, after = load_pretrained(source)[0], load_pretrained(tmp_path / "tuned")[0]
    assert after.config.widths == (8, 16, 32, 64)
    commands = (tmp_path / "tuned" / "command.txt").read_text().splitlines()
    assert commands[0] == (source / "command.txt").read_text().strip() and "--init-from" in commands[1]
    assert f"Fine-tuned from `{source}`" in (tmp_path / "tuned" / "README.md").read_text()
    for (name, old), new in zip(before.named_parameters(), after.parameters()):
        assert torch.equal(old, new), name
    with pytest.raises(SystemExit, match="error: --init-from: no such model folder"):
        main([*tiny, "--init-from", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "x")])


def test_average_weighs_a_base_and_its_fine_tuned_model_and_finishes_the_result(tmp_path, trained, tiny, capsys):
    """train.average: every float weight is (1 - w) * base + w * fine-tuned, and the result is finished as a run
    (calibrated, int8, card) with the recipe and its own command recorded; other networks are refused in a line."""
    from safetensors.numpy import load_file

    from train.average import main as average
    from train.train import main

    source, _ = trained
    main([*tiny, "--init-from", str(source), "--epochs", "1", "--lr", "0.05", "--output-dir", str(tmp_path / "tuned")])
    average([str(source), str(tmp_path / "tuned"), "--weight", "0.25", "--output-dir", str(tmp_path / "mix"),
             "--dataset", tiny[tiny.index("--dataset") + 1]])
    base, tuned, mix = (load_file(folder / "model.safetensors") for folder in (source, tmp_path / "tuned", tmp_path / "mix"))
    changed = [k for k in base if base[k].dtype.kind == "f" and not np.allclose(base[k], tuned[k])]
    assert changed and all(np.array_equal(mix[k], (0.75 * base[k].astype(np.float64) + 0.25 * tuned[k].astype(
        np.float64)).astype(tuned[k].dtype)) for k in base if base[k].dtype.kind == "f")
    commands = (tmp_path / "mix" / "command.txt").read_text().splitlines()
    assert commands[:-1] == (tmp_path / "tuned" / "command.txt").read_text().splitlines()
    assert commands[-1].startswith("python -m train.average") and "--weight 0.25" in commands[-1]
    assert (tmp_path / "mix" / "model_int8.onnx").is_file() and f"averaged with those of `{source}`" in (
        tmp_path / "mix" / "README.md").read_text()
    with pytest.raises(SystemExit):
        average(["default", str(tmp_path / "tuned"), "--weight", "0.5", "--output-dir", str(tmp_path / "x"),
                 "--dataset", "unused"])
    assert "are not the same network" in capsys.readouterr().err


def test_a_wrong_dataset_path_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "train.train", "--dataset", "no/such/folder", "--output-dir",
                             str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=subprocess_env())
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "error: no such dataset folder or file: no/such/folder (a Hub dataset id looks like user/name)")


def test_evaluate_needs_only_the_split_it_evaluates(tmp_path, trained):
    from train.evaluate import main

    only_test = tmp_path / "only_test"
    faces = [Image.fromarray(np.full((48, 48), 30 * i, np.uint8)) for i in range(7)]
    Dataset.from_dict({"image": faces, "label": list(range(7))},
                      features=Features({"image": ImageFeature(), "label": ClassLabel(names=list(EMOTIONS))})
                      ).to_parquet(only_test / "data" / "test-00000-of-00001.parquet")
    out, _ = trained
    result = main(["--model", str(out), "--dataset", str(only_test), "--split", "test", "--out", str(tmp_path / "eval")])
    assert result["num_examples"] == 7 and (tmp_path / "eval" / "confusion_matrix_test.png").is_file()
    assert result["tta"] == "flip"  # the default, as predict's
    assert not (out / "confusion_matrix_test.png").exists()  # nothing written beside the model


def test_a_folder_of_other_labels_fine_tunes_a_head_of_its_own(tmp_path, trained):
    """positive / negative / neutral: the backbone from the base model, a 3-label head, the labels in config.json
    and in every runtime's output."""
    from train.train import main

    source, _ = trained
    _image_folder(tmp_path / "data", {"negative": 30, "neutral": 30, "positive": 30})
    main(["--dataset", str(tmp_path / "data"), "--init-from", str(source), "--faces", "whole", "--epochs", "1",
          "--batch-size", "32", "--output-dir", str(tmp_path / "run")])
    recognizer = EmotionRecognizer.from_pretrained(tmp_path / "run")
    assert recognizer.labels == ("negative", "neutral", "positive")
    assert set(recognizer.predict_faces([np.full((48, 48), 90, np.uint8)])[0]) == {"negative", "neutral", "positive"}
    from safetensors.torch import load_file

    base, new = load_file(source / "model.safetensors"), load_file(tmp_path / "run" / "model.safetensors")
    assert new["head.6.weight"].shape[0] == 3 and base["head.6.weight"].shape[0] == 7
    assert "positive" in (tmp_path / "run" / "README.md").read_text()


def test_photos_in_a_training_folder_are_cropped_as_predict_crops_them(tmp_path, astronaut, capsys):
    from train.data import face_crops

    canvas = Image.new("RGB", (640, 480), (90, 90, 90))
    canvas.paste(astronaut.resize((256, 256)), (180, 100))
    pair = Image.new("RGB", (1024, 512), (90, 90, 90))
    pair.paste(astronaut, (0, 0)), pair.paste(astronaut, (512, 0))
    tight = Image.fromarray(np.asarray(astronaut)[55:185, 170:280]).resize((48, 48))  # a crop the face fills
    split = Dataset.from_dict({"image": [canvas, pair, Image.new("RGB", (640, 480), (40, 40, 40)), tight],
                               "label": [3, 3, 3, 4]},
                              features=Features({"image": ImageFeature(), "label": ClassLabel(names=list(EMOTIONS))}))
    crops, labels, counts = face_crops(split)
    assert counts == {"used": 2, "no face": 1, "several faces": 1} and labels == [3, 4]
    recognizer = EmotionRecognizer.from_pretrained()
    np.testing.assert_array_equal(crops[0], recognizer.find_faces(np.asarray(canvas))[0][2])  # predict's crop
    assert "2 of 4 images used; skipped 1 with no face and 1 with several" in capsys.readouterr().out


def test_calibrate_refits_on_a_labelled_folder_and_never_does_worse_on_its_held_out_part(tmp_path, capsys):
    from fer_model.cli import main as cli
    from fer_model.config import EMOTIONS as LABELS

    from .conftest import synthetic_faces

    faces = synthetic_faces(400, seed=5)  # 200 to fit on: a regularised fit
    for i, face in enumerate(faces):
        folder = tmp_path / "faces" / ("happy", "sad", "neutral")[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(face).save(folder / f"{i}.png")
    assert cli(["calibrate", str(tmp_path / "faces"), "--out", str(tmp_path / "out")]) == 0
    output = capsys.readouterr().out
    assert "fp32: regularised" in output and "int8: regularised" in output and "recalibrated model written" in output
    recognizer = EmotionRecognizer.from_pretrained(tmp_path / "out")
    assert recognizer.labels == LABELS and (tmp_path / "out" / "model_int8.onnx").is_file()
    from fer_model.calibration.folder import recalibrate

    report = recalibrate(None, tmp_path / "faces", tmp_path / "again")
    for graph in report["graphs"].values():
        for mode in graph["modes"].values():
            kept = mode["after"] if mode["kept"] == "new" else mode["before"]
            assert kept["ece"] <= mode["before"]["ece"] and kept["nll"] <= mode["before"]["nll"]
    (tmp_path / "faces" / "contempt").mkdir()
    Image.fromarray(faces[0]).save(tmp_path / "faces" / "contempt" / "0.png")
    assert cli(["calibrate", str(tmp_path / "faces"), "--out", str(tmp_path / "x")]) == 2
    assert "contempt: not among the model's labels" in capsys.readouterr().err


def test_calibrate_refits_the_large_face_calibration_on_large_faces_only(tmp_path, capsys):
    """A model with a large-face calibration (the embedded one, given one): faces of 128 pixels refit its
    `large_faces` (float and int8) and leave the calibration of small faces as it was (the few faces the detector
    boxes under 96 pixels are too few to refit it). The embedded model, with one calibration, refits that one."""
    from dataclasses import replace

    from fer_model.cli import main as cli
    from fer_model.hub import copy_pretrained, read_config, resolve

    from .conftest import synthetic_faces

    for i, face in enumerate(synthetic_faces(400, seed=5)):
        folder = tmp_path / "faces" / ("happy", "sad", "neutral")[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(face).resize((128, 128)).save(folder / f"{i}.png")
    embedded = read_config(resolve(None))
    section = {"min_side": 96, "temperatures": {"none": 1.2, "flip": 1.2}, "class_biases": {},
               "uncertainty": {"min_confidence": 0.5, "min_margin": 0.2}}
    copy_pretrained(resolve(None), replace(embedded, large_faces=section, int8={**embedded.int8, "large_faces": section}),
                    tmp_path / "model")
    assert cli(["--model", str(tmp_path / "model"), "calibrate", str(tmp_path / "faces"), "--out",
                str(tmp_path / "out")]) == 0
    output = capsys.readouterr().out
    assert "fp32, large faces: regularised" in output and "int8, large faces: regularised" in output
    assert "fp32: regularised" not in output and "int8: regularised" not in output  # the few the detector boxed under 96 px
    before, after = read_config(tmp_path / "model"), read_config(tmp_path / "out")
    for precision in ("fp32", "int8"):
        kept, own = after.calibration(precision), before.calibration(precision)
        assert (kept.temperatures, kept.class_biases, kept.uncertainty) == (own.temperatures, own.class_biases, own.uncertainty)
    assert after.large_faces != before.large_faces and after.int8["large_faces"] != before.int8["large_faces"]
    assert after.large_faces["min_side"] == after.int8["large_faces"]["min_side"] == 96
    assert cli(["calibrate", str(tmp_path / "faces"), "--out", str(tmp_path / "embedded")]) == 0
    output = capsys.readouterr().out
    assert "fp32: regularised" in output and "large faces" not in output
    assert not read_config(tmp_path / "embedded").large_faces


def test_calibrate_on_too_few_faces_says_nothing_changed_and_writes_nothing(tmp_path, capsys):
    """48 faces are too few to fit anything: one line says so, with no "kept the new calibration", and no model."""
    from fer_model.cli import main as cli

    from .conftest import synthetic_faces

    for i, face in enumerate(synthetic_faces(48, seed=6)):
        folder = tmp_path / "faces" / ("happy", "sad")[i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(face).save(folder / f"{i}.png")
    assert cli(["calibrate", str(tmp_path / "faces"), "--out", str(tmp_path / "out")]) == 0
    output = capsys.readouterr().out.strip().splitlines()
    assert len(output) == 1 and output[0].startswith("nothing changed") and "kept the new" not in output[0]
    assert not (tmp_path / "out").exists()


def test_a_folder_of_photos_is_validated_and_calibrated_on_its_face_crops(tmp_path, trained, astronaut, monkeypatch):
    """The end of a fine-tuning on photos crops their faces as the epochs did (not the whole photo), and its
    card names the folder, not FER-2013."""
    import train.train as trainer

    rng = np.random.default_rng(0)
    for label in ("happy", "sad"):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for i in range(12):
            canvas = Image.new("RGB", (480, 360), tuple(int(v) for v in rng.integers(40, 200, 3)))
            side = int(rng.integers(150, 220))
            canvas.paste(astronaut.resize((side, side)), (int(rng.integers(0, 480 - side)), int(rng.integers(0, 360 - side))))
            canvas.save(tmp_path / "photos" / label / f"{i}.jpg")
    seen = []
    monkeypatch.setattr(trainer, "range_faces", lambda split, size, faces: seen.append(faces) or np.zeros((4, 48, 48), np.uint8))
    finish = trainer.finish_run
    monkeypatch.setattr(trainer, "finish_run", lambda *args, **kwargs: seen.append(kwargs["faces"]) or finish(*args, **kwargs))
    source, _ = trained
    trainer.main(["--dataset", str(tmp_path / "photos"), "--init-from", str(source), "--epochs", "1",
                  "--batch-size", "8", "--output-dir", str(tmp_path / "run")])
    assert seen == ["crop", "crop"]
    card = (tmp_path / "run" / "README.md").read_text()
    assert "photos (its validation split)" in card and "PublicTest" not in card


def test_real_faces_of_other_persons_train_validate_and_calibrate_beside_fer(tmp_path, tiny, astronaut):
    """--extra-dataset: its training persons' faces (cropped as predict crops them) join the epoch, its held-out
    persons are validated every epoch (`val_combined` selects on them), and the finish fits one temperature on
    them and validation together (float and int8, no class offsets) and reports them apart, in metrics.json and
    the card."""
    from datasets import ClassLabel, Dataset, Features, Value
    from datasets import Image as ImageFeature

    from train.train import main

    rng = np.random.default_rng(0)
    photos = []
    for _ in range(80):
        canvas = Image.new("RGB", (240, 200), tuple(int(v) for v in rng.integers(40, 200, 3)))
        side = int(rng.integers(110, 170))
        canvas.paste(astronaut.resize((side, side)), (int(rng.integers(0, 240 - side)), int(rng.integers(0, 200 - side))))
        photos.append(canvas)
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=list(EMOTIONS)), "subject": Value("string")})
    (tmp_path / "wild" / "data").mkdir(parents=True)
    Dataset.from_dict({"image": photos, "label": [(3, 6)[i % 2] for i in range(80)],
                       "subject": [f"person_{i // 2}" for i in range(80)]},
                      features=features).to_parquet(tmp_path / "wild" / "data" / "dev-00000-of-00001.parquet")
    main([*tiny, "--epochs", "2", "--extra-dataset", str(tmp_path / "wild"), "--extra-balance", "--capture", "0.5",
          "--monitor", "val_combined", "--output-dir", str(tmp_path / "run")])
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["val_combined"] == pytest.approx((r["val_accuracy"] + r["extra_balanced_accuracy"]) / 2) for r in records)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    real = metrics["real_faces"]["flip"]
    assert 0 < real["faces"] < 40 and 0 <= real["accuracy"] <= 1 and "real" in metrics["int8"]["by_tta"]["flip"]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert not config["large_faces"] and not config["int8"].get("large_faces")
    assert config["class_biases"] == config["int8"]["class_biases"] == {}
    assert set(config["temperatures"]) == set(config["int8"]["temperatures"]) == {"none", "flip"}
    assert metrics["uncertainty"]["method"] == "across sources" and metrics["uncertainty"]["min_confidence"] > 0
    assert "Real faces of other sources" in (tmp_path / "run" / "README.md").read_text()


def test_kd_extra_distils_the_extra_faces_too(tmp_path, tiny, astronaut):
    """Without --kd-extra, --extra-dataset's faces learn their labels (all happy here); with it, the teacher's
    reading of them (a strong preference for angry): the network (before calibration) reads them as its teacher does."""
    from datasets import ClassLabel, Dataset, Features, Value
    from datasets import Image as ImageFeature

    from train.train import main

    save_biased_teacher(tmp_path / "teacher", [4.0, -2, 0, -2, -1, 0, 0])
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=list(EMOTIONS)), "subject": Value("string")})
    (tmp_path / "wild" / "data").mkdir(parents=True)
    Dataset.from_dict({"image": [astronaut.resize((160, 160))] * 40, "label": [3] * 40,
                       "subject": [f"person_{i}" for i in range(40)]},
                      features=features).to_parquet(tmp_path / "wild" / "data" / "dev-00000-of-00001.parquet")
    common = [*tiny, "--epochs", "4", "--extra-dataset", str(tmp_path / "wild"), "--extra-repeat", "8",
              "--teacher", str(tmp_path / "teacher"), "--kd-weight", "1.0", "--kd-temperature", "1",
              "--warmup-epochs", "0", "--ema-decay", "0", "--monitor", "val_accuracy", "--min-delta", "-1",
              "--patience", "9"]
    happy = {}
    for name, option in (("labels", []), ("teacher", ["--kd-extra"])):
        main([*common, *option, "--output-dir", str(tmp_path / name)])
        recognizer = EmotionRecognizer.from_pretrained(tmp_path / name, precision="fp32")
        crop = recognizer.find_faces(np.asarray(astronaut))[0][2]
        happy[name] = float(torch.tensor(recognizer.face_logits(crop[None], "none")[0, 0]).softmax(0)[3])  # uncalibrated
    assert happy["teacher"] < 0.5 * happy["labels"]


def test_capture_degrades_faces_on_their_own_device_and_scale():
    from train.augment import capture

    faces = torch.full((64, 44, 44), 128.0)
    faces[:, 10:30, 10:30] = 220
    out = capture(faces, 1.0)
    assert out.shape == faces.shape and out.dtype == faces.dtype and 0 <= out.min() and out.max() <= 255
    assert (out - faces).abs().mean() > 1 and torch.equal(capture(faces, 0.0), faces)
