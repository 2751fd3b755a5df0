"""The /v1 HTTP API (fer_model.serving.http_api) and the recognizer pool behind it: routes, errors, token, limits."""
import io
import logging
import re
import threading

import numpy as np
import pytest
from PIL import Image

from fer_model import EMOTIONS
from fer_model.results import analyze_photo
from fer_model.serving import PoolFullError, RecognizerPool

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from fer_model.serving.http_api import Settings, create_api  # noqa: E402


@pytest.fixture(scope="module")
def pool(recognizer):
    pool = RecognizerPool(lambda: recognizer, workers=2, queue_size=4)
    yield pool
    pool.close()


def _client(pool, **settings) -> TestClient:
    return TestClient(create_api(pool, Settings(**settings)), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def api(pool):
    return _client(pool)


@pytest.fixture(scope="module")
def blank_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_photo_as_the_body_or_a_multipart_field(api, recognizer, astronaut_jpeg):
    expected = analyze_photo(recognizer, astronaut_jpeg)
    body = api.post("/faces", content=astronaut_jpeg, headers={"Content-Type": "image/jpeg"})
    form = api.post("/faces", files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")})
    untyped = api.post("/faces", content=astronaut_jpeg)
    assert body.status_code == form.status_code == untyped.status_code == 200
    assert body.json() == form.json() == untyped.json() == expected
    assert expected["count"] == 1 and expected["faces"][0]["label"] in EMOTIONS


def test_a_resting_face_beside_the_photo_reads_it_against_that_face(api, recognizer, astronaut_jpeg, blank_photo):
    import io

    from PIL import Image

    expected = analyze_photo(recognizer.personalize(astronaut_jpeg), astronaut_jpeg)
    answer = api.post("/faces", files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg"),
                                       "baseline": ("rest.jpg", astronaut_jpeg, "image/jpeg")})
    assert answer.status_code == 200 and answer.json() == expected
    assert expected != analyze_photo(recognizer, astronaut_jpeg)
    buffer = io.BytesIO()
    Image.fromarray(blank_photo).save(buffer, "PNG")
    no_face = api.post("/faces", files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg"),
                                        "baseline": ("rest.png", buffer.getvalue(), "image/png")})
    assert no_face.status_code == 400 and "no face found in resting-face photo" in no_face.json()["error"]
    two = api.post("/faces", files=[("image", ("a.jpg", astronaut_jpeg)), ("baseline", ("r.jpg", astronaut_jpeg)),
                                    ("baseline", ("s.jpg", astronaut_jpeg))])
    assert two.status_code == 400 and "at most one resting-face photo" in two.json()["error"]


def test_tta_is_a_query_option(api, recognizer, astronaut_jpeg):
    ten_crop = api.post("/faces?tta=ten_crop", content=astronaut_jpeg, headers={"Content-Type": "image/jpeg"})
    assert ten_crop.json() == analyze_photo(recognizer, astronaut_jpeg, "ten_crop")
    assert ten_crop.json() != analyze_photo(recognizer, astronaut_jpeg, "none")
    wrong = api.post("/faces?tta=twenty", content=astronaut_jpeg)
    assert wrong.status_code == 400 and "none, flip, ten_crop" in wrong.json()["error"]


def test_batch_answers_in_order_with_an_error_in_place(api, astronaut_jpeg, blank_png):
    files = [("images", ("a.jpg", astronaut_jpeg, "image/jpeg")), ("images", ("b.png", blank_png, "image/png")),
             ("images", ("c.jpg", b"not an image", "image/jpeg")), ("images", ("notes.txt", b"hello", "text/plain")),
             ("images", ("d.jpg", astronaut_jpeg, "image/jpeg"))]
    answer = api.post("/faces/batch", files=files)
    assert answer.status_code == 200
    first, second, third, text, last = answer.json()
    assert first["count"] == 1 and second["count"] == 0 and "No face found" in second["message"]
    assert third == {"error": "not an image, or an image format that cannot be read"}
    assert list(text) == ["error"] and "'text/plain' is not an image" in text["error"]  # in its place, as a corrupt one
    assert last == first
    assert api.post("/faces/batch", content=astronaut_jpeg, headers={"Content-Type": "image/jpeg"}).status_code == 415


def test_health_and_docs(api):
    assert api.get("/health").json() == {"status": "ok", "workers": 2, "queue_size": 4, "in_flight": 0}
    schema = api.get("/openapi.json").json()
    assert {"/faces", "/faces/batch", "/health"} <= set(schema["paths"])
    assert "image/*" in schema["paths"]["/faces"]["post"]["requestBody"]["content"]
    page = api.get("/docs")
    assert page.status_code == 200 and "cdn" not in page.text and "http" not in page.text.split("<body>")[-1]
    scripts = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert scripts and all(api.get(url.removeprefix("/v1")).status_code == 200 for url in scripts)  # offline


@pytest.mark.parametrize("content, content_type, status, says", [
    (b"definitely not a picture", "image/jpeg", 400, "not an image"),
    (b"", "image/jpeg", 400, "empty"),
    (b"{}", "application/json", 415, "'application/json' is not an image"),
    (b"hello", "text/plain", 415, "is not an image"),
])
def test_errors_are_one_json_line_and_log_no_traceback(api, caplog, content, content_type, status, says):
    with caplog.at_level(logging.INFO, logger="fer_model.serving.http_api"):
        answer = api.post("/faces", content=content, headers={"Content-Type": content_type})
    assert answer.status_code == status and says in answer.json()["error"] and list(answer.json()) == ["error"]
    assert "\n" not in answer.json()["error"] and "Traceback" not in answer.text
    assert [r.exc_info for r in caplog.records] == [None]  # one line logged, no traceback


