"""Gradio app for Hugging Face Spaces: photos, webcam and videos in, per-face emotions out; also an MCP server.

    python app.py                                   # embedded default model, offline
    FER_MODEL_ID=user/fer-cnn python app.py         # weights from the Hub (FER_MODEL_REVISION pins them)
    FER_THREADS=2 python app.py                     # threads per request (default 1: two requests run at once)
"""
import os
import tempfile

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# One thread a request and two requests at a time: a second thread gains one photo little (docs/speed.md),
# and two 2-thread requests on 2 cores would fight over them.
os.environ.setdefault("FER_THREADS", "1")

from fer_model import EmotionRecognizer, FERError, load_image  # noqa: E402  (before torch: fer_model.runtime)
from fer_model.results import TABLE_HEADERS, face_table, faces_json, main_face_scores, summary  # noqa: E402
from fer_model.video import analyze_video  # noqa: E402

import gradio as gr  # noqa: E402

try:  # ZeroGPU Spaces need one @spaces.GPU function (the video endpoints); elsewhere the decorator is a no-op
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn):
        return fn

MAX_FILE_SIZE = "50mb"
CONCURRENCY = 2
VIDEO_FPS = 5
VIDEO_MAX_FRAMES = 300  # 60 s at 5 frames a second: one request cannot hold the server for long
EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web", "examples")  # the browser page's too
recognizer = EmotionRecognizer.from_pretrained(os.environ.get("FER_MODEL_ID") or None,
                                               revision=os.environ.get("FER_MODEL_REVISION") or None,
                                               detector=os.environ.get("FER_DETECTOR") or None)


def read_faces(image, explain=False):
    """The image as loaded, its faces and, with `explain`, the saliency overlay (else None);
    `gr.Error` with a readable message for anything unusable."""
    if image is None:
        raise gr.Error("Upload an image or take a webcam snapshot first.")
    try:
        rgb = load_image(image)
        if explain:
            explanation = recognizer.explain(rgb)
            return rgb, explanation.faces, explanation.overlay
        return rgb, recognizer.predict(rgb), None
    except FERError as err:
        raise gr.Error(str(err)) from None


def analyze(image, explain=False):
    """The Photo tab: main face's scores, the annotated photo (or saliency overlay), the table, a summary."""
    try:
        rgb, faces, overlay = read_faces(image, explain)
    except gr.Error as err:
        return {}, None, [], f"⚠️ {err.message}"
    shown = overlay if overlay is not None and faces else recognizer.annotate(rgb, faces)
    return main_face_scores(faces), shown, face_table(faces), summary(faces)


def predict(image):
    """Emotion of the main (largest) face in a photo.

    Args:
        image: a photo (JPEG, PNG, WebP, ...), as a file.

    Returns:
        The main face's label and the probability of each of the 7 emotions (angry, disgust, fear, happy,
        sad, surprise, neutral); an empty object when no face is found.
    """
    return main_face_scores(read_faces(image)[1])


def faces(image):
    """Every face in a photo with its emotion.

    Args:
        image: a photo (JPEG, PNG, WebP, ...), as a file.

    Returns:
        JSON with the image size, `count` (0 and a `message` when no face is found) and, per face from the
        largest: `box` [x, y, width, height] in pixels, `label`, `confidence`, `scores` (the calibrated
        probability of each emotion), `uncertain` (true when the model is unsure) and `detection_score`.
    """
    rgb, found, _ = read_faces(image)
    return faces_json(found, rgb.size)


def analyse_clip(clip, progress):
    """Run the video analysis into a fresh folder: the analysis and its CSV, annotated video and timeline."""
    if clip is None:
        raise gr.Error("Upload a video first.")
    folder = tempfile.mkdtemp(prefix="fer_video_")
    stem = os.path.splitext(os.path.basename(clip))[0]
    paths = [os.path.join(folder, f"{stem}{suffix}") for suffix in ("_emotions.csv", "_annotated.webm", "_timeline.png")]
    try:
        analysis = analyze_video(recognizer, clip, *paths, fps=VIDEO_FPS, max_frames=VIDEO_MAX_FRAMES,
                                 progress=lambda frames, total: progress.tqdm(frames, total=total, desc="frames"))
    except (FERError, ValueError) as err:
        raise gr.Error(str(err)) from None
    return analysis, paths


