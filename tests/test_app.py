"""The app, served on a free local port: Gradio's API through gradio_client, /v1 and MCP on the same port, bad
inputs, a real browser."""
import shutil
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image

from fer_model import EMOTIONS, MAX_PIXELS
from fer_model.results import NO_FACE, TABLE_HEADERS, main_face_label

from benchmarks.common import write_clip

from .conftest import hostile_corpus

gradio_client = pytest.importorskip("gradio_client")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """app.py's ASGI application on uvicorn, as `python app.py` serves it."""
    import uvicorn

    import app

    port = _free_port()
    served = uvicorn.Server(uvicorn.Config(app.server, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not served.started:
        assert thread.is_alive() and time.time() < deadline, "the app did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    served.should_exit = True
    thread.join(timeout=30)


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


def _confidences(label_value):
    return {c["label"]: c["confidence"] for c in label_value["confidences"]}


BOX_YELLOW = np.array([255, 200, 0])


def test_live_frame_and_ui_handlers(astronaut, blank_photo):
    import app

    annotated, label, message = app.live(np.asarray(astronaut))  # a webcam frame arrives as an RGB array
    assert annotated.size == astronaut.size and set(_confidences(label)) == set(EMOTIONS) and message == ""
    assert app.live(blank_photo)[1:] == ({}, NO_FACE)  # the webcam tab says when it sees no face
    label, annotated, rows, message = app.analyze(np.asarray(astronaut))
    assert len(rows) == 1 and rows[0][1] in EMOTIONS and "Main face" in message
    assert rows[0][1] == label["label"] and rows[0][2] == f"{max(_confidences(label).values()):.0%}"
    assert len(rows[0]) == len(TABLE_HEADERS) and sum("%" in str(cell) for cell in rows[0]) == 1  # one confidence
    personal = app.analyze(np.asarray(astronaut), rest=np.asarray(astronaut))
    assert personal[2][0][1] in EMOTIONS and personal[0] != label  # read against its resting face
    assert app.analyze(np.asarray(astronaut), rest=blank_photo)[3].startswith("⚠️ no face found in resting-face photo")
    overlay = app.analyze(np.asarray(astronaut), explain=True)[1]
    assert overlay.size == astronaut.size and np.asarray(overlay).tobytes() != np.asarray(annotated).tobytes()
    for picture in (annotated, overlay):  # the saliency view keeps the boxes and labels
        assert (np.abs(np.asarray(picture).astype(int) - BOX_YELLOW).sum(axis=2) == 0).sum() > 500


def test_an_uncertain_main_face_reads_as_uncertain():
    import app
    from fer_model import FacePrediction

    scores = dict.fromkeys(EMOTIONS, 0.08) | {"sad": 0.27, "angry": 0.25}
    panel = main_face_label([FacePrediction((0, 0, 10, 10), "sad", scores, 0.9, uncertain=True)])
    assert panel["label"] == "uncertain: sad or angry" and _confidences(panel)["sad"] == 0.27
    shown = app.label.postprocess(panel)  # what the panel's big heading then says
    assert shown.label == "uncertain: sad or angry" and [c.label for c in shown.confidences][:2] == ["sad", "angry"]
    assert app.live_label.postprocess(panel).confidences[2].confidence == 0.08
    assert app.label.postprocess({}) == {}
    assert main_face_label([FacePrediction((0, 0, 10, 10), "sad", scores, 0.9)])["label"] == "sad"


def test_a_file_that_is_not_an_image_gets_the_one_line_message(photos, tmp_path):
    import app

    (tmp_path / "notes.jpg").write_text("a text file renamed")
    (tmp_path / "empty.jpg").write_bytes(b"")
    for name, says in (("notes.jpg", "not an image"), ("empty.jpg", "the file is empty")):
        label, annotated, rows, message = app.analyze(app.image.preprocess(_uploaded(tmp_path / name)))
        assert message == f"⚠️ {says}" if says == "the file is empty" else message.startswith(f"⚠️ {says}")
        assert "/tmp" not in message and "UnidentifiedImageError" not in message


def _uploaded(path):
    from gradio.data_classes import FileData

    return FileData(path=str(path), orig_name=path.name)


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


def test_api_page_shows_a_photo(client):
    endpoint = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/faces"]
    photo = endpoint["parameters"][0]
    assert photo["label"] == "Photo" and photo["component"] == "Image"
    assert photo["example_input"]["path"].endswith((".png", ".jpg"))  # not the generic PDF of a File input


def test_v1_is_served_on_the_app_port(server, photos):
    import httpx

    data = (photos / "astronaut.jpg").read_bytes()
    answer = httpx.post(f"{server}v1/faces", content=data, headers={"Content-Type": "image/jpeg"}, timeout=60)
    gradio = gradio_client.Client(server, verbose=False).predict(
        gradio_client.handle_file(str(photos / "astronaut.jpg")), api_name="/faces")
    assert answer.status_code == 200 and answer.json() == gradio  # exactly the JSON of /faces
    assert httpx.get(f"{server}v1/health").json()["status"] == "ok"
    assert httpx.get(f"{server}v1/docs").status_code == 200
    assert "/faces/batch" in httpx.get(f"{server}v1/openapi.json").json()["paths"]


def _call_tools(url, calls):
    """Every (tool, arguments) of `calls` through a real MCP client session: the tool list and the results."""
    import asyncio

    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def run():
        async with streamable_http_client(url) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {tool.name: tool for tool in (await session.list_tools()).tools}
                return tools, [await session.call_tool(name, arguments) for name, arguments in calls]

    return asyncio.run(run())


def test_mcp_tools_through_a_real_client(server, photos):
    import base64
    import json

    import httpx

    upload = f"{server}gradio_api/upload"
    with open(photos / "clip.mp4", "rb") as clip, open(photos / "astronaut.jpg", "rb") as photo:
        clip_path, photo_path = httpx.post(upload, files=[("files", ("clip.mp4", clip)),
                                                          ("files", ("astronaut.jpg", photo))]).json()
    data_url = "data:image/jpeg;base64," + base64.b64encode((photos / "astronaut.jpg").read_bytes()).decode()
    tools, results = _call_tools(f"{server}mcp", [
        ("faces", {"image": data_url}),
        ("predict", {"image": f"{server}gradio_api/file={photo_path}"}),  # the app's own file URL
        ("faces", {"image": photo_path}),                                  # an uploaded file's path
        ("video", {"video": clip_path}),
        ("faces", {"image": "/etc/hostname"}),                             # a path outside the uploads
        ("faces", {"image": "http://127.0.0.1:9/photo.jpg"}),              # a loopback URL: never fetched
        ("faces", {"image": "data:image/png;base64,bm90IGFuIGltYWdl"}),   # "not an image"
        ("faces", {"image": data_url, "baseline": data_url}),              # read against a resting face
    ])
    assert set(tools) == {"predict", "faces", "video"}
    for tool in tools.values():
        text = tool.description + json.dumps(tool.inputSchema)
        assert "data: URL" in text and "upload_file_to_gradio" not in text and ",," not in text, text
    assert "angry, disgust, fear, happy, sad, surprise or neutral" in tools["predict"].description
    video_text = json.dumps(tools["video"].inputSchema)
    assert "data:video/mp4" in video_text and "data:image" not in video_text  # a video's example is a video's
    assert all("\n" not in r.content[0].text and '": ' not in r.content[0].text for r in results[:4])  # compact
    *results, personal = results
    personal = json.loads(personal.content[0].text)
    faces, main, by_path, video, *refused = [json.loads(r.content[0].text) if not r.isError else r for r in results]
    assert personal["count"] == 1 and personal["faces"][0]["scores"] != faces["faces"][0]["scores"]
    assert faces["count"] == 1 and faces["faces"][0]["label"] in EMOTIONS
    assert main["label"] == faces["faces"][0]["label"] and by_path == faces
    assert len(video["frames"]) == 10 and list(video["tracks"]) == ["1"]
    messages = [r.content[0].text for r in refused]
    assert all(r.isError for r in refused)
    assert "not a file uploaded to this app" in messages[0] and "not fetched" in messages[1]
    assert "not an image" in messages[2] and not any("Traceback" in m for m in messages)


def test_the_readme_api_snippets_run_as_written(server, monkeypatch):
    """The curl lines, `requests` and gradio_client snippets of the README and docs/usage.md, against this server
    instead of :7860."""
    import re
    import subprocess

    from .conftest import ROOT

    text = "".join((ROOT / name).read_text() for name in ("README.md", "docs/usage.md"))
    text = text.replace("http://127.0.0.1:7860/", server)
    monkeypatch.chdir(ROOT)
    snippets = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "127.0.0.1" in b]
    assert len(snippets) == 2
    for snippet in snippets:
        exec(compile(snippet, "docs/usage.md", "exec"), {})
    curls = [line for block in re.findall(r"```bash\n(.*?)```", text, re.S) for line in block.splitlines()
             if line.startswith("curl ")]
    assert len(curls) == 3
    if shutil.which("curl"):
        for line in curls:
            answer = subprocess.run(line, shell=True, capture_output=True, text=True, timeout=60, check=True).stdout
            assert '"count":' in answer and '"error"' not in answer


def test_a_token_locks_every_route_that_reads_media(tmp_path, photos):
    """With FER_API_TOKEN set, /v1 and /mcp want the bearer token, and the UI, Gradio's API and its uploads the
    login (fer, token); without them nothing is analysed, with them everything works."""
    import subprocess
    import sys

    import httpx

    from .conftest import ROOT, subprocess_env

    port = _free_port()
    env = {**subprocess_env(), "FER_API_TOKEN": "s3cret", "GRADIO_SERVER_PORT": str(port), "FER_WORKERS": "1"}
    app = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    base, bearer = f"http://127.0.0.1:{port}/", {"Authorization": "Bearer s3cret"}
    try:
        deadline = time.time() + 120
        while True:
            try:
                httpx.get(f"{base}v1/health", timeout=5)
                break
            except httpx.TransportError:
                assert app.poll() is None and time.time() < deadline, app.stderr.read()[-2000:] if app.poll() else "slow"
                time.sleep(0.2)
        photo = (photos / "astronaut.jpg").read_bytes()
        jpeg = {"Content-Type": "image/jpeg"}
        assert httpx.post(f"{base}v1/faces", content=photo, headers=jpeg).status_code == 401
        assert httpx.post(f"{base}v1/faces", content=photo, headers={**jpeg, **bearer}).json()["count"] == 1
        mcp_call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        accept = {"Accept": "application/json, text/event-stream"}
        refused = httpx.post(f"{base}mcp", json=mcp_call, headers=accept)
        assert refused.status_code == 401 and list(refused.json()) == ["error"]
        assert httpx.post(f"{base}mcp", json=mcp_call, headers={**accept, **bearer}).status_code == 200
        upload = httpx.post(f"{base}gradio_api/upload", files=[("files", ("a.jpg", photo))])
        assert upload.status_code in (401, 403)
        run = httpx.post(f"{base}gradio_api/run/faces", json={"data": [{"path": "x.jpg"}]})
        assert run.status_code in (401, 403) and '"count"' not in run.text
        with pytest.raises(Exception):
            gradio_client.Client(base, verbose=False).predict(gradio_client.handle_file(str(photos / "astronaut.jpg")),
                                                              api_name="/faces")
        allowed = gradio_client.Client(base, verbose=False, auth=("fer", "s3cret"))
        assert allowed.predict(gradio_client.handle_file(str(photos / "astronaut.jpg")), api_name="/faces")["count"] == 1
        assert httpx.post(f"{base}login", data={"username": "fer", "password": "wrong"}).status_code in (400, 401)
        assert httpx.get(f"{base}config").status_code in (401, 403)  # the web UI: its app only after a login
        with httpx.Client(base_url=base) as browser:
            assert browser.post("login", data={"username": "fer", "password": "s3cret"}).status_code in (200, 302, 303)
            assert browser.get("config").status_code == 200
    finally:
        app.kill()
        app.wait(timeout=30)
