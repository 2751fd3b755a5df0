"""The browser version in headless Chromium: the same faces and probabilities as the Python package, the
live webcam on a fake camera, and the error paths a visitor can hit. Pages come from web/serve.py on
localhost, on the page's own runtime (web/runtime/, built by `npm run build`, as .ci/run does)."""
import base64
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from benchmarks.common import CHROMIUM_FLAGS, astronaut_canvas, data_url, write_y4m
from web.serve import KERNELS, LOCAL_PAGE, serve

from .conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (Debian's chromium package)"),
              pytest.mark.skipif(not KERNELS.is_file(), reason="the page's runtime is not built: npm run build in web/")]


@pytest.fixture(scope="module")
def base_url():
    server = serve(0)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory):
    canvas, _ = astronaut_canvas((640, 480), [150], seed=11)
    return write_y4m(tmp_path_factory.mktemp("camera") / "face.y4m", [canvas] * 30)


def open_page(playwright, base_url, camera: str | None = "none", init_script: str | None = None):
    """A fresh browser on the demo page; `camera`: "none" (no device), "refused" or a Y4M path (granted)."""
    args = list(CHROMIUM_FLAGS)
    if camera not in ("none", "refused"):
        args += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-video-capture={camera}"]
    elif camera == "refused":
        args += ["--use-fake-device-for-media-stream"]
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
    context = browser.new_context(permissions=["camera"] if camera not in ("none", "refused") else [])
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    if init_script:
        page.add_init_script(init_script)
    page.goto(base_url + LOCAL_PAGE)
    return browser, page, errors


@pytest.fixture(scope="module")
def demo(playwright, base_url):
    browser, page, errors = open_page(playwright, base_url)
    assert page.evaluate("window.ferDemo.ready") is True, errors
    yield page
    browser.close()


def photos():
    from skimage import data

    yield "astronaut", data.astronaut()
    for seed, widths in ((1, [60, 90, 140]), (2, [40, 70, 110, 160, 55, 80])):
        yield f"canvas{seed}", astronaut_canvas((1024, 768), widths, seed=seed)[0]
    yield "large", astronaut_canvas((3200, 2400), [28, 36, 48, 64] * 6 + [300, 500], seed=3)[0]  # pyramid and tiles
    yield "over_the_edge", np.ascontiguousarray(data.astronaut()[80:, 205:])  # a box cut to the image
    yield "on_its_side", np.ascontiguousarray(np.rot90(astronaut_canvas((640, 480), [150], seed=4)[0]))  # turned


FP32 = """async (url) => {
  const fer = await import("/fer.js");
  window.fp32 ||= await fer.load({ models: "/models/", precision: "fp32" });
  return window.fp32.analyze(await createImageBitmap(await (await fetch(url)).blob()));
}"""


@pytest.fixture(scope="module")
def recognizer_fp32():
    from fer_model import EmotionRecognizer

    return EmotionRecognizer.from_pretrained(precision="fp32")


@pytest.mark.parametrize("precision", ["int8", "fp32"])
@pytest.mark.parametrize("name, image", list(photos()), ids=[n for n, _ in photos()])
def test_the_browser_finds_the_same_faces_with_the_same_probabilities(demo, recognizer, recognizer_fp32, name, image,
                                                                      precision):
    """The same pixels reach the same networks, which compute what ONNX Runtime computes: the int8 CNN's integers
    exactly, the float graphs up to the order of their sums."""
    url = data_url(image)
    faces = demo.evaluate("(url) => window.ferDemo.analyze(url)", url) if precision == "int8" else demo.evaluate(FP32, url)
    expected = (recognizer if precision == "int8" else recognizer_fp32).predict(image)
    assert len(faces) == len(expected) > 0
    for browser, python in zip(faces, expected):
        assert np.abs(np.subtract(browser["box"], python.box)).max() <= 1
        assert max(abs(browser["scores"][k] - v) for k, v in python.scores.items()) <= 1e-4
        assert browser["label"] == python.label and browser["uncertain"] == python.uncertain
        assert browser.get("turned", 0) == python.turned
        assert browser["detectionScore"] == pytest.approx(python.detection_score, abs=1e-4)


