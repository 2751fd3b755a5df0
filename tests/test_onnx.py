"""The ONNX path: the same numbers as torch, no torch needed, one self-contained file any runtime reads."""
import json
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from benchmarks.common import astronaut_canvas
from fer_model import EmotionRecognizer, FERConfig, ModelConfig
from fer_model.card import usage
from fer_model.hub import DEFAULT_MODEL_DIR, build_model, save_pretrained
from fer_model.calibration.tta import TTA_MODES

from .conftest import ROOT, subprocess_env, synthetic_faces


@pytest.fixture(scope="module")
def fp32():
    """The float ONNX graph, which matches torch; the embedded model's default is its int8 graph."""
    return EmotionRecognizer.from_pretrained(precision="fp32")


@pytest.fixture(scope="module")
def torch_recognizer():
    """The same model on the torch backend."""
    return EmotionRecognizer.from_pretrained(backend="torch", detector=None, device="cpu")


def _matrix(scores):
    return np.array([[s[k] for k in sorted(s)] for s in scores])


@pytest.mark.parametrize("tta", TTA_MODES)
def test_onnx_and_torch_give_the_same_probabilities(fp32, torch_recognizer, tta):
    faces = synthetic_faces(64, seed=3)
    onnx, reference = fp32.predict_faces(faces, tta), torch_recognizer.predict_faces(faces, tta)
    assert np.abs(_matrix(onnx) - _matrix(reference)).max() <= 1e-4


@pytest.mark.parametrize("tta", TTA_MODES)
def test_onnx_and_torch_agree_on_real_fer_faces(fp32, torch_recognizer, fer_dataset, tta):
    faces = np.stack([np.asarray(fer_dataset["validation"][i]["image"]) for i in range(200)])
    onnx, reference = fp32.predict_faces(faces, tta), torch_recognizer.predict_faces(faces, tta)
    assert np.abs(_matrix(onnx) - _matrix(reference)).max() <= 1e-4


def test_the_same_faces_on_photos_as_the_torch_and_opencv_path(fp32, astronaut):
    from fer_model.detection import create_detector

    before = EmotionRecognizer(torch_classifier(), fp32.config, detector=create_detector(engine="opencv"))
    photos = [astronaut] + [astronaut_canvas((1600, 1200), [50, 80, 120, 200, 70], seed=s)[0] for s in range(3)]
    for photo in photos:
        ours, theirs = fp32.predict(photo), before.predict(photo)
        assert len(ours) == len(theirs) > 0
        for a, b in zip(ours, theirs):
            assert np.abs(np.subtract(a.box, b.box)).max() <= 1
            if a.box == b.box:
                assert np.abs(_matrix([a.scores]) - _matrix([b.scores])).max() <= 1e-4


def torch_classifier():
    from fer_model.hub import load_pretrained
    from fer_model.model import TorchClassifier

    return TorchClassifier(load_pretrained()[0], "cpu")


def reference_cam(model, inputs, method):
    """Grad-CAM / HiResCAM by torch autograd, as `fer_model.explain` computed them before ONNX."""
    activations = []
    hook = model.features[-1][-2].register_forward_hook(lambda m, a, out: activations.append(out))
    logits = model(inputs)
    hook.remove()
    chosen = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
    gradients, = torch.autograd.grad(chosen, activations[0])
    weights = gradients if method == "hirescam" else gradients.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * activations[0]).sum(1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=inputs.shape[-2:], mode="bilinear", align_corners=False).squeeze(1)
    return (cam / cam.flatten(1).max(1).values.clamp_min(1e-8).view(-1, 1, 1)).detach().numpy()


@pytest.mark.parametrize("method", ["gradcam", "hirescam"])
def test_saliency_without_autograd_is_exact(fp32, method):
    from fer_model.explain import class_activation_map
    from fer_model.preprocess import normalize
    from fer_model.calibration.tta import center_crop

    pre = fp32.config.preprocessing
    inputs = np.ascontiguousarray(center_crop(normalize(synthetic_faces(16, seed=4), pre), pre.input_size))
    expected = reference_cam(torch_classifier().model, torch.from_numpy(inputs), method)
    assert np.abs(class_activation_map(fp32.classifier, inputs, method=method) - expected).max() < 1e-4


def _small(tmp_path):
    config = FERConfig(model=ModelConfig(widths=(8, 16, 32, 64), hidden=32))
    torch.manual_seed(0)
    model = build_model(config).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2)
    return save_pretrained(model, config, tmp_path, dtype=torch.float16), model, config


