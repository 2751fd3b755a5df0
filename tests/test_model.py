"""The CNN, its config, and weights I/O (local folders, Hub cache offline, refusal of unsafe or mismatched files)."""
import json
import pickle
import re
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from fer_model import EMOTIONS, EmotionCNN, EmotionRecognizer, FERConfig, ModelConfig, ModelLoadError
from fer_model.hub import build_model, load_pretrained, save_pretrained

from .conftest import subprocess_env


def test_output_shape_and_probabilities():
    model = EmotionCNN().eval()
    logits = model(torch.randn(5, 1, 48, 48))
    assert logits.shape == (5, 7)
    probabilities = logits.softmax(1)
    assert torch.allclose(probabilities.sum(1), torch.ones(5), atol=1e-6)


def test_config_sets_width_and_depth():
    small = EmotionCNN(ModelConfig(widths=(8, 16, 32), convs_per_stage=1, hidden=32))
    big = EmotionCNN(ModelConfig(widths=(32, 64, 128, 256), convs_per_stage=3))
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in big.parameters())
    assert small(torch.randn(2, 1, 48, 48)).shape == (2, 7)


def test_config_round_trip():
    config = FERConfig(model=ModelConfig(widths=(8, 16), hidden=64))
    assert FERConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def _small_config():
    return FERConfig(model=ModelConfig(widths=(8, 16, 32, 64), hidden=32))