PERSONAL = """async ([rest, photo]) => {
  const fer = await window.ferDemo.recognizer;
  const bitmap = async (url) => createImageBitmap(await (await fetch(url)).blob());
  await fer.personalize([await bitmap(rest)]);
  try { return await fer.analyze(await bitmap(photo)); } finally { fer.forgetRestingFace(); }
}"""


@pytest.mark.parametrize("rest", ["the same photo", "other light"])
def test_the_browser_reads_faces_against_a_resting_face_as_python_does(demo, recognizer, rest):
    """`fer.personalize` computes what `EmotionRecognizer.personalize` does: the gate wide open for the same
    photo, shut for one in other light and framing."""
    from skimage import data

    photo = data.astronaut()
    resting = photo if rest == "the same photo" else np.asarray(
        Image.fromarray(photo).transpose(Image.FLIP_LEFT_RIGHT).point(lambda v: v // 2).rotate(12))
    faces = demo.evaluate(PERSONAL, [data_url(resting), data_url(photo)])
    personal = recognizer.personalize(resting)
    expected = personal.predict(photo)
    assert personal.baseline.weights(personal.baseline.inputs).tolist() == [0.5]
    assert len(faces) == len(expected) == 1
    assert max(abs(faces[0]["scores"][k] - v) for k, v in expected[0].scores.items()) <= 1e-4
    assert faces[0]["label"] == expected[0].label and faces[0]["uncertain"] == expected[0].uncertain
    assert (expected[0].scores != recognizer.predict(photo)[0].scores) == (rest == "the same photo")


def test_no_face_says_so(demo):
    from skimage import data

    assert demo.evaluate("(url) => window.ferDemo.analyze(url)", data_url(data.chelsea())) == []
    assert demo.text_content("#message").startswith("No face found")


@pytest.mark.parametrize("make", ["noise", "rocket", "tiny coffee"])
def test_a_small_image_with_no_face_is_not_read_as_one(demo, make):
    from skimage import data

    image = (np.random.default_rng(0).random((100, 100, 3)) * 255).astype(np.uint8) if make == "noise" else \
        np.asarray(Image.fromarray(data.coffee()[:, 50:450]).resize((30, 30), Image.BOX)) if make == "tiny coffee" \
        else np.asarray(Image.fromarray(data.rocket()).resize((120, 120)))
    assert demo.evaluate("(url) => window.ferDemo.analyze(url)", data_url(image)) == []


def test_an_image_under_8_px_gets_the_message_python_gives(demo):
    url = data_url(np.zeros((1, 1, 3), np.uint8))
    assert demo.evaluate("(url) => window.ferDemo.analyze(url)", url) == []
    assert "each side must be at least 8 pixels" in demo.text_content("#message")


def test_an_image_over_the_limit_gets_the_message_python_gives(demo):
    """Refused by its size before its pixels are drawn, in Python's words."""
    from fer_model import InvalidImageError, load_image

    with pytest.raises(InvalidImageError) as python:
        load_image(io.BytesIO(_png_header(20000, 10001)))
    page = demo.evaluate("window.ferDemo.recognizer.then((fer) => fer.analyze({ width: 20000, height: 10001 }))"
                         ".then(() => null, (err) => err.message)")
    assert page == str(python.value)


def test_a_photo_over_50_mp_gives_the_faces_python_gives_in_its_own_pixels(demo, recognizer):
    """A 51 MP JPEG: the page draws it at half size as Python decodes it at half size (by other arithmetic, so the
    faces agree in place and label, not to the pixel), and both give boxes in the photo's own pixels."""
    canvas, truth = astronaut_canvas((8200, 6200), [900, 600], seed=3)
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, "JPEG", quality=85)
    url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
    faces = demo.evaluate("(url) => window.ferDemo.analyze(url)", url)
    expected = recognizer.predict(buffer.getvalue())
    assert len(faces) == len(expected) == len(truth)
    for browser, python in zip(faces, expected):
        assert _iou(browser["box"], python.box) > 0.8 and browser["label"] == python.label
    assert all(max(_iou(face.box, box) for box in truth) > 0.5 for face in expected)


def _iou(a, b) -> float:
    overlap = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])) * max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return overlap / (a[2] * a[3] + b[2] * b[3] - overlap)


