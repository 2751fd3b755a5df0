"""Hostile input and long use: fuzzed and malformed images never escape as anything but InvalidImageError;
2,000 predictions leak no memory, file handles or threads."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from fer_model import InvalidImageError

from .conftest import animated, encoded, hostile_corpus, png_claiming

FORMATS = ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"]


def _predict_or_invalid(recognizer, source):
    """The contract: a list of faces, or the documented error. Anything else fails the test."""
    try:
        faces = recognizer.predict(source)
    except InvalidImageError as err:
        assert str(err)
        return None
    assert isinstance(faces, list)
    return faces


FUZZ = settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(recognizer, data):
    _predict_or_invalid(recognizer, data)


@FUZZ
@pytest.mark.filterwarnings("ignore:Metadata Warning:UserWarning")  # PIL, on a TIFF whose header bytes were flipped
@pytest.mark.filterwarnings("ignore:Truncated File Read:UserWarning")  # PIL, on a TIFF cut short
@given(st.sampled_from(FORMATS), st.integers(0, 2**16), st.floats(0, 1), st.lists(st.integers(0, 10**6), max_size=8))
def test_truncated_and_corrupted_encodings(recognizer, fmt, seed, cut, flips):
    data = bytearray(encoded(fmt, seed))
    data = data[: max(1, int(len(data) * cut))] if cut < 1 else data
    for position in flips:
        data[position % len(data)] ^= 0xFF
    _predict_or_invalid(recognizer, bytes(data))


@pytest.mark.parametrize("source", [
    pytest.param(np.zeros((0, 0), np.uint8), id="0x0"),
    pytest.param(np.zeros((1, 1, 3), np.uint8), id="1x1"),
    pytest.param(np.zeros((1, 20000), np.uint8), id="1x20000"),
    pytest.param(png_claiming(100_000, 100_000), id="png-bomb-header"),
    pytest.param(png_claiming(7000, 7000), id="png-49-megapixels"),
])
def test_extreme_sizes_are_refused(recognizer, source):
    with pytest.raises(InvalidImageError):
        recognizer.predict(source)


@pytest.mark.parametrize("make", [
    pytest.param(lambda a: Image.fromarray((a.mean(2) * 257).astype(np.uint16)), id="I;16"),
    pytest.param(lambda a: Image.fromarray((a.mean(2) / 255).astype(np.float32)), id="F"),
    pytest.param(lambda a: Image.fromarray(a).convert("CMYK"), id="CMYK"),
    pytest.param(lambda a: Image.fromarray(a).convert("LA"), id="LA"),
    pytest.param(lambda a: Image.fromarray(a).convert("P"), id="P"),
    pytest.param(lambda a: _transparent_palette(a), id="P-transparency"),
    pytest.param(lambda a: animated("GIF"), id="animated-gif"),
    pytest.param(lambda a: animated("WEBP"), id="animated-webp"),
])
def test_odd_modes_predict(recognizer, astronaut, make):
    source = make(np.asarray(astronaut))
    faces = _predict_or_invalid(recognizer, source)
    assert faces is not None
    if isinstance(source, Image.Image):
        assert len(faces) == 1  # the astronaut is still found


def _transparent_palette(array):
    image = Image.fromarray(array).convert("P")
    image.info["transparency"] = 5
    return image


@pytest.mark.parametrize("name", sorted(hostile_corpus()))
def test_hostile_corpus(recognizer, name):
    _predict_or_invalid(recognizer, hostile_corpus()[name])


def test_soak_2000_predictions_do_not_leak(recognizer, tmp_path):
    from benchmarks.soak import soak, sources

    figures = soak(recognizer, sources(tmp_path), predictions=2000, warmup=200)
    assert figures["faces_found"] == [1]  # every prediction did real work
    assert figures["rss_growth_mb"] < 50, figures
    assert figures["open_files_growth"] <= 0 and figures["threads_growth"] <= 0, figures
