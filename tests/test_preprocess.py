"""Every input kind and mode, EXIF orientation, face arrays and normalization, and the documented errors."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from fer_model import InvalidImageError, MAX_PIXELS, PreprocessConfig, load_image
from fer_model.preprocess import looks_like_face_crop, normalize, to_face_array


def _encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kw)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["path", "bytes", "file", "pil", "array"])
def test_every_input_kind_gives_rgb(kind, astronaut, astronaut_jpeg, tmp_path):
    path = tmp_path / "face.jpg"
    path.write_bytes(astronaut_jpeg)
    source = {"path": str(path), "bytes": astronaut_jpeg, "file": io.BytesIO(astronaut_jpeg),
              "pil": astronaut, "array": np.asarray(astronaut)}[kind]
    image = load_image(source)
    assert image.mode == "RGB" and image.size == astronaut.size


MODES = {
    "L": lambda a: Image.fromarray(a.mean(2).astype(np.uint8), "L"),
    "1": lambda a: Image.fromarray(a.mean(2) > 128),
    "RGBA": lambda a: Image.fromarray(np.dstack([a, np.full(a.shape[:2], 200, np.uint8)]), "RGBA"),
    "LA": lambda a: Image.fromarray(a).convert("LA"),
    "P": lambda a: Image.fromarray(a).convert("P"),
    "P+transparency": lambda a: _with_transparency(Image.fromarray(a).convert("P")),
    "CMYK": lambda a: Image.fromarray(a).convert("CMYK"),
    "I;16": lambda a: Image.fromarray((a.mean(2) * 257).astype(np.uint16)),
    "I": lambda a: Image.fromarray((a.mean(2) * 257).astype(np.int32), "I"),
    "F": lambda a: Image.fromarray((a.mean(2) / 255).astype(np.float32), "F"),
    "YCbCr": lambda a: Image.fromarray(a).convert("YCbCr"),
}


def _with_transparency(image):
    image.info["transparency"] = 0
    return image


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_becomes_rgb_with_the_same_content(mode, astronaut):
    reference = np.asarray(astronaut.convert("L"), dtype=float)
    if mode == "1":
        reference = (np.asarray(astronaut).mean(2) > 128) * 255.0
    image = load_image(MODES[mode](np.asarray(astronaut)))
    gray = np.asarray(image.convert("L"), dtype=float)
    assert image.mode == "RGB" and image.size == astronaut.size
    tolerance = 60 if mode in ("RGBA", "LA", "P+transparency") else 12
    assert np.abs(gray - reference).mean() < tolerance


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP", "BMP", "GIF"])
def test_encoded_formats(fmt, astronaut):
    assert load_image(_encode(astronaut, fmt)).size == astronaut.size


def test_sixteen_bit_png_is_scaled_not_clipped(astronaut):
    sixteen = Image.fromarray(np.asarray(astronaut.convert("L")).astype(np.uint16) * 257)
    assert sixteen.mode.startswith("I;16")
    gray = np.asarray(load_image(_encode(sixteen, "PNG")).convert("L"), dtype=float)
    assert abs(gray.mean() - np.asarray(astronaut.convert("L")).mean()) < 2


@pytest.mark.parametrize("array", [
    np.zeros((40, 30), np.uint16) + 40000, np.ones((40, 30, 1), np.float32) * 0.5, np.ones((40, 30), bool),
    np.full((40, 30, 4), 128, np.uint8)])
def test_numpy_dtypes_and_shapes(array):
    assert load_image(array).size == (30, 40)


def test_exif_orientation_is_applied(astronaut):
    wide = astronaut.crop((0, 0, 512, 256))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    upright = load_image(_encode(wide, "JPEG", exif=exif.tobytes()))
    assert upright.size == (256, 512)
    expected = np.asarray(wide.transpose(Image.Transpose.ROTATE_270).convert("L"), dtype=float)
    assert np.abs(np.asarray(upright.convert("L"), dtype=float) - expected).mean() < 8


def test_animated_gif_gives_first_frame():
    frames = [Image.new("L", (64, 64), v) for v in (30, 220)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    assert np.asarray(load_image(buffer.getvalue()).convert("L")).mean() == pytest.approx(30, abs=2)


BAD_INPUTS = {
    "text": b"this is not an image at all",
    "empty": b"",
    "truncated jpeg": "truncated",
    "one pixel": "one_pixel",
    "zero size array": np.zeros((0, 0), np.uint8),
    "1x20000": "sliver",
    "over the pixel limit": "huge",
    "wrong type": 12345,
    "wrong array shape": np.zeros((4, 4, 4, 4), np.uint8),
    "missing file": "/no/such/file.jpg",
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_inputs_raise_invalid_image_error(name, astronaut_jpeg):
    made = {"truncated": lambda: astronaut_jpeg[: len(astronaut_jpeg) // 3],
            "one_pixel": lambda: _encode(Image.new("RGB", (1, 1)), "PNG"),
            "sliver": lambda: _encode(Image.new("L", (1, 20000)), "PNG"),
            "huge": lambda: _encode(Image.new("1", (8000, MAX_PIXELS // 8000 + 1)), "PNG")}
    source = BAD_INPUTS[name]
    if isinstance(source, str) and source in made:
        source = made[source]()
    with pytest.raises(InvalidImageError) as error:
        load_image(source)
    assert str(error.value)  # a message a user can read


def test_to_face_array_and_normalize():
    face = to_face_array(Image.new("RGB", (96, 96), (255, 255, 255)))
    assert face.shape == (48, 48) and face.dtype == np.uint8
    config = PreprocessConfig()
    x = normalize(torch.from_numpy(np.stack([face, face * 0])), config)
    assert x.shape == (2, 1, 48, 48)
    assert x[0].mean().item() == pytest.approx((1 - config.mean) / config.std)
    assert x[1].mean().item() == pytest.approx(-config.mean / config.std)


def test_face_crop_heuristic():
    assert looks_like_face_crop((48, 48)) and looks_like_face_crop((120, 110))
    assert not looks_like_face_crop((640, 480)) and not looks_like_face_crop((48, 120))


def test_past_the_limit_an_image_is_refused_in_one_line_with_no_warning_and_unread():
    """20000x10001 is over the 200 MP limit and Pillow's own warning size: the one-line refusal alone, from the
    header (a file of a header and no pixels is refused the same way); 20000x10000 is not refused."""
    import warnings

    from fer_model.image_io import _check_size

    data = _encode(Image.new("1", (20000, 10001)), "PNG")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InvalidImageError, match="image is 20000x10001, larger than the 200,000,000-pixel limit"):
            load_image(data)
        with pytest.raises(InvalidImageError, match="image is 20000x10001, larger than the 200,000,000-pixel limit"):
            load_image(data[:100])
    assert not caught, [str(w.message) for w in caught]
    _check_size((20000, 10000))


def test_a_large_jpeg_is_read_reduced_with_boxes_in_its_own_pixels(recognizer, monkeypatch):
    """Over `FULL_DECODE_PIXELS`, a JPEG decodes at a half (a quarter, an eighth) of its size; the faces found are
    those of the full-size photo, their boxes in its pixels, upright as its EXIF says."""
    from skimage import data

    from fer_model import image_io

    canvas = Image.new("RGB", (2048, 1536), (120, 120, 120))
    canvas.paste(Image.fromarray(data.astronaut()).resize((1024, 1024)), (600, 300))
    photo, sideways = io.BytesIO(), io.BytesIO()
    canvas.save(photo, "JPEG", quality=92)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side; shown turned 90 degrees clockwise
    canvas.transpose(Image.ROTATE_90).save(sideways, "JPEG", quality=92, exif=exif)
    full = recognizer.predict(photo.getvalue())
    monkeypatch.setattr(image_io, "FULL_DECODE_PIXELS", 1_000_000)
    rgb, size = image_io.decode(photo.getvalue())
    assert (rgb.size, size) == ((1024, 768), (2048, 1536))
    assert image_io.decode(sideways.getvalue())[1] == (2048, 1536)
    for reduced in (recognizer.predict(photo.getvalue()), recognizer.predict(sideways.getvalue())):
        assert len(reduced) == len(full) == 1 and reduced[0].label == full[0].label
        (x, y, w, h), (fx, fy, fw, fh) = reduced[0].box, full[0].box
        overlap = max(0, min(x + w, fx + fw) - max(x, fx)) * max(0, min(y + h, fy + fh) - max(y, fy))
        assert overlap / (w * h + fw * fh - overlap) > 0.8, (reduced[0].box, full[0].box)
    assert recognizer.annotate(photo.getvalue()).size == (1024, 768)  # drawn on the photo as read