def _png_header(width: int, height: int) -> bytes:
    """The first bytes of a PNG of that size: its signature, its header chunk and where its pixels would begin."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IDAT", b"")


def test_a_bad_file_after_a_photo_leaves_no_photo_on_screen(demo):
    from skimage import data

    assert len(demo.evaluate("(url) => window.ferDemo.analyze(url)", data_url(data.astronaut()))) == 1
    assert demo.is_visible("#photo") and demo.locator("#faces button").count() == 1
    bad = "data:image/png;base64," + base64.b64encode(b"definitely not a PNG").decode()
    assert demo.evaluate("(url) => window.ferDemo.analyze(url)", bad) == []
    assert not demo.is_visible("#photo") and demo.locator("#faces button").count() == 0
    assert "not an image" in demo.text_content("#message")


def test_at_phone_width_the_photo_takes_the_whole_width(playwright, base_url):
    from skimage import data

    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS))
    try:
        page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
        page.goto(base_url + LOCAL_PAGE)
        assert page.evaluate("window.ferDemo.ready") is True
        page.evaluate("(url) => window.ferDemo.analyze(url)", data_url(data.astronaut()))
        assert page.locator("#photo").bounding_box()["width"] >= 300  # not a strip beside the bars
    finally:
        browser.close()


def test_a_file_that_is_not_an_image_gets_a_message(demo):
    url = "data:image/png;base64," + base64.b64encode(b"definitely not a PNG").decode()
    assert demo.evaluate("(url) => window.ferDemo.analyze(url)", url) == []
    assert "not an image" in demo.text_content("#message")


RESAMPLE = """async ([name, pixels, width, height, channels, ...args]) => {
  const fer = await import("/fer.js");
  const image = { data: Uint8Array.from(atob(pixels), (c) => c.charCodeAt(0)), width, height, channels };
  const out = fer[name](image, ...args), bytes = (out.image || out).data;
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return btoa(text);
}"""


def resampled_in_the_browser(page, name: str, image: np.ndarray, *args) -> np.ndarray:
    height, width, channels = image.shape
    pixels = base64.b64encode(np.ascontiguousarray(image).tobytes()).decode()
    return np.frombuffer(base64.b64decode(page.evaluate(RESAMPLE, [name, pixels, width, height, channels, *args])), np.uint8)


def smooth_noise(size, channels, seed):
    import cv2

    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8), (5, 5), 0)
    return image.reshape(size[1], size[0], channels)


@pytest.mark.parametrize("interpolation, size, channels, out_size, out_channels", [
    ("linear", (640, 480), 4, (416, 312), 3), ("linear", (1000, 750), 3, (333, 250), 3), ("linear", (37, 41), 1, (48, 48), 1),
    ("linear", (30, 30), 1, (48, 48), 1), ("linear", (333, 250), 3, (211, 159), 3),
    ("area", (96, 96), 1, (48, 48), 1), ("area", (480, 480), 1, (48, 48), 1), ("area", (168, 168), 1, (48, 48), 1),
    ("area", (1000, 1000), 1, (48, 48), 1), ("area", (640, 480), 4, (320, 240), 3), ("area", (900, 600), 4, (300, 200), 3)])
def test_the_browser_resamples_exactly_as_opencv(demo, interpolation, size, channels, out_size, out_channels):
    import cv2

    image = smooth_noise(size, channels, seed=sum(size))
    name, flag = {"linear": ("resizeLinear", cv2.INTER_LINEAR), "area": ("resizeArea", cv2.INTER_AREA)}[interpolation]
    got = resampled_in_the_browser(demo, name, image, *out_size, out_channels)
    expected = cv2.resize(np.ascontiguousarray(image[:, :, :out_channels]), out_size, interpolation=flag)
    np.testing.assert_array_equal(got, expected.reshape(-1))


@pytest.mark.parametrize("size", [(640, 480), (1024, 768), (1921, 1083), (2600, 400)])  # steps 1, 2, 4, 6
def test_the_browser_downscales_for_the_detector_exactly_as_python(demo, size):
    from fer_model.detection.base import downscaled

    image = smooth_noise(size, 4, seed=size[0])
    expected, _ = downscaled(np.ascontiguousarray(image[:, :, :3]), 416)
    np.testing.assert_array_equal(resampled_in_the_browser(demo, "downscaled", image, 416), expected.reshape(-1))


CROP = """async ([pixels, width, height, box]) => {
  const fer = await import("/fer.js");
  const data = new Uint8ClampedArray(Uint8Array.from(atob(pixels), (c) => c.charCodeAt(0)).buffer);
  return Array.from(fer.cropFace(new ImageData(data, width, height), box, fer.YUNET.framing, 48));
}"""


@pytest.mark.parametrize("box", [(200, 150, 150, 150), (300, 100, 43, 40), (20, 20, 30, 28), (-10, 300, 120, 130),
                                 (590, 430, 60, 60)], ids=["shrunk", "near 48", "grown", "off the left", "off the corner"])
def test_the_browser_crops_faces_exactly_as_python(demo, box):
    import cv2

    from fer_model.detection.yunet import YuNetDetector
    from fer_model.preprocess import crop_face

    image = smooth_noise((640, 480), 4, seed=abs(box[0]))
    pixels = base64.b64encode(image.tobytes()).decode()
    got = np.array(demo.evaluate(CROP, [pixels, 640, 480, list(box)]), np.uint8).reshape(48, 48)
    gray = cv2.cvtColor(np.ascontiguousarray(image[:, :, :3]), cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(got, crop_face(gray, box, YuNetDetector.framing, 48))


@pytest.mark.parametrize("frames_from", ["MediaStreamTrackProcessor", "requestVideoFrameCallback"])
def test_the_fake_camera_gives_labelled_frames(playwright, base_url, camera_clip, frames_from):
    without_processor = "delete window.MediaStreamTrackProcessor;" if frames_from == "requestVideoFrameCallback" else None
    browser, page, errors = open_page(playwright, base_url, camera=str(camera_clip), init_script=without_processor)
    try:
        page.evaluate("window.ferDemo.startCamera()")
        page.wait_for_function("window.ferDemo.stats().frames >= 15", timeout=30_000)
        stats = page.evaluate("window.ferDemo.stats()")
        assert stats["fps"] > 0 and stats["faces"] == 1 and stats["labels"][0] in ("angry", "disgust", "fear", "happy",
                                                                                   "sad", "surprise", "neutral")
        assert stats["cameraFrames"] >= stats["frames"]
        assert "frames analysed a second" in page.text_content("#fps")
        assert page.text_content("#camera") == "Stop the camera"  # the button says what it does
        page.click("#rest")  # the visitor's resting face: a few frames
        page.wait_for_function("document.querySelector('#rest').textContent === 'Forget my resting face'",
                               timeout=30_000)
        assert page.evaluate("window.ferDemo.recognizer.then((fer) => fer.baseline.crops.length)") == 5
        page.click("#rest")
        assert page.evaluate("window.ferDemo.recognizer.then((fer) => fer.baseline)") is None
        page.click("#camera")
        assert page.text_content("#camera") == "Start the camera"
        stopped = page.evaluate("window.ferDemo.stats().frames")
        page.wait_for_timeout(500)
        assert page.evaluate("window.ferDemo.stats().frames") <= stopped + 2
        assert not errors
    finally:
        browser.close()


FRAMES = {  # what the camera delivers, as each path of the live loop sees it; 30 fps
    "MediaStreamTrackProcessor": "[0, 33333, 66667, 200000, 233333, 400000]",  # timestamps (µs): 3 and 4 lost
    "requestVideoFrameCallback": "[10, 11, 12, 16, 17, 22]",  # the video's count of frames shown: 3 and 4 lost
}
SCRIPTED_CAMERA = """async ([path, sequence]) => {
  let i = 0, analysed = 0, skipped = 0;
  const frame = () => ({ timestamp: sequence[i], close() {} });
  if (path === "MediaStreamTrackProcessor") {
    window.MediaStreamTrackProcessor = class { constructor() { this.readable = { getReader: () => ({
      read: async () => (i < sequence.length ? { value: frame(), done: false } : { done: true }), cancel: async () => {} }) }; } };
  } else {
    delete window.MediaStreamTrackProcessor;
  }
  const video = { requestVideoFrameCallback: (callback) => setTimeout(() => callback(0, { presentedFrames: sequence[i] })) };
  const track = { getSettings: () => ({ frameRate: 30 }) };
  await window.ferDemo.eachFrame(track, video, async () => { analysed += 1; i += 1; },
                                 { running: () => i < sequence.length, skip: (n) => { skipped += n; } });
  return { analysed, skipped };
}"""


@pytest.mark.parametrize("frames_from", sorted(FRAMES))
def test_frames_the_live_loop_cannot_keep_up_with_are_counted_as_skipped(demo, frames_from):
    """Frames the loop was too busy to read are counted exactly, from the gaps in the timestamps (WebCodecs) or in
    the video's count of frames shown: 6 read, 3 + 4 lost on the way (no clock involved)."""
    counts = demo.evaluate(SCRIPTED_CAMERA, [frames_from, json.loads(FRAMES[frames_from])])
    assert counts == {"analysed": 6, "skipped": 7}


