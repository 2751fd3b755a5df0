"""The model card (README.md with `model-index` metadata) written next to the weights."""
from __future__ import annotations

import json
from pathlib import Path

from fer_model.card import usage

from .report import classification_report

TTA_NAMES = {"none": "centre crop", "flip": "flip TTA", "ten_crop": "ten-crop TTA"}


def write_model_card(folder: str | Path, results: dict, command: str, dataset: str, split_sizes: dict,
                     config: dict, history: list | None = None, model_name: str = "fer-cnn",
                     fine_tuned_from: str | None = None, teachers: list[str] | tuple[str, ...] = (),
                     int8: dict | None = None, real: dict | None = None) -> Path:
    """Write `folder/README.md`: the model, how it was trained, its validation scores for every TTA mode
    (`results` maps a mode to its metrics, with `temperature`, `accuracy_before` and `calibration_before`)
    and those of its int8 version (`train.quantize`'s figures) when there is one; `history` and the hardware
    line are those of the last run, a fine-tuning of `fine_tuned_from` and a distillation from `teachers`
    when given; `real`: the float model's figures per mode on real faces of other sources (`train.finish`)."""
    folder = Path(folder)
    plain = results["none"]
    metric_yaml = "\n".join(
        f"          - type: {kind}\n            name: {name}\n            value: {value:.4f}"
        for mode, r in results.items()
        for kind, name, value in (("accuracy", f"Accuracy ({TTA_NAMES[mode]})", r["accuracy"]),
                                  ("f1", f"Macro F1 ({TTA_NAMES[mode]})", r["macro_f1"])))
    splits = ", ".join(f"{name}: {size:,}" for name, size in split_sizes.items())
    rows = "\n".join(f"| {TTA_NAMES[mode]} | {r['accuracy_before']:.2%} → {r['accuracy']:.2%} | {r['macro_f1']:.4f} "
                     f"| {r['temperature']:g} "
                     f"| {r['calibration_before']['ece']:.4f} → {r['calibration']['ece']:.4f} "
                     f"| {r['calibration_before']['nll']:.4f} → {r['calibration']['nll']:.4f} "
                     f"| {r['calibration_before']['brier']:.4f} → {r['calibration']['brier']:.4f} |"
                     for mode, r in results.items())
    raters = ""
    if "ferplus_accuracy" in plain:
        raters_rows = "\n".join(f"| {TTA_NAMES[mode]} | {r['ferplus_accuracy']:.2%} | {r['ferplus_ece']:.4f} "
                                 f"| {r['ferplus_cross_entropy']:.4f} |" for mode, r in results.items())
        raters = f"""
FER+'s ten raters' votes for the same faces ({plain["ferplus_faces"]:,} with a majority; `train.ferplus`): how often
the model's label is the raters' majority, the ECE against that majority and the cross-entropy to the vote shares.

| mode | FER+ majority accuracy | ECE (majority) | cross-entropy to the votes |
| --- | --- | --- | --- |
{raters_rows}
"""
    offsets = bool(config.get("class_biases"))
    calibration_text = (
        "by a temperature and one logit offset per class, fitted together on validation by NLL (stored in\n"
        "`config.json`); ECE uses 15 equal-width bins. The offsets can change a prediction, so accuracy and the\n"
        "other columns read before → after calibration (macro F1: after)." if offsets else
        "by one temperature, shared by every source it was fitted on (validation and, beside it, real faces of\n"
        "other sources), each source weighing the same, and no class offsets (stored in `config.json`); ECE uses\n"
        "15 equal-width bins. The columns read before → after calibration (macro F1: after).")
    pre = config["preprocessing"]
    on_fer2013 = "fer2013" in Path(dataset.rstrip("/")).name.lower().replace("-", "")
    validation = ("FER-2013 (PublicTest as validation)" if on_fer2013 else
                  f"{Path(dataset.rstrip('/')).name} (its validation split)")
    devices = sorted({h["device"] for h in history or [] if "device" in h})
    averaged = command.splitlines()[-1].startswith("python -m train.average")
    verb = ("Its last training run was" if averaged else
            f"Fine-tuned from `{fine_tuned_from}` (the commands before the last made it)" if fine_tuned_from else "Trained")
    if teachers:
        verb += f"{',' * (not averaged)} distilled from {', '.join(f'`{t}`' for t in teachers)},"
    hardware = (f"\n{verb} for {len(history)} epoch{'s' * (len(history) != 1)} in "
                f"{sum(h['seconds'] for h in history) / 60:.1f} minutes on "
                f"{' and '.join(devices)}." if devices else "")
    if averaged:
        hardware += (f" Its weights were then averaged with those of `{fine_tuned_from}`, the model the runs started"
                     " from (the last command, `train.average`).")
    crop = (f"trained on random {pre['crop_size']}x{pre['crop_size']} crops of the {pre['image_size']}x{pre['image_size']} "
            f"face, evaluated on the centre crop or ten crops" if pre.get("crop_size") else
            f"{pre['image_size']}x{pre['image_size']}")
    real_section = ""
    if real:
        real_rows = "\n".join(f"| {TTA_NAMES[mode]} | {r['accuracy']:.2%} | {r['balanced_accuracy']:.2%} | "
                               f"{r['ece_before']:.4f} → {r['ece']:.4f} |" for mode, r in real.items())
        real_section = f"""
## Real faces of other sources
On {next(iter(real.values()))["faces"]:,} faces of persons the run did not train on (the `--extra-dataset`'s
held-out persons it selected and calibrated on), found and cropped as `predict` finds them, read with the
calibration above. Persons it never saw at all: `benchmarks/in_the_wild.py`.

| mode | accuracy | balanced accuracy | ECE |
| --- | --- | --- | --- |
{real_rows}
"""
    int8_text = int8_section(int8) if int8 else ""
    card = f"""---
license: mit
library_name: fer-model
pipeline_tag: image-classification
tags: [facial-expression-recognition, emotion, fer2013, cnn, onnx]
datasets: [fer2013]
model-index:
  - name: {model_name}
    results:
      - task:
          type: image-classification
          name: Facial expression recognition
        dataset:
          type: fer2013
          name: {validation}
          split: validation
        metrics:
{metric_yaml}
---

# {model_name}: facial expression recognition on FER-2013

A VGG-style CNN (`fer_model.EmotionCNN`) trained on 48x48 grayscale faces. It predicts
{len(config["labels"])} labels, in this order: {", ".join(config["labels"])}. Files: `model.onnx` (the network, BatchNorms
folded; input `faces`, output `logits`){", `model_int8.onnx` (its int8 version)" if int8 else ""},
`model.safetensors` (the weights, for training and the torch backend), `config.json` (preprocessing,
calibration, uncertainty thresholds) and, on the Hub, `yunet.onnx` (the face detector).

{usage()}

## Architecture
```json
{json.dumps(config["model"], indent=2)}
```
Input: a face found by the package's detector, cropped square to FER-2013's framing, grayscale,
{crop}, normalized with mean {pre["mean"]} and std {pre["std"]}.

## Training
Data: `{dataset}` ({splits}). Model selection and calibration used the validation split
({validation.split(" (")[0] + " PublicTest" if on_fer2013 else "held out from the training images"}) only.{hardware}

```bash
{command}
```

## Validation results
On {plain["num_examples"]:,} validation images. Probabilities are calibrated per test-time augmentation
mode {calibration_text}

| mode | accuracy | macro F1 | temperature | ECE | NLL | Brier |
| --- | --- | --- | --- | --- | --- | --- |
{rows}

```
{classification_report(plain)}
```
{raters}
{real_section}{int8_text}
![confusion matrix](confusion_matrix.png)
![reliability](reliability.png)
![learning curves](learning_curves.png)

## Limitations
- FER-2013 was gathered by web image search: mostly posed or staged expressions, skewed in age and
  ethnicity, with noisy labels (human agreement is about 65%). Expect lower accuracy on spontaneous faces.
- 48x48 grayscale input: colour and fine detail are lost; small or blurred faces lose more.
- Profile and strongly tilted faces are harder for the detector and far from FER-2013's mostly frontal faces.
- `disgust` has 1.5% of the training images and is the least reliable class.
- Not for decisions about people (hiring, policing, health): an expression is not an emotion.
"""
    path = folder / "README.md"
    path.write_text(card)
    return path