def test_save_load_round_trip_identical(tmp_path):
    config = _small_config()
    model = build_model(config).eval()
    with torch.no_grad():  # non-trivial BN statistics, so the buffers are checked too
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
    save_pretrained(model, config, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.onnx", "model.safetensors"]
    loaded, loaded_config = load_pretrained(tmp_path)
    x = torch.randn(4, 1, 48, 48)
    assert loaded_config == config
    assert torch.equal(model(x), loaded(x))


def test_float16_weights_load_as_float32(tmp_path):
    config = _small_config()
    model = build_model(config).eval()
    save_pretrained(model, config, tmp_path, dtype=torch.float16)
    loaded, _ = load_pretrained(tmp_path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.randn(4, 1, 48, 48)
    assert torch.allclose(model(x), loaded(x), atol=1e-2)


def test_refuses_pickle_named_safetensors(tmp_path):
    save_pretrained(build_model(_small_config()), _small_config(), tmp_path)
    (tmp_path / "model.safetensors").write_bytes(pickle.dumps(build_model(_small_config()).state_dict()))
    with pytest.raises(ModelLoadError, match="not a valid safetensors"):
        load_pretrained(tmp_path)


def test_refuses_pickle_only_folder(tmp_path):
    config = _small_config()
    torch.save(build_model(config).state_dict(), tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    with pytest.raises(ModelLoadError, match="pickle files are never loaded"):
        load_pretrained(tmp_path)


def test_refuses_weights_that_do_not_match_config(tmp_path):
    save_pretrained(build_model(_small_config()), _small_config(), tmp_path)
    other = FERConfig(model=ModelConfig(widths=(16, 32, 64, 128), hidden=32))
    (tmp_path / "config.json").write_text(json.dumps(other.to_dict()))
    with pytest.raises(ModelLoadError, match="do not match"):
        load_pretrained(tmp_path)


def test_refuses_missing_keys(tmp_path):
    config = _small_config()
    state = build_model(config).state_dict()
    save_file({k: v for k, v in state.items() if not k.startswith("head")}, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    with pytest.raises(ModelLoadError, match="Missing key"):
        load_pretrained(tmp_path)


def test_missing_folder_and_bad_source(tmp_path):
    with pytest.raises(ModelLoadError, match="no model.safetensors"):
        load_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="no such model folder"):
        load_pretrained(str(tmp_path / "does" / "not" / "exist"))


def test_embedded_default_loads_offline():
    recognizer = EmotionRecognizer.from_pretrained()
    assert recognizer.labels == EMOTIONS and recognizer.classifier.name == "onnx"
    assert EmotionRecognizer.from_pretrained(backend="torch").model.training is False


def _hub_cache(cache, repo_id, snapshots: dict, refs: dict):
    """A Hugging Face Hub cache laid out as huggingface_hub writes it: snapshots by commit, refs by name."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    for commit, (model, config) in snapshots.items():
        save_pretrained(model, config, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    for ref, commit in refs.items():
        (repo / "refs" / ref).write_text(commit)


HUB_LOAD = """
import sys, torch
from fer_model import EmotionRecognizer
r = EmotionRecognizer.from_pretrained(sys.argv[1], revision=sys.argv[2] if len(sys.argv) > 2 else None)
torch.manual_seed(0)
print(float(r.classifier.logits(torch.randn(2, 1, 48, 48).numpy()).sum()))
"""


def test_hub_repo_id_loads_from_cache_offline_and_pins_revision(tmp_path):
    config = _small_config()
    torch.manual_seed(1)
    first, second = build_model(config).eval(), build_model(config).eval()
    old, new = "a" * 40, "b" * 40
    _hub_cache(tmp_path, "someone/fer-cnn", {old: (first, config), new: (second, config)}, {"main": new})
    env = subprocess_env(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path))

    def load(*args):
        result = subprocess.run([sys.executable, "-c", HUB_LOAD, "someone/fer-cnn", *args],
                                env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return float(result.stdout.strip().splitlines()[-1])

    torch.manual_seed(0)
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        assert load() == pytest.approx(float(second(x).sum()), rel=1e-4)
        assert load(old) == pytest.approx(float(first(x).sum()), rel=1e-4)


def test_hub_repo_missing_from_cache_offline_is_clear(tmp_path):
    env = subprocess_env(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", HUB_LOAD, "someone/not-cached"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "ModelLoadError" in result.stderr and "not in the local cache" in result.stderr


@pytest.mark.parametrize("source", ["runs/fer-that-does-not-exist", "./runs/fer", "/no/such/model", "a/b/c"])
def test_a_missing_model_folder_says_so(source, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=f"no such model folder: {re.escape(source)}"):
        EmotionRecognizer.from_pretrained(source)


def test_saved_weights_get_the_usual_file_mode(tmp_path):
    save_pretrained(build_model(_small_config()), _small_config(), tmp_path)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes["model.safetensors"] == modes["config.json"]


def test_old_configs_without_temperature_or_with_face_margin_load(tmp_path):
    save_pretrained(build_model(_small_config()), _small_config(), tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    data.pop("temperatures")
    data["preprocessing"]["face_margin"] = 0.1
    (tmp_path / "config.json").write_text(json.dumps(data))
    config = EmotionRecognizer.from_pretrained(tmp_path).config
    assert config.temperature("flip") == 1.0 and config.preprocessing.crop_size is None
    assert config.class_bias("flip") is None


def test_a_class_bias_of_the_wrong_length_is_refused(tmp_path):
    save_pretrained(build_model(_small_config()), _small_config(), tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    data["class_biases"] = {"none": [0.1, -0.1]}
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="2 values for 7 labels"):
        EmotionRecognizer.from_pretrained(tmp_path)


def test_push_to_hub_uploads_weights_and_config(monkeypatch, tmp_path):
    import huggingface_hub

    calls = {}
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo",
                        lambda self, repo_id, **kw: calls.setdefault("create", (repo_id, kw)))

    def upload_folder(self, folder_path, repo_id, **kw):
        calls["files"] = sorted(p.name for p in __import__("pathlib").Path(folder_path).iterdir())
        calls["repo"] = repo_id
        return "https://huggingface.co/someone/fer-cnn/commit/0"

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    recognizer = EmotionRecognizer.from_model(build_model(_small_config()), _small_config())
    assert recognizer.push_to_hub("someone/fer-cnn").endswith("/commit/0")
    assert calls["create"][0] == "someone/fer-cnn" and calls["create"][1]["exist_ok"] is True
    assert calls["repo"] == "someone/fer-cnn"
    assert calls["files"] == ["README.md", "config.json", "model.onnx", "model.safetensors", "yunet.onnx"]


def test_folded_batchnorm_gives_the_same_logits_and_leaves_the_model_whole():
    from fer_model.model import fuse_batchnorm

    model = EmotionCNN(ModelConfig(widths=(8, 16), hidden=16)).eval()
    for module in model.modules():  # BatchNorm statistics far from the identity, so folding is really tested
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 2)
            module.bias.data.uniform_(-1, 1)
    keys = set(model.state_dict())
    fused = fuse_batchnorm(model)
    x = torch.randn(4, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(fused(x), model(x), atol=1e-4)
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in fused.modules())
    assert set(model.state_dict()) == keys
