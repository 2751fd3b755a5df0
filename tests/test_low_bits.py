"""Fewer bits for the int8 graph's weights (`train.low_bits`): GPTQ rounding, the levels chosen for a size, the
distilled layers written into the same graph; and the embedded model's file holds what its metrics say."""
import gzip
import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from fer_model import EmotionRecognizer
from fer_model.classifier import INT8_NAME
from fer_model.hub import resolve
from train.low_bits import HIGH, LOW, channel_steps, gptq

from .test_train import tiny, trained  # noqa: F401  (module fixtures: a small model trained on the tests' faces)


def test_gptq_rounds_a_layer_closer_to_its_outputs_than_plain_rounding():
    """On correlated inputs GPTQ's levels give outputs nearer the float layer's than rounding each weight to
    its nearest level with the same steps, and stay within the int8 graph's 7-bit range."""
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(72, 72))
    x = rng.normal(size=(4000, 72)) @ mix  # inputs whose columns go together, as a convolution's patches do
    w = rng.normal(size=(24, 72))
    moments = x.T @ x / len(x)
    for peak_level in (3, 6):
        scale = channel_steps(w, peak_level)
        assert np.allclose(np.abs(w).max(1) / scale, peak_level)
        levels = gptq(w, moments, scale)
        plain = np.round(w / scale[:, None])
        assert levels.min() >= LOW and levels.max() <= HIGH
        error = lambda q: np.linalg.norm(x @ (w - q * scale[:, None]).T)  # noqa: E731
        assert error(levels) < 0.8 * error(plain)


def test_a_size_asked_of_train_quantize_lowers_the_bits_and_the_graph_still_reads(tmp_path, trained, tiny_fer, capsys):
    """`--int8-gzip-bytes` far under the 7-bit file's size: every lowered layer at the coarsest step (its peak
    weights at +-3), the file smaller, the figures in metrics.json and the card, and the model reads faces."""
    from train.quantize import main

    folder = tmp_path / "model"
    shutil.copytree(trained[0], folder)
    before = len(gzip.compress((folder / INT8_NAME).read_bytes(), 6))
    figures = main([str(folder), "--dataset", str(tiny_fer), "--int8-gzip-bytes", "1000"])
    assert set(figures["weight_levels"].values()) == {3} and len(figures["weight_levels"]) == 8
    assert figures["gzip_bytes"] == len(gzip.compress((folder / INT8_NAME).read_bytes(), 6)) < before
    assert_steps_as_recorded(folder, figures["weight_levels"])
    assert json.loads((folder / "metrics.json").read_text())["int8"]["weight_levels"] == figures["weight_levels"]
    assert "`features.3.1.0` +-3" in (folder / "README.md").read_text()
    assert "int8 weights lowered:" in capsys.readouterr().out
    faces = [np.full((48, 48), v, np.uint8) for v in (30, 120, 220)]
    rows = EmotionRecognizer.from_pretrained(folder, precision="int8").predict_faces(faces)
    assert len(rows) == 3 and all(abs(sum(r.values()) - 1) < 1e-4 for r in rows)


def assert_steps_as_recorded(folder, peak_levels: dict) -> None:
    """Each lowered layer of `folder`'s int8 file steps by its float weights' channel peak over the recorded
    levels, its levels within the 7-bit range, and most of them within +-those levels."""
    floats = {t.name: numpy_helper.to_array(t) for t in onnx.load(folder / "model.onnx").graph.initializer}
    tensors = {t.name: numpy_helper.to_array(t) for t in onnx.load(folder / INT8_NAME).graph.initializer}
    for layer, k in peak_levels.items():
        weight = floats[f"model.{layer}.weight"]
        np.testing.assert_allclose(tensors[f"model.{layer}.weight_scale"],
                                   channel_steps(weight.reshape(len(weight), -1), k), rtol=1e-5, err_msg=layer)
        levels = tensors[f"model.{layer}.weight_quantized"]
        assert levels.min() >= LOW and levels.max() <= HIGH, layer
        assert (np.abs(levels) <= k).mean() > 0.99, layer


def test_the_embedded_int8_weights_step_as_their_metrics_say():
    """What metrics.json (and the card) says of the shipped int8 file's weights is what the file holds."""
    folder = resolve(None)
    peak_levels = json.loads((folder / "metrics.json").read_text())["int8"]["weight_levels"]
    assert len(peak_levels) == 8 and max(peak_levels.values()) < 63
    assert_steps_as_recorded(folder, peak_levels)


def test_a_size_that_is_not_positive_is_refused_in_one_line(tmp_path, capsys):
    from train.quantize import main

    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path), "--dataset", str(tmp_path), "--int8-gzip-bytes", "0"])
    assert stop.value.code == 2 and "--int8-gzip-bytes must be a positive number of bytes, not 0" in capsys.readouterr().err
