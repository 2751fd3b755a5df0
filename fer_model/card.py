"""The usage section of a model card: this package, plain ONNX Runtime + numpy, and the browser.

`train.card` writes the full card (results, training); `push_to_hub` fills in the repo id, or writes a
minimal card for a model folder that has none.
"""
from __future__ import annotations

import re

from .config import FERConfig

START, END = "<!-- usage -->", "<!-- /usage -->"
PLACEHOLDER = "user/name"

ONNX_SNIPPET = '''import json

import numpy as np
import onnxruntime as ort
from PIL import Image

folder = "."  # this repo's files, e.g. huggingface_hub.snapshot_download("{repo_id}")
config = json.load(open(f"{{folder}}/config.json"))
pre, mode = config["preprocessing"], "flip"  # flip TTA: the face and its mirror image
size, crop = pre["image_size"], pre["crop_size"] or pre["image_size"]
face = Image.open("face.png")  # a face crop framed like FER-2013's
large = config.get("large_faces") or {{}}  # faces of at least min_side pixels have a calibration of their own
calibration = large if large and max(face.size) >= large["min_side"] else config
x = (np.asarray(face.convert("L").resize((size, size), Image.BILINEAR), np.float32) / 255 - pre["mean"]) / pre["std"]
top = (size - crop) // 2
x = x[top:top + crop, top:top + crop]
batch = np.stack([x, x[:, ::-1]])[:, None].astype(np.float32)
session = ort.InferenceSession(f"{{folder}}/model.onnx")
logits = session.run(["logits"], {{"faces": batch}})[0] / calibration["temperatures"][mode] + np.float32(calibration["class_biases"].get(mode, 0))
p = np.exp(logits - logits.max(1, keepdims=True))
probabilities = (p / p.sum(1, keepdims=True)).mean(0)  # calibrated
print(dict(zip(config["labels"], probabilities.round(4).tolist())))
'''


def usage(repo_id: str = PLACEHOLDER) -> str:
    """The card's usage section for the model at `repo_id`, between its markers."""
    return f'''{START}
## Use it

With this package (`pip install fer-model`): every face of a photo, labelled.
```python
from fer_model import EmotionRecognizer

recognizer = EmotionRecognizer.from_pretrained("{repo_id}")   # or a local folder
for face in recognizer.predict("photo.jpg"):                  # largest face first
    print(face.box, face.describe())                           # (x, y, w, h) happy 79%
```

With plain ONNX Runtime and numpy, no package: a face crop in, calibrated probabilities out.
```python
{ONNX_SNIPPET.format(repo_id=repo_id).strip()}
```

In the browser (`fer.js` is the project's `web/fer.js`, which also finds the faces, on its own WebAssembly runtime):
```html
<script type="module">
  import {{ load }} from "./fer.js";
  const fer = await load({{ models: "https://huggingface.co/{repo_id}/resolve/main/" }});
  const faces = await fer.analyze(document.querySelector("img"));   // [{{box, label, confidence, scores, uncertain}}]
</script>
```
{END}'''


def minimal_card(config: FERConfig, repo_id: str = PLACEHOLDER) -> str:
    """A card for a model folder that training did not write one for."""
    return f"""---
license: mit
library_name: fer-model
pipeline_tag: image-classification
tags: [facial-expression-recognition, emotion, fer2013, onnx]
datasets: [fer2013]
---

# Facial expression recognition

A small CNN for 48x48 grayscale faces that reads {len(config.labels)} labels: {", ".join(config.labels)}.
`model.onnx` is the network (input `faces`, output `logits`), `config.json` its preprocessing and
calibration, `yunet.onnx` the face detector.

{usage(repo_id)}
"""


def with_usage(card: str | None, config: FERConfig, repo_id: str) -> str:
    """`card` with its usage section written for `repo_id` (added after the title when it has none);
    a minimal card when there is no card."""
    if card is None:
        return minimal_card(config, repo_id)
    if START in card and END in card:
        return re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: usage(repo_id), card, flags=re.S)
    title = re.search(r"^# .*$", card, flags=re.M)
    at = title.end() if title else len(card)
    return card[:at] + "\n\n" + usage(repo_id) + "\n" + card[at:]
