"""The Gradio app, served on a free local port: API endpoints through gradio_client, bad inputs, a real browser."""
import shutil
import socket

import numpy as np
import pytest
from PIL import Image

from fer_model import EMOTIONS, MAX_PIXELS

from benchmarks.common import write_clip

from .conftest import hostile_corpus

gradio_client = pytest.importorskip("gradio_client")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    import app

    port = _free_port()
    app.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    show_error=True, theme=app.theme, max_file_size=app.MAX_FILE_SIZE, mcp_server=True)
    yield f"http://127.0.0.1:{port}/"
    app.demo.close()


@pytest.fixture(scope="module")
def client(server):
    return gradio_client.Client(server, verbose=False)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut, fer_crop):
    folder = tmp_path_factory.mktemp("photos")
    astronaut.save(folder / "astronaut.jpg")
    fer_crop.save(folder / "fer.png")
    Image.fromarray(np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1))).save(folder / "blank.png")
    (folder / "notes.txt").write_text("not an image")
    data = (folder / "astronaut.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    Image.new("1", (8000, MAX_PIXELS // 8000 + 1)).save(folder / "huge.png")
    write_clip(folder / "clip.mp4", astronaut)
    (folder / "truncated.mp4").write_bytes((folder / "clip.mp4").read_bytes()[:300])
    return folder


def _label_payload_ok(payload):
    assert payload["label"] in EMOTIONS
    confidences = {c["label"]: c["confidence"] for c in payload["confidences"]}
    assert set(confidences) == set(EMOTIONS)
    assert sum(confidences.values()) == pytest.approx(1.0, abs=1e-4)


def test_api_lists_the_endpoints_with_labelled_components(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert set(endpoints) == {"/predict", "/faces", "/video"}
    for endpoint in endpoints.values():
        for component in endpoint["parameters"] + endpoint["returns"]:
            assert not component["label"].startswith("value_"), component


def test_mcp_schema_lists_the_tools_with_their_docstrings(server):
    import json
    import urllib.request

    with urllib.request.urlopen(f"{server}gradio_api/mcp/schema", timeout=30) as response:
        tools = {tool["name"]: tool for tool in json.load(response)}
    assert set(tools) == {"predict", "faces", "video"}
    assert tools["faces"]["description"].startswith("Every face in a photo with its emotion.")
    assert "image" in tools["faces"]["inputSchema"]["properties"]


@pytest.mark.parametrize("name", ["astronaut.jpg", "fer.png"])
def test_predict_endpoint(client, photos, name):
    _label_payload_ok(client.predict(gradio_client.handle_file(str(photos / name)), api_name="/predict"))


@pytest.mark.parametrize("name, size", [("astronaut.jpg", (512, 512)), ("fer.png", (48, 48))])
def test_faces_endpoint(client, photos, name, size):
    result = client.predict(gradio_client.handle_file(str(photos / name)), api_name="/faces")
    assert result["count"] == len(result["faces"]) == 1
    assert (result["image"]["width"], result["image"]["height"]) == size
    face = result["faces"][0]
    assert len(face["box"]) == 4 and face["label"] in EMOTIONS
    assert set(face["scores"]) == set(EMOTIONS) and sum(face["scores"].values()) == pytest.approx(1.0, abs=1e-4)


def test_no_face_is_machine_readable(client, photos):
    payload = client.predict(gradio_client.handle_file(str(photos / "blank.png")), api_name="/predict")
    assert not payload.get("label") and not payload.get("confidences")
    result = client.predict(gradio_client.handle_file(str(photos / "blank.png")), api_name="/faces")
    assert result["count"] == 0 and "No face found" in result["message"]


@pytest.mark.parametrize("name, says", [("notes.txt", "not an image"),
                                        ("truncated.jpg", "could not decode"),
                                        ("huge.png", "pixel limit")])
def test_bad_inputs_get_a_clear_error_and_the_server_keeps_serving(client, photos, name, says):
    with pytest.raises(Exception, match=says) as error:
        client.predict(gradio_client.handle_file(str(photos / name)), api_name="/faces")
    assert "/tmp" not in str(error.value) and "gradio" not in str(error.value).lower()  # no server paths
    _label_payload_ok(client.predict(gradio_client.handle_file(str(photos / "astronaut.jpg")), api_name="/predict"))


def test_hostile_corpus_through_the_api(client, photos, tmp_path):
    answered = {}
    for name, data in hostile_corpus().items():
        (tmp_path / name).write_bytes(data)
        try:
            result = client.predict(gradio_client.handle_file(str(tmp_path / name)), api_name="/faces")
            answered[name] = "ok" if "count" in result else result
        except gradio_client.exceptions.AppError as err:  # the app's error, sent back with a message
            assert str(err).strip(), name
            answered[name] = "error"
    assert answered["animated.gif"] == "ok" and answered["16bit.png"] == "ok"
    assert answered["bomb.png"] == answered["truncated.jpg"] == answered["random.bin"] == "error"
    _label_payload_ok(client.predict(gradio_client.handle_file(str(photos / "astronaut.jpg")), api_name="/predict"))


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def test_browser_upload_shows_the_label(server, photos, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium on this machine (install Debian's chromium package)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(server, wait_until="load")
        page.get_by_role("button", name="Read expressions").click()  # no image yet: a message, no error badges
        page.get_by_text("Upload an image or take a webcam snapshot first.").first.wait_for(timeout=30_000)
        assert page.get_by_text("Error", exact=True).count() == 0
        page.locator(".gallery-item, [data-testid='examples'] button, .example").first.click()  # an example runs
        page.get_by_text("Main face:").wait_for(timeout=60_000)
        page.reload(wait_until="load")
        page.locator("input[type=file]").first.set_input_files(str(photos / "astronaut.jpg"))
        page.get_by_text("Main face:").wait_for(timeout=60_000)
        summary = page.get_by_text("Main face:").inner_text()
        page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
        browser.close()
    assert any(label in summary for label in EMOTIONS)
    assert (tmp_path / "app.png").stat().st_size > 10_000
    outside = [u for u in requests if not u.startswith((server, "data:", "blob:"))]
    assert outside == [], f"the page fetched from outside: {outside[:5]}"


def test_live_frame_and_ui_handlers(astronaut, blank_photo):
    import app

    annotated, label = app.live(np.asarray(astronaut))  # a webcam frame arrives as an RGB array
    assert annotated.size == astronaut.size and set(label) == set(EMOTIONS)
    assert app.live(blank_photo)[1] == {}
    scores, annotated, rows, message = app.analyze(np.asarray(astronaut))
    assert len(rows) == 1 and rows[0][1].split()[-2] in EMOTIONS and "Main face" in message
    assert rows[0][2] == f"{max(scores.values()):.0%}"  # the table says what the label panel says
    overlay = app.analyze(np.asarray(astronaut), explain=True)[1]
    assert overlay.size == astronaut.size and np.asarray(overlay).tobytes() != np.asarray(annotated).tobytes()


def test_the_button_with_no_image_shows_only_a_message():
    import app

    scores, annotated, rows, message = app.analyze(None)
    assert scores == {} and annotated is None and rows == [] and "Upload an image" in message


def test_video_endpoint_tracks_one_face(client, photos):
    result = client.predict(gradio_client.handle_file(str(photos / "clip.mp4")), api_name="/video")
    assert len(result["frames"]) == 10 and not result["truncated"]  # 20 frames at 10 fps, 5 analysed a second
    assert {face["track_id"] for frame in result["frames"] for face in frame["faces"]} == {1}
    assert list(result["tracks"]) == ["1"] and result["tracks"]["1"]["dominant"] in EMOTIONS


def test_video_endpoint_refuses_broken_videos(client, photos):
    for name in ("truncated.mp4", "notes.txt"):
        with pytest.raises(Exception, match="video|frame"):
            client.predict(gradio_client.handle_file(str(photos / name)), api_name="/video")
