"""Gradio app for Hugging Face Spaces: upload or webcam in, per-face emotions out.

    python app.py                                   # embedded default model, offline
    FER_MODEL_ID=user/fer-cnn python app.py         # weights from the Hub (FER_MODEL_REVISION pins them)
"""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data as skimage_data  # noqa: E402

from fer_model import EmotionRecognizer, InvalidImageError, load_image  # noqa: E402
from fer_model.results import TABLE_HEADERS, face_table, faces_json, main_face_scores, summary  # noqa: E402

try:  # ZeroGPU Spaces need at least one @spaces.GPU function; elsewhere the decorator is a no-op
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn):
        return fn

MAX_FILE_SIZE = "10mb"
CONCURRENCY = 2
# Parallelism comes from the queue's concurrent requests, one core each: more torch threads per
# request would oversubscribe the cores (measured on 2 cores: 4 ms per face alone, 320 ms oversubscribed).
torch.set_num_threads(int(os.environ.get("FER_TORCH_THREADS", "1")))
recognizer = EmotionRecognizer.from_pretrained(os.environ.get("FER_MODEL_ID") or None,
                                               revision=os.environ.get("FER_MODEL_REVISION") or None)


@gpu
def analyze_image(image):
    """Faces in the image: the image as loaded and one prediction per face, largest first."""
    if image is None:
        raise gr.Error("Upload an image or take a webcam snapshot first.")
    try:
        rgb = load_image(image)
        return rgb, recognizer.predict(rgb)
    except InvalidImageError as err:
        raise gr.Error(str(err)) from err


def analyze(image):
    rgb, faces = analyze_image(image)
    return main_face_scores(faces), recognizer.annotate(rgb, faces), face_table(faces), summary(faces)


def predict(image):
    """Label confidences of the main (largest) face, as a gr.Label payload."""
    rgb, faces = analyze_image(image)
    return main_face_scores(faces) or "no face found"


def faces(image):
    """Every face with its box (x, y, width, height), top label and the probability of each emotion."""
    rgb, found = analyze_image(image)
    return faces_json(found, rgb.size)


def live(frame):
    if frame is None:
        return None, None
    rgb, found = analyze_image(frame)
    return recognizer.annotate(rgb, found), main_face_scores(found) or "no face found"


def example_images(folder: str) -> list[str]:
    """Redistributable examples from scikit-image: a portrait (one face) and a cat (no face)."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name in ("astronaut", "chelsea"):
        path = os.path.join(folder, f"{name}.jpg")
        if not os.path.exists(path):
            Image.fromarray(getattr(skimage_data, name)()).save(path, quality=92)
        paths.append(path)
    return paths


theme = gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"],
                       font_mono=["ui-monospace", "Consolas", "monospace"])

with gr.Blocks(title="Facial expression recognition", analytics_enabled=False) as demo:
    gr.Markdown("# Facial expression recognition\nFinds every face and reads one of 7 emotions: "
                "angry, disgust, fear, happy, sad, surprise, neutral. A CNN trained on FER-2013.")
    with gr.Tab("Photo"):
        with gr.Row():
            with gr.Column():
                image = gr.Image(type="filepath", sources=["upload", "webcam", "clipboard"], label="Photo")
                button = gr.Button("Read expressions", variant="primary")
                gr.Examples(example_images(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".examples")),
                            inputs=image)
            with gr.Column():
                message = gr.Markdown()
                label = gr.Label(num_top_classes=7, label="Main face")
                annotated = gr.Image(label="Faces", interactive=False)
        table = gr.Dataframe(headers=TABLE_HEADERS, label="Every face", interactive=False)
    with gr.Tab("Live webcam"):
        with gr.Row():
            webcam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam")
            with gr.Column():
                live_view = gr.Image(label="Faces", interactive=False)
                live_label = gr.Label(num_top_classes=3, label="Main face")

    for trigger in (button.click, image.upload):
        trigger(analyze, image, [label, annotated, table, message], api_visibility="private")
    with gr.Row(visible=False):  # API-only endpoints, documented on the app's "Use via API" page
        json_out = gr.JSON()
        gr.Button().click(predict, image, label, api_name="predict")
        gr.Button().click(faces, image, json_out, api_name="faces")
    webcam.stream(live, webcam, [live_view, live_label], stream_every=0.2, time_limit=120,
                  concurrency_limit=CONCURRENCY, api_visibility="private")

demo.queue(max_size=64, default_concurrency_limit=CONCURRENCY)

if __name__ == "__main__":
    demo.launch(theme=theme, max_file_size=MAX_FILE_SIZE, show_error=True)
