"""Calibration (temperature and class bias), calibration metrics, the uncertainty flag and saliency maps."""
import numpy as np
import pytest
import torch

from fer_model import EMOTIONS, FacePrediction
from fer_model.calibration.fit import fit_calibration, fit_uncertainty, nll
from train.evaluate import load_metric

from .conftest import synthetic_faces


def _sample(n: int, sharpness: float, seed: int = 0, shift: torch.Tensor | float = 0.0):
    """Labels drawn from softmax(true logits); the model reports softmax(sharpness x true logits + shift)."""
    generator = torch.Generator().manual_seed(seed)
    true_logits = torch.randn(n, 7, generator=generator) * 2
    labels = torch.multinomial(true_logits.softmax(1), 1, generator=generator).squeeze(1)
    return (true_logits * sharpness + shift)[None], labels, true_logits.softmax(1)


def test_fitted_temperature_lowers_nll_and_undoes_over_confidence():
    logits, labels, _ = _sample(4000, sharpness=2.5)
    temperature, bias = fit_calibration(logits[:, :2000], labels[:2000], class_bias=False)  # fitted on one half
    assert temperature == pytest.approx(2.5, rel=0.2) and bias is None
    held_out = logits[:, 2000:], labels[2000:]
    assert nll(*held_out, temperature) < nll(*held_out, 1.0) - 0.05  # and better on the other half


def test_fitted_class_bias_undoes_a_shifted_prior():
    shift = torch.tensor([1.0, -1.0, 0.0, 0.5, 0.0, -0.5, 0.0]) * 2.5  # the model favours angry, shuns disgust
    logits, labels, _ = _sample(6000, sharpness=2.5, shift=shift)
    temperature, bias = fit_calibration(logits[:, :3000], labels[:3000])
    assert temperature == pytest.approx(2.5, rel=0.2) and sum(bias) == pytest.approx(0, abs=1e-3)
    assert torch.tensor(bias) == pytest.approx((-shift / 2.5 - (-shift / 2.5).mean()).tolist(), abs=0.25)
    held_out = logits[:, 3000:], labels[3000:]
    temperature_only, _ = fit_calibration(logits[:, :3000], labels[:3000], class_bias=False)
    assert nll(*held_out, temperature, bias) < nll(*held_out, temperature_only) - 0.02


def test_ece_is_near_zero_when_calibrated_and_large_when_over_confident():
    calibration = load_metric("calibration")
    _, labels, true_probabilities = _sample(20000, 1.0, seed=1)
    calibrated = calibration.compute(probabilities=true_probabilities.tolist(), references=labels.tolist())
    assert calibrated["ece"] < 0.02
    over, _, _ = _sample(20000, 4.0, seed=1)
    confident = calibration.compute(probabilities=over[0].softmax(1).tolist(), references=labels.tolist())
    assert confident["ece"] > 0.15 and confident["mean_confidence"] > confident["accuracy"]
    assert sum(b["count"] for b in confident["bins"]) == 20000 and len(confident["bins"]) == 15
    assert confident["nll"] > calibrated["nll"] and confident["brier"] > calibrated["brier"]


def test_uncertainty_thresholds_flag_mostly_wrong_predictions():
    logits, labels, _ = _sample(20000, 1.0, seed=2)
    limits = fit_uncertainty(logits[0].softmax(1), labels)
    assert 0.3 < limits["min_confidence"] < 0.7  # calibrated: a top probability near 1/2 is a coin flip
    assert limits["accuracy_flagged"] < 0.5 < limits["accuracy_not_flagged"]


def test_uncertain_prediction_says_so():
    scores = dict(zip(EMOTIONS, [0.05, 0.01, 0.05, 0.41, 0.05, 0.05, 0.38]))
    face = FacePrediction((0, 0, 10, 10), "happy", scores, uncertain=True)
    assert face.describe() == "uncertain: happy 41% / neutral 38%" and face.to_dict()["uncertain"] is True
    assert FacePrediction((0, 0, 10, 10), "happy", scores).describe() == "happy 41%"


