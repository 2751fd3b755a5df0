"""Gradio app for Hugging Face Spaces: photos, webcam and videos in, per-face emotions out; on the same port a
plain HTTP API (`/v1`, `fer_model.serving.http_api`) and an MCP server (`/mcp`, `fer_model.serving.mcp_tools`).

    python app.py                                   # embedded default model, offline: http://127.0.0.1:7860
    FER_MODEL_ID=user/fer-cnn python app.py         # weights from the Hub (FER_MODEL_REVISION pins them)
    FER_WORKERS=2 python app.py                     # recognizers, one thread each (default: one per core)
    FER_API_TOKEN=secret python app.py              # every route that reads media is locked: /v1 and /mcp take
                                                    # "Authorization: Bearer secret", the UI and Gradio's API the
                                                    # login fer / secret (FER_APP_USER names another user)
"""
import contextlib
import os
import tempfile

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# One thread a recognizer and one recognizer a core (fer_model.serving): a second thread gains one photo
# little (docs/speed.md), and two 2-thread calls on 2 cores would fight over them.
os.environ.setdefault("FER_THREADS", "1")

from fer_model import EmotionRecognizer, FERError, load_image  # noqa: E402  (before torch: fer_model.runtime)
from fer_model.serving.http_api import Settings, bearer_only, create_api  # noqa: E402
from fer_model.serving.mcp_tools import create_mcp  # noqa: E402
from fer_model.results import (NO_FACE, TABLE_HEADERS, analyze_photo, face_table, main_face_label,  # noqa: E402
                               main_face_scores, summary)
from fer_model.serving import RecognizerPool  # noqa: E402
from fer_model.video import analyze_video  # noqa: E402

import gradio as gr  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from gradio.components.label import LabelConfidence, LabelData  # noqa: E402

try:  # ZeroGPU Spaces need one @spaces.GPU function (the video endpoints); elsewhere the decorator is a no-op
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn):
        return fn

MAX_FILE_SIZE = "100mb"  # a 200 MP phone photo
VIDEO_FPS = 5
VIDEO_MAX_FRAMES = 300  # 60 s at 5 frames a second: one request cannot hold a worker for long
EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web", "examples")  # the browser page's too
pool = RecognizerPool(lambda: EmotionRecognizer.from_pretrained(
    os.environ.get("FER_MODEL_ID") or None, revision=os.environ.get("FER_MODEL_REVISION") or None,
    detector=os.environ.get("FER_DETECTOR") or None))
LABELS = pool.run(lambda recognizer: recognizer.labels)  # the model's own: FER-2013's 7 emotions, or a fine-tune's


class Photo(gr.Image):
    """An image input handed to the function as its uploaded file's path, undecoded: `load_image` reads it
    and says in one line what is wrong with a file that is not a usable image."""

    is_template = True  # rendered, and listed on the API page, as the gr.Image it is

    def preprocess(self, payload):
        return None if payload is None else payload.path


class MainFace(gr.Label):
    """A label panel whose heading may differ from its top class: "uncertain: sad or angry"
    (`results.main_face_label`)."""

    is_template = True

    def postprocess(self, value):
        if isinstance(value, dict) and isinstance(value.get("confidences"), list):
            ranked = sorted(value["confidences"], key=lambda c: c["confidence"], reverse=True)[:self.num_top_classes]
            return LabelData(label=value["label"], confidences=[LabelConfidence(**c) for c in ranked])
        return super().postprocess(value)


def on_worker(fn):
    """`fn(recognizer)` on one of the pool's workers; a one-line `gr.Error` for anything the user sent wrong."""
    try:
        return pool.run(fn)
    except (FERError, ValueError) as err:
        raise gr.Error(str(err), print_exception=False) from None


def read_faces(image, explain=False, annotated=False, rest=None):
    """The faces of an image and, with `annotated`, the picture with them drawn on it (over the saliency
    overlay with `explain`), read against the resting face of the photo `rest` where given, in one call on a
    worker; `gr.Error` with a readable message for anything unusable."""
    if image is None:
        raise gr.Error("Upload an image or take a webcam snapshot first.", print_exception=False)

    def run(recognizer):
        recognizer = recognizer.personalize(rest) if rest is not None else recognizer
        rgb = load_image(image)
        if explain:
            explanation = recognizer.explain(rgb)
            rgb, faces = explanation.overlay, explanation.faces
        else:
            faces = recognizer.predict(rgb)
        return faces, recognizer.annotate(rgb, faces) if annotated else None

    return on_worker(run)