def test_a_video_frame_reads_as_the_same_image(demo, recognizer):
    """Camera frames come as WebCodecs VideoFrames, read by copyTo: the same faces as the same picture as an image."""
    from skimage import data

    faces = demo.evaluate("""async (url) => {
      const fer = await window.ferDemo.recognizer;
      const bitmap = await createImageBitmap(await (await fetch(url)).blob());
      const frame = new VideoFrame(bitmap, { timestamp: 0 });
      try { return [await fer.analyze(bitmap), await fer.analyze(frame)]; } finally { frame.close(); }
    }""", data_url(data.astronaut()))
    assert faces[0] == faces[1] and len(faces[0]) == 1


@pytest.mark.parametrize("camera, says", [("none", "No camera was found"), ("refused", "Camera permission was refused")])
def test_camera_problems_get_a_clear_message(playwright, base_url, camera, says):
    browser, page, _ = open_page(playwright, base_url, camera=camera)
    try:
        page.evaluate("window.ferDemo.ready")
        error = page.evaluate("window.ferDemo.startCamera().then(() => null, (err) => err.message)")
        assert error and error.startswith(says) and page.text_content("#message").startswith(says)
    finally:
        browser.close()


def test_a_browser_without_webassembly_simd_is_told_so(playwright, base_url):
    no_simd = "const validate = WebAssembly.validate; WebAssembly.validate = (bytes) => bytes.length === 31 ? false : validate(bytes);"
    browser, page, _ = open_page(playwright, base_url, init_script=no_simd)
    try:
        page.wait_for_function("document.getElementById('message').textContent.length > 0", timeout=20_000)
        assert "WebAssembly SIMD" in page.text_content("#message")
    finally:
        browser.close()