def test_recognizer_flags_by_the_config_thresholds(recognizer):
    unsure = dict(zip(EMOTIONS, [0.05, 0.01, 0.05, 0.41, 0.05, 0.05, 0.38]))
    sure = dict(zip(EMOTIONS, [0.01, 0.01, 0.01, 0.93, 0.01, 0.02, 0.01]))
    assert recognizer.config.uncertainty, "the embedded model ships measured thresholds"
    assert recognizer.prediction((0, 0, 1, 1), unsure).uncertain
    assert not recognizer.prediction((0, 0, 1, 1), sure).uncertain


def test_temperature_changes_confidence_but_not_the_label(recognizer, fer_crop):
    plain = recognizer.predict_faces([fer_crop])[0]
    assert recognizer.precision == "int8"  # the embedded model's default: its own calibration
    temperatures = recognizer.config.int8["temperatures"]
    saved = dict(temperatures)
    try:
        temperatures[recognizer.tta] = 5.0
        softened = recognizer.predict_faces([fer_crop])[0]
    finally:
        temperatures.clear()
        temperatures.update(saved)
    assert max(softened, key=softened.get) == max(plain, key=plain.get)
    assert max(softened.values()) < max(plain.values())


@pytest.mark.parametrize("method", ["hirescam", "gradcam"])
def test_saliency_map_shape_range_and_target(recognizer, method):
    faces = list(synthetic_faces(3, seed=5))
    size = recognizer.config.preprocessing.image_size
    maps = recognizer.explain_faces(faces, method=method)
    assert maps.shape == (3, size, size) and np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    predicted = [max(s, key=s.get) for s in recognizer.predict_faces(faces)]
    other = [EMOTIONS[(EMOTIONS.index(p) + 3) % 7] for p in predicted]
    assert not np.allclose(maps, recognizer.explain_faces(faces, targets=other, method=method))


def test_explain_gives_one_heatmap_per_face_and_an_overlay(recognizer, astronaut):
    explanation = recognizer.explain(astronaut)
    assert len(explanation.faces) == len(explanation.heatmaps) == 1
    assert explanation.overlay.size == astronaut.size
    assert np.asarray(explanation.overlay).tobytes() != np.asarray(astronaut).tobytes()
    assert [f.label for f in explanation.faces] == [f.label for f in recognizer.predict(astronaut)]