def analyze(image, explain=False, rest=None):
    """The Photo tab: main face's scores, the annotated photo (boxes over the saliency overlay), the table, a
    summary; read against the resting face of `rest` where given."""
    try:
        faces, picture = read_faces(image, explain, annotated=True, rest=rest)
    except gr.Error as err:
        return {}, None, [], f"⚠️ {err.message}"
    return main_face_label(faces), picture, face_table(faces), summary(faces)


def predict(image):
    """The emotion of the main (largest) face in a photo.

    Args:
        image: the photo (JPEG, PNG, WebP or another image file).

    Returns:
        The main face's label and the calibrated probability of each of the model's labels; an empty object when no face is found.
    """
    return main_face_scores(read_faces(image)[0])


def faces(image):
    """Every face in a photo with its emotion.

    Args:
        image: the photo (JPEG, PNG, WebP or another image file).

    Returns:
        JSON with the image size, `count` and, for each face from the largest, its `box` [x, y, width, height], `label`, `confidence`, `scores`, `uncertain` and `detection_score`; `count` 0 and a `message` when no face is found.
    """
    if image is None:
        raise gr.Error("Send a photo.", print_exception=False)
    return on_worker(lambda recognizer: analyze_photo(recognizer, image))


def analyze_clip(recognizer, clip, folder=None, progress=None):
    """Analyse a video file into `folder` (a fresh temporary one by default): the analysis and the paths of
    its CSV, annotated video and timeline (only the CSV without a `folder`)."""
    keep = folder is not None
    folder = folder or tempfile.mkdtemp(prefix="fer_video_")
    stem = os.path.splitext(os.path.basename(clip))[0]
    paths = [os.path.join(folder, f"{stem}{suffix}") for suffix in ("_emotions.csv", "_annotated.webm", "_timeline.png")]
    analysis = analyze_video(recognizer, clip, paths[0], *(paths[1:] if keep else ()), fps=VIDEO_FPS,
                             max_frames=VIDEO_MAX_FRAMES, progress=progress)
    return analysis, paths


def analyse_upload(clip, progress):
    """The uploaded clip analysed on a worker into a fresh folder: the analysis and its files."""
    if clip is None:
        raise gr.Error("Upload a video first.", print_exception=False)
    folder = tempfile.mkdtemp(prefix="fer_video_")
    return on_worker(lambda recognizer: analyze_clip(
        recognizer, clip, folder, lambda frames, total: progress.tqdm(frames, total=total, desc="frames")))


@gpu
def video(clip, progress=gr.Progress()):
    """Emotions over time in a video: each face tracked across frames.

    Args:
        clip: the video file (MP4, WebM, MOV, ...); about 5 frames a second are analysed, at most 300 (60 s).

    Returns:
        JSON: `frames`, each with `frame` (index), `time` (seconds) and `faces` (as /faces gives, plus a `track_id` that stays the same for the same person); `tracks`, a summary per face (dominant emotion, mean scores, time on screen); `truncated`, true when the video was longer than the limit.
    """
    return analyse_upload(clip, progress)[0].to_dict()


@gpu
def video_tab(clip, progress=gr.Progress()):
    """The Video tab: timeline plot, annotated video, CSV and a summary."""
    try:
        analysis, (csv, annotated, timeline) = analyse_upload(clip, progress)
    except gr.Error as err:
        return None, None, None, f"⚠️ {err.message}"
    return timeline, annotated, csv, analysis.describe()


def live(frame):
    """One webcam frame: the annotated frame, the main face's scores and a line when no face is found."""
    if frame is None:
        return None, {}, ""
    try:
        found, picture = read_faces(frame, annotated=True)
    except gr.Error as err:
        return None, {}, f"⚠️ {err.message}"
    return picture, main_face_label(found), "" if found else NO_FACE


CSS = "#faces-view .image-container { padding-top: 30px; }"  # the picture below the panel's name and buttons
theme = gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"],
                       font_mono=["ui-monospace", "Consolas", "monospace"])