def test_a_second_visit_works_offline(playwright, base_url, recognizer):
    from skimage import data

    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    try:
        context = browser.new_context()
        page = context.new_page()
        page.goto(base_url + LOCAL_PAGE)
        assert page.evaluate("window.ferDemo.offlineReady") is True
        context.set_offline(True)
        page.reload()
        assert page.evaluate("window.ferDemo.ready") is True
        faces = page.evaluate("(url) => window.ferDemo.analyze(url)", data_url(data.astronaut()))
        assert [f["label"] for f in faces] == [f.label for f in recognizer.predict(data.astronaut())]
    finally:
        browser.close()


def test_the_bare_address_runs_on_the_local_files_with_no_404(playwright, base_url, tmp_path):
    """`python web/serve.py`'s own address: the local runtime and models, nothing from outside, no missing
    file (the favicon included), and a visible way to choose another photo once one is shown."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    try:
        page = browser.new_context().new_page()
        requests, failed = [], []
        page.on("request", lambda r: requests.append(r.url))
        page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        page.goto(base_url + "/")
        assert page.evaluate("window.ferDemo.ready") is True
        assert not page.is_visible("#another")
        page.set_input_files("#file", files=[{"name": "a.png", "mimeType": "image/png",
                                              "buffer": base64.b64decode(data_url(astronaut_canvas((320, 240), [90])[0]).split(",")[1])}])
        page.wait_for_selector("#photo:not([hidden])")
        assert page.is_visible("#another") and page.text_content("#another") == "Choose another photo"
        with page.expect_file_chooser() as chooser:
            page.click("#another")
        chooser.value.set_files(str(ROOT / "web" / "examples" / "astronaut.jpg"))
        page.wait_for_function("document.querySelector('#message').textContent.includes('main face')")
        assert page.url.endswith(LOCAL_PAGE)
    finally:
        browser.close()
    assert [u for u in requests if not u.startswith((base_url, "data:", "blob:"))] == []
    assert failed == [] and not [u for u in requests if "/ort/" in u or "onnxruntime" in u]  # its own runtime


def test_the_examples_show_thumbnails_and_a_click_reads_the_photo_itself(playwright, base_url):
    """A first visit fetches the examples' thumbnails, never the photos; clicking one reads the photo."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    try:
        page = browser.new_context().new_page()
        requests = []
        page.on("request", lambda r: requests.append(r.url.split("?")[0]))
        page.goto(base_url + LOCAL_PAGE)
        assert page.evaluate("window.ferDemo.offlineReady") is True
        page.wait_for_function("[...document.querySelectorAll('#examples img')].every((img) => img.complete "
                               "&& img.naturalHeight === 128)")
        assert {u.split("/")[-2] for u in requests if u.endswith(("astronaut.jpg", "chelsea.jpg"))} == {"thumbnails"}
        page.locator("#examples img").first.click()
        page.wait_for_function("document.querySelector('#message').textContent.includes('main face')")
        assert base_url + "/examples/astronaut.jpg" in requests
    finally:
        browser.close()