def _faces_of(classes, n, seed=0, sharpness=4.0):
    """(views=1, n, 7) logits of an over-confident model on faces of `classes` only, and their labels."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.tensor(classes)[torch.randint(len(classes), (n,), generator=generator)]
    true_logits = torch.randn(n, 7, generator=generator)
    true_logits[torch.arange(n), labels] += 1.5
    return (true_logits * sharpness)[None].numpy(), labels.numpy()


def _base():
    from fer_model.config import Calibration

    return Calibration({"none": 1.6}, {"none": (0.1, -0.2, 0.0, 0.3, 0.1, -0.3, 0.0)},
                       {"min_confidence": 0.52, "min_margin": 0.23})


def test_few_faces_keep_the_base_calibration_and_say_so():
    from fer_model.calibration.fit import choose_calibration

    logits, labels = _faces_of([3, 4, 5], 30)
    fitted = choose_calibration({"none": logits}, labels, 7, _base())
    assert fitted.method == "base" and "only 30 faces" in fitted.reason
    assert fitted.fields == {"temperatures": {"none": 1.6}, "class_biases": {"none": _base().class_bias("none")},
                             "uncertainty": {"min_confidence": 0.52, "min_margin": 0.23}}


def test_three_classes_of_seven_get_a_bounded_fit():
    from fer_model.calibration.fit import choose_calibration, nll

    logits, labels = _faces_of([3, 4, 5], 300)
    fitted = choose_calibration({"none": logits}, labels, 7, _base())
    temperature, bias = fitted.fields["temperatures"]["none"], fitted.fields["class_biases"]["none"]
    assert fitted.method == "regularised" and 0.5 <= temperature <= 5
    assert max(bias) - min(bias) <= 2 and sum(bias) == pytest.approx(0, abs=1e-3)  # within ±1, stored centred
    assert max(bias[i] for i in (0, 1, 2, 6)) < min(bias[i] for i in (3, 4, 5))  # absent classes read less, boundedly
    assert fitted.fields["uncertainty"] == {"min_confidence": 0.52, "min_margin": 0.23}  # never 0 by accident
    held_out, held_labels = _faces_of([3, 4, 5], 2000, seed=1)
    assert nll(held_out, held_labels, temperature, bias) < nll(held_out, held_labels) - 0.1


def test_enough_faces_of_every_class_get_the_full_fit():
    from fer_model.calibration.fit import choose_calibration

    logits, labels = _faces_of(list(range(7)), 2000)
    fitted = choose_calibration({"none": logits}, labels, 7)
    assert fitted.method == "full" and fitted.fields["temperatures"]["none"] == pytest.approx(4, rel=0.35)
    assert set(fitted.fields["uncertainty"]) == {"min_confidence", "min_margin"}
    assert all(v > 0 for v in fitted.fields["uncertainty"].values())


def test_faces_of_one_class_get_a_temperature_alone():
    from fer_model.calibration.fit import choose_calibration

    logits, labels = _faces_of([3], 80)
    fitted = choose_calibration({"none": logits, "flip": np.concatenate([logits, logits])}, labels, 7)
    assert fitted.method == "temperature" and fitted.fields["class_biases"] == {}
    assert set(fitted.fields["temperatures"]) == {"none", "flip"} and fitted.fields["uncertainty"] == {
        "min_confidence": 0.5, "min_margin": 0.2}  # no base: the documented defaults


def test_a_calibration_across_sources_weighs_each_source_alike_and_keeps_every_decision():
    """Two sources whose models are over-confident by different amounts: the shared temperature lies between the
    two sources' own, as near one as the other whatever their sizes, and with no class offsets no face changes
    its label."""
    from fer_model.calibration.fit import fit_calibration
    from fer_model.calibration.tta import average_probabilities
    from train.calibration import fit_across_sources

    rng = np.random.default_rng(0)

    def source(count, sharpness):
        labels = rng.integers(0, 7, count)
        return (rng.normal(0, 1, (count, 7)) + 1.5 * np.eye(7)[labels])[None] * sharpness, labels

    (a, ya), (b, yb) = source(4000, 3.0), source(400, 1.0)
    own = [fit_calibration(x, y, False)[0] for x, y in ((a, ya), (b, yb))]
    fields, report = fit_across_sources([({"flip": a}, ya), ({"flip": b}, yb)], {"min_confidence": 0.5,
                                                                                  "min_margin": 0.2})
    shared = fields["temperatures"]["flip"]
    assert own[1] < shared < own[0] and abs(np.log(shared / own[0])) < 2 * abs(np.log(shared / own[1]))
    assert fields["class_biases"] == {} and all(fields["uncertainty"].values())
    assert (average_probabilities(a, shared).argmax(1) == a[0].argmax(1)).all()


def test_large_faces_are_read_with_their_own_calibration(recognizer, fer_crop):
    """A face of at least `min_side` pixels in its photo takes the large-face calibration and its thresholds;
    a smaller one, and any face of a model without one, the other."""
    from dataclasses import replace

    from fer_model.config import FERConfig

    small = {"temperatures": {"flip": 1.0}, "class_biases": {}, "uncertainty": {"min_confidence": 0.0}}
    large = {"min_side": 96, "temperatures": {"flip": 50.0}, "class_biases": {}, "uncertainty": {"min_confidence": 0.99}}
    config = FERConfig.from_dict({**recognizer.config.to_dict(), "int8": {}, **small, "large_faces": large})
    assert FERConfig.from_dict(config.to_dict()) == config
    plain = replace(config, large_faces={})
    for model_config, softened in ((config, True), (plain, False)):
        recognizer_of = type(recognizer)(recognizer.classifier, model_config, precision="fp32")
        big, tiny = recognizer_of.predict_faces([fer_crop, fer_crop], sides=[96, 95])
        assert (max(big.values()) < 0.2) is softened and max(tiny.values()) > 0.2
        assert recognizer_of.prediction((0, 0, 120, 90), big).uncertain is softened
        assert not recognizer_of.prediction((0, 0, 48, 48), tiny).uncertain
