"""Hostile input and long use: fuzzed and malformed images never escape as anything but InvalidImageError;
2,000 predictions leak no memory, file handles or threads."""
import io
import threading

import numpy as np
import psutil
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


def test_soak_2000_predictions_do_not_leak(recognizer, astronaut, fer_crop, tmp_path):
    photo = tmp_path / "photo.jpg"
    astronaut.crop((128, 0, 384, 256)).save(photo)  # 256x256 around the face: detection runs every time
    crop = io.BytesIO()
    fer_crop.save(crop, "PNG")
    crop = crop.getvalue()
    process = psutil.Process()
    for i in range(200):
        recognizer.predict(str(photo) if i % 2 else crop)
    rss, files, threads = process.memory_info().rss, len(process.open_files()), threading.active_count()
    for i in range(1800):
        faces = recognizer.predict(str(photo) if i % 2 else crop)
        assert len(faces) == 1
    grown = (process.memory_info().rss - rss) / 2**20
    assert grown < 50, f"resident memory grew by {grown:.1f} MB over 1,800 predictions"
    assert len(process.open_files()) <= files
    assert threading.active_count() <= threads
