"""The model card (README.md with `model-index` metadata) written next to the weights."""
from __future__ import annotations

import json
from pathlib import Path

from .report import classification_report


def write_model_card(folder: str | Path, metrics: dict, command: str, dataset: str, split_sizes: dict,
                     config: dict, model_name: str = "fer-cnn", tta_metrics: dict | None = None) -> Path:
    """Write `folder/README.md` describing the model, how it was trained and how it scores on validation."""
    folder = Path(folder)
    results = [("accuracy", "Accuracy", metrics["accuracy"]), ("f1", "Macro F1", metrics["macro_f1"])]
    if tta_metrics:
        results.append(("accuracy", "Accuracy (flip TTA)", tta_metrics["accuracy"]))
    metric_yaml = "\n".join(f"          - type: {kind}\n            name: {name}\n            value: {value:.4f}"
                            for kind, name, value in results)
    splits = ", ".join(f"{name}: {size:,}" for name, size in split_sizes.items())
    tta_line = f"\nWith horizontal-flip test-time augmentation: accuracy {tta_metrics['accuracy']:.2%}, " \
               f"macro F1 {tta_metrics['macro_f1']:.4f}.\n" if tta_metrics else ""
    card = f"""---
license: mit
library_name: fer-model
pipeline_tag: image-classification
tags: [facial-expression-recognition, emotion, fer2013, cnn]
datasets: [fer2013]
model-index:
  - name: {model_name}
    results:
      - task:
          type: image-classification
          name: Facial expression recognition
        dataset:
          type: fer2013
          name: FER-2013 (PublicTest as validation)
          split: validation
        metrics:
{metric_yaml}
---

# {model_name}: facial expression recognition on FER-2013

A VGG-style CNN (`fer_model.EmotionCNN`) trained from scratch on 48x48 grayscale faces. It predicts
7 emotions in FER-2013's order: {", ".join(config["labels"])}.

```python
from fer_model import EmotionRecognizer
recognizer = EmotionRecognizer.from_pretrained("<this folder or Hub repo id>")
print(recognizer.predict("photo.jpg"))   # one entry per face: box, label, scores
```

## Architecture
```json
{json.dumps(config["model"], indent=2)}
```
Preprocessing: face detection (OpenCV Haar cascade), square crop with a margin of
{config["preprocessing"]["face_margin"]:.0%} per side, grayscale, {config["preprocessing"]["image_size"]}x{config["preprocessing"]["image_size"]}, normalized with mean {config["preprocessing"]["mean"]} and std {config["preprocessing"]["std"]}.

## Training
Data: `{dataset}` ({splits}). Model selection used the validation split (FER-2013 PublicTest) only.

```bash
{command}
```

## Validation results
Accuracy {metrics["accuracy"]:.2%}, macro F1 {metrics["macro_f1"]:.4f} on {metrics["num_examples"]:,} images.
{tta_line}
```
{classification_report(metrics)}
```

![confusion matrix](confusion_matrix.png)
![learning curves](learning_curves.png)

## Limitations
- FER-2013 was gathered by web image search: mostly posed or staged expressions, skewed in age and
  ethnicity, with noisy labels (human agreement is about 65%). Expect lower accuracy on spontaneous faces.
- 48x48 grayscale input: colour and fine detail are lost; small or blurred faces lose more.
- The face detector is frontal: profile and strongly tilted faces are often missed.
- `disgust` has 1.5% of the training images and is the least reliable class.
- Not for decisions about people (hiring, policing, health): an expression is not an emotion.
"""
    path = folder / "README.md"
    path.write_text(card)
    return path