def int8_section(int8: dict) -> str:
    """The card's "int8 version" section, from `train.quantize`'s figures (the float accuracy beside each mode's)."""
    rows = "\n".join(f"| {TTA_NAMES[mode]} | {format(r['float_accuracy'], '.2%') if 'float_accuracy' in r else '-'} | "
                     f"{r['accuracy']:.2%} | {r['ece']:.4f} | {r['temperature']:g} |"
                     for mode, r in int8["by_tta"].items())
    weights = "per-channel 7-bit weights"
    if "weight_levels" in int8:
        layers = ", ".join(f"`{layer}` +-{k}" for layer, k in int8["weight_levels"].items())
        weights = (f"per-channel weights of coarser steps by layer (each channel's peak at the level given: {layers};\n"
                   f"7 bits elsewhere), GPTQ-rounded and then "
                   f"distilled against the float model for {int8['distil_epochs']:g} passes over the training faces "
                   f"(`train.low_bits`; {int8['gzip_bytes']:,} bytes gzip)")
    return f"""
## int8 version
`model_int8.onnx` ({int8["bytes"] / 2**20:.1f} MB): static int8 quantization of `model.onnx` (QDQ, {weights},
activation ranges from {int8["quantize_faces"]:,} training faces), calibrated for itself on validation
(`config.json`'s `int8`). `EmotionRecognizer` and the browser run it by default.

| mode | accuracy, float | accuracy, int8 | ECE, int8 | temperature, int8 |
| --- | --- | --- | --- | --- |
{rows}
"""


def replace_int8_section(card: Path, int8: dict) -> None:
    """Rewrite the "int8 version" section of an existing card (after `train.quantize` replaced the int8 model)."""
    text = card.read_text()
    start = text.find("\n## int8 version")
    if start < 0:
        return
    ends = [i for i in (text.find("\n## ", start + 1), text.find("\n![", start + 1)) if i >= 0]
    rest = text[min(ends):] if ends else ""
    card.write_text(text[:start] + int8_section(int8).rstrip("\n") + "\n" + rest)