NETWORKS = """async ([file, name, dims, values, threads]) => {
  const { createNetwork, loadRuntime } = await import("/runtime/runtime.js");
  const bytes = new Uint8Array(await (await fetch(file)).arrayBuffer());
  const runtime = await loadRuntime({ threads }), net = createNetwork(runtime, bytes);
  await runtime.pool.start();
  if (runtime.pool.parts !== threads || !runtime.pool.started) throw new Error("the threads did not start");
  const data = new Float32Array(Uint8Array.from(atob(values), (c) => c.charCodeAt(0)).buffer); // base64 float32
  const outputs = net.run({ [name]: { data, dims } });
  const base64 = (a) => {
    const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(text);
  };
  return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, { data: base64(v.data), dims: v.dims }]));
}"""


WEIGHTS, DETECTOR = ROOT / "fer_model" / "weights" / "default", ROOT / "fer_model" / "detection" / "models"


@pytest.mark.parametrize("file, name, shape", [(WEIGHTS / "model_int8.onnx", "faces", (5, 1, 44, 44)),
                                               (WEIGHTS / "model_int8.onnx", "faces", (300, 1, 44, 44)),  # 150 faces, flip TTA
                                               (WEIGHTS / "model.onnx", "faces", (3, 1, 44, 44)),
                                               (DETECTOR / "yunet.onnx", "input", (1, 3, 96, 160))], ids=lambda v: getattr(v, "name", None))