def test_the_export_is_one_file_with_a_dynamic_batch_and_matches_torch(tmp_path):
    import onnxruntime as ort

    folder, _, _ = _small(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.onnx", "model.safetensors"]
    torch_model = EmotionRecognizer.from_pretrained(folder, backend="torch").model
    session = ort.InferenceSession(str(folder / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["faces"]
    assert [o.name for o in session.get_outputs()] == ["logits", "features"]
    for batch in (1, 7):
        x = torch.randn(batch, 1, 48, 48)
        with torch.no_grad():
            expected = torch_model(x).numpy()
        assert np.abs(session.run(["logits"], {"faces": x.numpy()})[0] - expected).max() < 1e-4


def test_a_wrong_export_is_caught_when_written(tmp_path):
    from fer_model.classifier import OnnxClassifier
    from fer_model.export import check
    from fer_model.model import InferenceGraph

    folder, model, config = _small(tmp_path)
    with torch.no_grad():
        model.head[-1].bias += 1.0  # the torch model moves on; the file does not
    with pytest.raises(RuntimeError, match="differs from torch"):
        check(InferenceGraph(model).eval(), OnnxClassifier(folder / "model.onnx"), 48)


def test_the_embedded_default_ships_its_onnx_export():
    assert (DEFAULT_MODEL_DIR / "model.onnx").is_file()
    assert not list(DEFAULT_MODEL_DIR.glob("*.data"))  # weights inside the one file


def test_the_int8_model_is_the_default_and_reads_as_the_float_one(recognizer, fp32):
    assert recognizer.precision == "int8" and recognizer.classifier.path.name == "model_int8.onnx"
    assert recognizer.calibration.temperatures != fp32.calibration.temperatures  # fitted for itself
    faces = synthetic_faces(64, seed=6)
    int8, float32 = _matrix(recognizer.predict_faces(faces)), _matrix(fp32.predict_faces(faces))
    assert np.abs(int8 - float32).max() < 0.05 and (int8.argmax(1) == float32.argmax(1)).mean() >= 0.95


def test_precision_choices_are_checked(tmp_path):
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        EmotionRecognizer.from_pretrained(precision="int4")
    with pytest.raises(ValueError, match="onnx backend only"):
        EmotionRecognizer.from_pretrained(backend="torch", precision="int8")
    folder, _, _ = _small(tmp_path)
    assert EmotionRecognizer.from_pretrained(folder).precision == "fp32"  # no int8 graph in the folder
    with pytest.raises(ValueError, match="has no int8 version"):
        EmotionRecognizer.from_pretrained(folder, precision="int8")


NO_TORCH = """
import importlib.abc, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch' (blocked by the test)")

sys.meta_path.insert(0, NoTorch())
from skimage import data
from fer_model import EmotionRecognizer, MissingExtraError
recognizer = EmotionRecognizer.from_pretrained()
faces = recognizer.predict(data.astronaut())
explained = recognizer.explain(data.astronaut())
try:
    EmotionRecognizer.from_pretrained(backend="torch")
except MissingExtraError as err:
    print("torch backend:", err)
print(len(faces), faces[0].label, len(explained.heatmaps), "torch" in sys.modules)
"""


def test_a_photo_is_predicted_where_torch_cannot_be_imported():
    result = subprocess.run([sys.executable, "-c", NO_TORCH], capture_output=True, text=True, timeout=120,
                            env=subprocess_env(), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "torch backend: the torch backend needs torch, which is not installed: pip install 'fer-model[torch]'"
    assert lines[1] == "1 happy 1 False"


def test_the_cards_onnxruntime_snippet_runs_without_the_package(tmp_path, fp32, fer_crop):
    """The model card's plain onnxruntime + numpy snippet, run in a folder with the model's files and a face: a
    48-pixel crop and a 128-pixel one, each read with the calibration of its size as the package reads it (the
    folder's config given a large-face calibration, as `fer-model calibrate` writes one)."""
    from fer_model import EmotionRecognizer

    fp32.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["large_faces"] = {"min_side": 96, "temperatures": {"flip": 2.5}, "uncertainty": {},
                             "class_biases": {"flip": [0.4, 0.0, 0.1, -0.3, 0.2, 0.0, -0.4]}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    fp32 = EmotionRecognizer.from_pretrained(tmp_path, precision="fp32")
    snippet = re.search(r"no package: .*?```python\n(.*?)```", usage("someone/fer"), re.S).group(1)
    assert len(snippet.strip().splitlines()) <= 22
    blocker = "import sys; sys.modules['fer_model'] = None  # the package is not there\n"
    readings = []
    for face in (fer_crop, fer_crop.resize((128, 128))):
        face.save(tmp_path / "face.png")
        result = subprocess.run([sys.executable, "-c", blocker + snippet], capture_output=True, text=True,
                                timeout=120, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        printed = json.loads(result.stdout.strip().replace("'", '"'))
        assert printed == pytest.approx(fp32.predict_faces([np.asarray(face)], "flip")[0], abs=1e-4)
        readings.append(printed)
    assert readings[0] != pytest.approx(readings[1], abs=1e-3)  # the two calibrations differ


def test_built_wheels_hold_the_onnx_files(tmp_path):
    import shutil

    source = tmp_path / "source"  # a copy: a build leaves its build/ folder beside the sources
    shutil.copytree(ROOT / "fer_model", source / "fer_model", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(source)], check=True, capture_output=True, timeout=300)
    names = zipfile.ZipFile(next(tmp_path.glob("fer_model-*.whl"))).namelist()
    assert {"fer_model/weights/default/model.onnx", "fer_model/weights/default/config.json",
            "fer_model/detection/models/yunet.onnx"} <= set(names)


def test_requirements_txt_lists_the_package_dependencies():
    """The package's own, and the app extra's but for gradio (which the Space's builder installs itself)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [r for r in project["optional-dependencies"]["app"] if not r.startswith("gradio")]
    listed = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert listed == declared
    assert not any(name.startswith(("torch", "gradio", "-e", ".")) for name in listed)


def test_threads_come_from_one_setting(monkeypatch):
    from fer_model.runtime import threads

    monkeypatch.setenv("FER_THREADS", "1")
    assert threads() == 1
    monkeypatch.setenv("FER_THREADS", "two")
    with pytest.raises(ValueError, match="FER_THREADS must be a whole number"):
        threads()