with gr.Blocks(title="Facial expression recognition", analytics_enabled=False) as demo:
    gr.Markdown(f"# Facial expression recognition\nFinds every face and reads one of {len(LABELS)} labels: "
                f"{', '.join(LABELS)}. A small CNN trained on FER-2013; confidences are calibrated, and unsure "
                "readings say so.")
    with gr.Tab("Photo"):
        with gr.Row():
            with gr.Column():
                image = Photo(type="filepath", sources=["upload", "webcam", "clipboard"], label="Photo")
                explain = gr.Checkbox(label="Show what the model looked at (saliency map on each face)")
                with gr.Accordion("Resting face (optional)", open=False):
                    rest = Photo(type="filepath", sources=["upload", "webcam", "clipboard"],
                                 label="The same person at rest, in the same light: their faces are read against it")
                button = gr.Button("Read expressions", variant="primary")
            with gr.Column():
                message = gr.Markdown()
                label = MainFace(num_top_classes=7, label="Main face")
                annotated = gr.Image(label="Faces", interactive=False, buttons=["download", "fullscreen"],
                                     elem_id="faces-view")
        table = gr.Dataframe(headers=TABLE_HEADERS, label="Every face (numbered as in the picture)", interactive=False)
        photo_outputs = [label, annotated, table, message]
        gr.Examples([os.path.join(EXAMPLES, name) for name in ("astronaut.jpg", "chelsea.jpg")], inputs=image,
                    outputs=photo_outputs, fn=analyze, run_on_click=True, cache_examples=False)
    with gr.Tab("Video"):
        gr.Markdown(f"Upload a clip: about {VIDEO_FPS} frames a second are analysed, at most "
                    f"{VIDEO_MAX_FRAMES} frames ({VIDEO_MAX_FRAMES // VIDEO_FPS} s); each face keeps one number.")
        with gr.Row():
            with gr.Column():
                clip = gr.Video(label="Video", sources=["upload"])
                video_button = gr.Button("Analyse video", variant="primary")
                video_summary = gr.Markdown()
                video_csv = gr.File(label="Per-frame CSV")
            with gr.Column():
                timeline = gr.Image(label="Emotions over time", interactive=False)
                video_out = gr.Video(label="Annotated video", interactive=False)
    with gr.Tab("Live webcam"):
        gr.Markdown("Allow the camera, then press the record button under the webcam view: "
                    "faces are read about 5 times a second.")
        with gr.Row():
            webcam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam")
            with gr.Column():
                live_message = gr.Markdown()
                live_view = gr.Image(label="Faces", interactive=False, buttons=["fullscreen"])
                live_label = MainFace(num_top_classes=3, label="Main face")

    for trigger in (button.click, image.upload):
        trigger(analyze, [image, explain, rest], photo_outputs, api_visibility="private")
    video_button.click(video_tab, clip, [timeline, video_out, video_csv, video_summary], api_visibility="private")
    webcam.stream(live, webcam, [live_view, live_label, live_message], stream_every=0.2, time_limit=120,
                  api_visibility="private")
    with gr.Row(visible=False):  # API endpoints, documented on the app's "Use via API" page
        api_photo = Photo(type="filepath", label="Photo")
        api_clip = gr.File(label="Video")
        api_label = gr.Label(label="Main face emotion")
        api_faces = gr.JSON(label="Faces")
        api_frames = gr.JSON(label="Frames")
        # Photos: one POST at /gradio_api/run/..., and no limit of Gradio's in the queue: the recognizer pool bounds the work.
        gr.Button().click(predict, api_photo, api_label, api_name="predict", queue=False,
                          concurrency_limit=None)
        gr.Button().click(faces, api_photo, api_faces, api_name="faces", queue=False,
                          concurrency_limit=None)
        gr.Button().click(video, api_clip, api_frames, api_name="video", concurrency_limit=1)

demo.queue(max_size=64, default_concurrency_limit=pool.workers)


def create_server() -> FastAPI:
    """One ASGI application: `/v1` (HTTP API), `/mcp` (MCP tools) and the Gradio app at `/`."""
    mcp = create_mcp(pool, gr.utils.get_upload_folder(),
                     lambda recognizer, path: analyze_clip(recognizer, path)[0].to_dict(), LABELS)
    mcp_app = mcp.streamable_http_app()

    @contextlib.asynccontextmanager
    async def lifespan(_):
        async with mcp.session_manager.run():
            yield

    settings = Settings.from_env(os.environ)
    server = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    server.mount("/v1", create_api(pool, settings))
    for path in ("/mcp", "/mcp/"):
        server.add_route(path, bearer_only(mcp_app.routes[0].endpoint, settings.token), methods=["GET", "POST", "DELETE"])
    login = (os.environ.get("FER_APP_USER") or "fer", settings.token) if settings.token else None
    return gr.mount_gradio_app(server, demo, path="/", theme=theme, css=CSS, max_file_size=MAX_FILE_SIZE,
                               show_error=True, auth=login,
                               auth_message="This app is private: sign in with the user and token its owner gave you.")


server = create_server()

if __name__ == "__main__":
    import uvicorn

    on_spaces = os.environ.get("SYSTEM") == "spaces"  # a Space serves on every interface, as Gradio's launch does there
    host = os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0" if on_spaces else "127.0.0.1")
    port = int(os.environ.get("GRADIO_SERVER_PORT", "7860"))
    print(f"The app: http://{host}:{port}/  ·  HTTP API: /v1/docs  ·  MCP: /mcp", flush=True)
    uvicorn.run(server, host=host, port=port, log_level=os.environ.get("FER_LOG_LEVEL", "warning"))