def test_a_text_part_in_a_form_is_refused(api, astronaut_jpeg):
    answer = api.post("/faces", files={"image": ("notes.txt", b"hello", "text/plain")})
    assert answer.status_code == 415
    assert api.post("/faces", data={"image": "a string"}, files={"other": ("x", b"x")}).status_code == 400


def test_bodies_over_the_limit_are_refused_before_they_are_read(pool, astronaut_jpeg):
    api = _client(pool, max_body_bytes=10_000)
    declared = api.post("/faces", content=astronaut_jpeg, headers={"Content-Type": "image/jpeg"})
    assert declared.status_code == 413 and "limit" in declared.json()["error"]
    streamed = api.post("/faces", content=iter([astronaut_jpeg[:8000], astronaut_jpeg[8000:]]),
                        headers={"Content-Type": "image/jpeg"})  # chunked: no Content-Length to go by
    assert streamed.status_code == 413
    many = _client(pool, max_batch_images=2).post("/faces/batch", files=[("images", ("a.jpg", astronaut_jpeg))] * 3)
    assert many.status_code == 413 and "at most 2" in many.json()["error"]


def test_a_token_guards_the_photo_routes(pool, astronaut_jpeg):
    api = _client(pool, token="s3cret")
    headers = {"Content-Type": "image/jpeg"}
    assert api.post("/faces", content=astronaut_jpeg, headers=headers).status_code == 401
    wrong = api.post("/faces", content=astronaut_jpeg, headers={**headers, "Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    right = api.post("/faces", content=astronaut_jpeg, headers={**headers, "Authorization": "Bearer s3cret"})
    assert right.status_code == 200 and right.json()["count"] == 1
    assert api.post("/faces/batch", files=[("images", ("a.jpg", astronaut_jpeg))]).status_code == 401
    assert api.get("/health").status_code == 200


def test_cors_origins_are_configurable(pool):
    allowed = _client(pool, cors_origins=["https://example.org"])
    preflight = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    assert allowed.options("/faces", headers=preflight).headers["access-control-allow-origin"] == "https://example.org"
    assert "access-control-allow-origin" not in allowed.options(
        "/faces", headers={**preflight, "Origin": "https://other.example"}).headers


def test_a_full_server_answers_503_with_retry_after(recognizer, astronaut_jpeg):
    pool = RecognizerPool(lambda: recognizer, workers=1, queue_size=0)
    release = threading.Event()
    busy = pool.submit(lambda _: release.wait(30))
    try:
        answer = _client(pool).post("/faces", content=astronaut_jpeg, headers={"Content-Type": "image/jpeg"})
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1" and "busy" in answer.json()["error"]
    finally:
        release.set()
    busy.result(timeout=30)
    assert _client(pool).post("/faces", content=astronaut_jpeg).status_code == 200  # served again once free
    pool.close()


def test_the_pool_bounds_work_in_flight(recognizer):
    pool = RecognizerPool(lambda: object(), workers=2, queue_size=1)
    release, running = threading.Event(), []
    futures = [pool.submit(lambda r: running.append(r) or release.wait(30)) for _ in range(3)]
    with pytest.raises(PoolFullError, match="busy"):
        pool.submit(lambda r: None)
    assert pool.in_flight == 3
    release.set()
    assert all(f.result(timeout=30) for f in futures)
    assert len(set(map(id, running))) == 2  # two workers, each with its own recognizer
    assert pool.run(lambda r: 42, wait=5) == 42 and pool.in_flight == 0
    pool.close()


def test_expected_errors_in_a_thousand_requests_leave_memory_flat(api, astronaut_jpeg):
    psutil = pytest.importorskip("psutil")
    process = psutil.Process()
    for _ in range(50):
        api.post("/faces", content=b"junk", headers={"Content-Type": "image/jpeg"})
    before = process.memory_info().rss
    for i in range(1000):
        api.post("/faces", content=b"junk" * (i % 7), headers={"Content-Type": "image/png" if i % 2 else "text/plain"})
    assert process.memory_info().rss - before < 30 * 2**20


def test_a_request_past_capacity_is_refused_before_its_body_is_read(recognizer, astronaut_jpeg):
    pool = RecognizerPool(lambda: recognizer, workers=1, queue_size=0)
    api = _client(pool)
    reading, release, consumed = threading.Event(), threading.Event(), []

    def slow_body():  # the first request is admitted and stays in its body
        reading.set()
        release.wait(30)
        yield astronaut_jpeg

    def counted_body():
        consumed.append(True)
        yield astronaut_jpeg

    first = threading.Thread(target=lambda: consumed.append(api.post("/faces", content=slow_body()).status_code))
    first.start()
    assert reading.wait(30)
    try:
        refused = api.post("/faces", content=counted_body(), headers={"Content-Type": "image/jpeg"})
        assert refused.status_code == 503 and "busy" in refused.json()["error"] and consumed == []
    finally:
        release.set()
        first.join(30)
    assert consumed == [200]
    pool.close()
