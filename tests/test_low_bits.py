"""Fewer bits for the int8 graph's weights (`train.low_bits`): GPTQ rounding, the bits chosen for a size, the
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
from train.low_bits import gptq, least_squares_scale

from .test_train import tiny, trained  # noqa: F401  (module fixtures: a small model trained on the tests' faces)


def test_gptq_rounds_a_layer_closer_to_its_outputs_than_plain_rounding():
    """On correlated inputs GPTQ's levels give outputs nearer the float layer's than rounding each weight to
    its nearest level with the same scales, and stay within the bits' levels."""
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(72, 72))
    x = rng.normal(size=(4000, 72)) @ mix  # inputs whose columns go together, as a convolution's patches do
    w = rng.normal(size=(24, 72))
    moments = x.T @ x / len(x)
    for bits in (3, 4):
        scale = least_squares_scale(w, bits)
        levels = gptq(w, moments, scale, bits)
        plain = np.clip(np.round(w / scale[:, None]), -2 ** (bits - 1), 2 ** (bits - 1) - 1)
        assert levels.min() >= -2 ** (bits - 1) and levels.max() <= 2 ** (bits - 1) - 1
        error = lambda q: np.linalg.norm(x @ (w - q * scale[:, None]).T)  # noqa: E731
        assert error(levels) < 0.8 * error(plain)


def test_a_size_asked_of_train_quantize_lowers_the_bits_and_the_graph_still_reads(tmp_path, trained, tiny_fer, capsys):
    """`--int8-gzip-bytes` far under the 7-bit file's size: every lowered layer at 3 bits (levels -4..3), the
    file smaller, the figures in metrics.json and the card, and the model reads faces as before the run."""
    from train.quantize import main

    folder = tmp_path / "model"
    shutil.copytree(trained[0], folder)
    before = len(gzip.compress((folder / INT8_NAME).read_bytes(), 6))
    figures = main([str(folder), "--dataset", str(tiny_fer), "--int8-gzip-bytes", "1000"])
    assert set(figures["weight_bits"].values()) == {3} and len(figures["weight_bits"]) == 8
    assert figures["gzip_bytes"] == len(gzip.compress((folder / INT8_NAME).read_bytes(), 6)) < before
    tensors = {t.name: numpy_helper.to_array(t) for t in onnx.load(folder / INT8_NAME).graph.initializer}
    for layer in figures["weight_bits"]:
        levels = tensors[f"model.{layer}.weight_quantized"]
        assert levels.min() >= -4 and levels.max() <= 3, layer
    assert json.loads((folder / "metrics.json").read_text())["int8"]["weight_bits"] == figures["weight_bits"]
    assert "`features.3.1.0` 3" in (folder / "README.md").read_text()
    assert "int8 weights lowered:" in capsys.readouterr().out
    faces = [np.full((48, 48), v, np.uint8) for v in (30, 120, 220)]
    rows = EmotionRecognizer.from_pretrained(folder, precision="int8").predict_faces(faces)
    assert len(rows) == 3 and all(abs(sum(r.values()) - 1) < 1e-4 for r in rows)


def test_the_embedded_int8_weights_take_no_more_levels_than_their_bits_say():
    """What metrics.json (and the card) says of the shipped int8 file's weights is what the file holds."""
    folder = resolve(None)
    bits = json.loads((folder / "metrics.json").read_text())["int8"]["weight_bits"]
    assert min(bits.values()) == 3
    tensors = {t.name: numpy_helper.to_array(t) for t in onnx.load(folder / INT8_NAME).graph.initializer}
    for layer, b in bits.items():
        levels = tensors[f"model.{layer}.weight_quantized"]
        assert levels.min() >= -2 ** (b - 1) and levels.max() <= 2 ** (b - 1) - 1, layer


def test_a_size_that_is_not_positive_is_refused_in_one_line(tmp_path, capsys):
    from train.quantize import main

    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path), "--dataset", str(tmp_path), "--int8-gzip-bytes", "0"])
    assert stop.value.code == 2 and "--int8-gzip-bytes must be a positive number of bytes, not 0" in capsys.readouterr().err