@pytest.mark.parametrize("threads", [1, 2])
def test_the_runtime_computes_what_onnx_runtime_computes(demo, file, name, shape, threads):
    """Every output of each network on random inputs, on one thread and on two: the int8 graph's bytes exactly
    (its outputs are dequantized bytes), for a few faces and for a batch larger than any stack, the float graphs
    within float rounding of their sums."""
    import onnxruntime

    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, shape).astype(np.float32)
    inputs = pixels if name == "input" else ((pixels / 255.0 - np.float32(0.5)) / np.float32(0.25)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    expected = dict(zip([o.name for o in session.get_outputs()], session.run(None, {name: inputs})))
    outputs = demo.evaluate(NETWORKS, [f"/models/{file.name}", name, list(shape),
                                       base64.b64encode(inputs.astype("<f4").tobytes()).decode(), threads])
    assert outputs.keys() == expected.keys()
    for key, value in expected.items():
        got = np.frombuffer(base64.b64decode(outputs[key]["data"]), "<f4").reshape(outputs[key]["dims"])
        assert got.shape == value.shape
        if "int8" in file.name:
            np.testing.assert_array_equal(got, value)
        else:
            np.testing.assert_allclose(got, value, rtol=1e-5, atol=1e-5)


def test_the_runtime_runs_its_other_operators_as_onnx_runtime_does(demo, tmp_path):
    """Sigmoid, Concat, Reshape (-1) and Softmax, which neither network uses today, on a graph of their own."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Concat", ["x", "s"], ["c"], axis=1),
             helper.make_node("Reshape", ["c", "shape"], ["r"]), helper.make_node("Softmax", ["r"], ["y"], axis=-1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 5])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape)
                               for n, shape in (("s", [2, 3, 4, 5]), ("c", [2, 6, 4, 5]), ("y", [2, 120]))],
                              [numpy_helper.from_array(np.array([2, -1], np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    x = np.random.default_rng(3).uniform(-30, 30, (2, 3, 4, 5)).astype(np.float32)
    expected = dict(zip(["s", "c", "y"], onnxruntime.InferenceSession(model.SerializeToString()).run(None, {"x": x})))
    got = demo.evaluate("""async ([bytes, values]) => {
      const { createNetwork, loadRuntime } = await import("/runtime/runtime.js");
      const out = createNetwork(await loadRuntime(), Uint8Array.from(bytes)).run({ x: { data: Float32Array.from(values), dims: [2, 3, 4, 5] } });
      return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { data: Array.from(v.data), dims: v.dims }]));
    }""", [list(model.SerializeToString()), x.ravel().tolist()])
    for name, value in expected.items():
        assert got[name]["dims"] == list(value.shape)
        np.testing.assert_allclose(np.array(got[name]["data"], np.float32).reshape(value.shape), value, rtol=1e-6, atol=1e-7)


def test_the_runtime_refuses_what_it_cannot_run_in_one_line(demo):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Tanh", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph)
    onnx.checker.check_model(model)
    error = demo.evaluate("""async (bytes) => {
      const { createNetwork, loadRuntime } = await import("/runtime/runtime.js");
      try { createNetwork(await loadRuntime(), Uint8Array.from(bytes)); } catch (e) { return e.message; }
    }""", list(model.SerializeToString()))
    assert error == "this runtime has no Tanh operator"
    wrong_size = demo.evaluate("""async () => {
      const { createNetwork, loadRuntime } = await import("/runtime/runtime.js");
      const net = createNetwork(await loadRuntime(), new Uint8Array(await (await fetch("/models/model_int8.onnx")).arrayBuffer()));
      try { net.run({ faces: { data: new Float32Array(48 * 48), dims: [1, 1, 48, 48] } }); } catch (e) { return e.message; }
    }""")
    assert wrong_size == "Gemm: 2880 inputs for weights of 1280"


def test_labels_are_placed_as_python_places_them(demo):
    from fer_model.predictor import label_positions

    rng = np.random.default_rng(0)
    boxes = [tuple(int(v) for v in (rng.integers(0, 500), rng.integers(0, 400), rng.integers(30, 120), rng.integers(30, 120)))
             for _ in range(12)]
    sizes = [(int(rng.integers(60, 200)), 22) for _ in boxes]
    placed = demo.evaluate("async ([boxes, sizes]) => (await import('/app.js')).labelPositions(boxes, sizes, [640, 480])",
                           [boxes, sizes])
    assert [tuple(p) for p in placed] == label_positions(boxes, sizes, (640, 480))