@gpu
def video(clip, progress=gr.Progress()):
    """Emotions over time in a video: each face tracked across frames.

    Args:
        clip: a video file (MP4, WebM, MOV, ...); about 5 frames a second are analysed, at most 300 (60 s).

    Returns:
        JSON: `frames`, each with `frame` (index), `time` (seconds) and `faces` (as in /faces, plus a
        `track_id` that stays the same for the same person); `tracks`, a summary per face (dominant
        emotion, mean scores, time on screen); `truncated`, true when the video was longer than the limit.
    """
    analysis, _ = analyse_clip(clip, progress)
    return {"frames": analysis.frames, "tracks": {str(k): v for k, v in analysis.tracks.items()},
            "truncated": analysis.truncated}


@gpu
def video_tab(clip, progress=gr.Progress()):
    """The Video tab: timeline plot, annotated video, CSV and a summary."""
    try:
        analysis, (csv, annotated, timeline) = analyse_clip(clip, progress)
    except gr.Error as err:
        return None, None, None, f"⚠️ {err.message}"
    return timeline, annotated, csv, analysis.describe()


def live(frame):
    """One webcam frame: the annotated frame and the main face's scores."""
    if frame is None:
        return None, {}
    try:
        rgb, found, _ = read_faces(frame)
    except gr.Error:
        return None, {}
    return recognizer.annotate(rgb, found), main_face_scores(found)


theme = gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"],
                       font_mono=["ui-monospace", "Consolas", "monospace"])

with gr.Blocks(title="Facial expression recognition", analytics_enabled=False) as demo:
    gr.Markdown("# Facial expression recognition\nFinds every face and reads one of 7 emotions: "
                "angry, disgust, fear, happy, sad, surprise, neutral. A small CNN trained on FER-2013; "
                "confidences are calibrated, and unsure readings say so.")
    with gr.Tab("Photo"):
        with gr.Row():
            with gr.Column():
                image = gr.Image(type="filepath", sources=["upload", "webcam", "clipboard"], label="Photo")
                explain = gr.Checkbox(label="Show what the model looked at (saliency map on each face)")
                button = gr.Button("Read expressions", variant="primary")
            with gr.Column():
                message = gr.Markdown()
                label = gr.Label(num_top_classes=7, label="Main face")
                annotated = gr.Image(label="Faces", interactive=False)
        table = gr.Dataframe(headers=TABLE_HEADERS, label="Every face", interactive=False)
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
                live_view = gr.Image(label="Faces", interactive=False)
                live_label = gr.Label(num_top_classes=3, label="Main face")

    for trigger in (button.click, image.upload):
        trigger(analyze, [image, explain], photo_outputs, api_visibility="private")
    video_button.click(video_tab, clip, [timeline, video_out, video_csv, video_summary], api_visibility="private")
    webcam.stream(live, webcam, [live_view, live_label], stream_every=0.2, time_limit=120,
                  concurrency_limit=CONCURRENCY, api_visibility="private")
    with gr.Row(visible=False):  # API and MCP endpoints, documented on the app's "Use via API" page
        api_photo = gr.File(label="Photo")
        api_clip = gr.File(label="Video")
        api_label = gr.Label(label="Main face emotion")
        api_faces = gr.JSON(label="Faces")
        api_frames = gr.JSON(label="Frames")
        gr.Button().click(predict, api_photo, api_label, api_name="predict")
        gr.Button().click(faces, api_photo, api_faces, api_name="faces")
        gr.Button().click(video, api_clip, api_frames, api_name="video", concurrency_limit=1)

demo.queue(max_size=64, default_concurrency_limit=CONCURRENCY)

if __name__ == "__main__":
    demo.launch(theme=theme, max_file_size=MAX_FILE_SIZE, show_error=True, mcp_server=True)
