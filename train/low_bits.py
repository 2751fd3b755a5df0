"""Fewer bits for the int8 graph's weights, so that the browser page downloads less, the graph unchanged: each
lowered layer's weights take a coarser step, still int8 tensors within the graph's 7-bit range, so every runtime
runs the same file and gzip does the packing (it codes the levels by how often each comes, so what a layer costs
is the entropy of its levels, not their range); the activations' quantization is kept. Each output channel's
step is its peak weight over the layer's `LEVELS` (the peak takes level +-L, nothing is clipped); the rounding
is GPTQ's (Frantar et al., 2023): a layer's input columns are rounded in turn, each one's error spread over
those not yet rounded through the inverse of the layer's input second moments on training faces, and each bias
takes back the mean shift. The levels per layer are chosen for a gzip budget by what each step down costs,
then the lowered layers are distilled against the float model as they will run.

    python -m train.quantize runs/fer --dataset ../shared/fer2013 --int8-gzip-bytes 1000000
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

DISTIL_EPOCHS, DISTIL_LR = 3.0, 1e-4
"""The distillation's length (passes over the training faces) and peak learning rate (Adam, one cycle): of
1e-4 and 3e-5, the one whose model stayed closer to the int8 graph on the in-the-wild calibration persons."""
DAMPING = 0.01
"""Added to the second moments' diagonal, as a share of its mean, so that their inverse is stable."""
POSITIONS_PER_BATCH = 8192
"""Input positions a batch of faces adds to a convolution's statistics (a random subset of larger maps)."""


def weighted_layers(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The float graph's Conv and Gemm nodes, in order."""
    return [node for node in graph.node if node.op_type in ("Conv", "Gemm")]


def columns(node: onnx.NodeProto, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The input of `node` as the rows its weights multiply: (positions, in_features); a 3x3 convolution's
    patches (padding 1, stride 1) in the weight's (channel, row, column) order."""
    if node.op_type == "Gemm":
        return x.reshape(len(x), -1).astype(np.float64)
    kernel = onnx.helper.get_attribute_value(next(a for a in node.attribute if a.name == "kernel_shape"))
    pad = kernel[0] // 2
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    patches = np.lib.stride_tricks.sliding_window_view(padded, tuple(kernel), axis=(2, 3))  # N,C,H,W,kh,kw
    n, _, h, w = patches.shape[:4]
    count = n * h * w
    if count > POSITIONS_PER_BATCH:
        i, rest = np.divmod(rng.choice(count, size=POSITIONS_PER_BATCH, replace=False), h * w)
        y, x_ = np.divmod(rest, w)
        return patches[i, :, y, x_].reshape(len(i), -1).astype(np.float64)
    return patches.transpose(0, 2, 3, 1, 4, 5).reshape(count, -1).astype(np.float64)


def input_moments(float_model: onnx.ModelProto, inputs: np.ndarray, batch: int = 64, seed: int = 0) -> dict:
    """For each weighted layer of the float graph: the second moments (in_features x in_features) and the mean
    of its input rows over `inputs` (the graph's float input, N x C x H x W)."""
    import onnxruntime as ort

    nodes = weighted_layers(float_model.graph)
    probe = onnx.ModelProto()
    probe.CopyFrom(float_model)
    known = {o.name for o in probe.graph.output}
    for node in nodes:
        if node.input[0] not in known and node.input[0] != probe.graph.input[0].name:
            probe.graph.output.append(onnx.ValueInfoProto(name=node.input[0]))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    rng = np.random.default_rng(seed)
    moments = {node.input[1]: [0.0, 0.0, 0] for node in nodes}
    for start in range(0, len(inputs), batch):
        chunk = inputs[start:start + batch]
        values = dict(zip(names, session.run(names, {probe.graph.input[0].name: chunk})))
        values[probe.graph.input[0].name] = chunk
        for node in nodes:
            rows = columns(node, values[node.input[0]], rng)
            entry = moments[node.input[1]]
            entry[0] = entry[0] + rows.T @ rows
            entry[1] = entry[1] + rows.sum(0)
            entry[2] += len(rows)
    return {name: (second / count, total / count) for name, (second, total, count) in moments.items()}


LOW, HIGH = -64, 63
"""The int8 graph's 7-bit weight range (`train.quantize`), which every lowered level stays in."""
LEVELS = (3, 4, 6, 8, 11, 16, 23, 32)
"""The levels a layer's peak weights may take (+-L; about 2^(k/2), half a bit apart); layers not lowered keep
the int8 graph's 7 bits."""


def channel_steps(w: np.ndarray, levels: int) -> np.ndarray:
    """Per output row of `w` (out, in): the step that puts the row's largest weight at level +-`levels`."""
    return np.maximum(np.abs(w).max(1), 1e-12) / levels


def gptq(w: np.ndarray, moments: np.ndarray, scale: np.ndarray, block: int = 128) -> np.ndarray:
    """`w` (out, in) rounded to multiples of `scale` (per row, within `LOW`..`HIGH`) column by column, the columns
    of the largest inputs first, each column's error carried to the later ones through the inverse second
    moments of the layer's input (GPTQ); returns the integer levels."""
    order = np.argsort(-np.diag(moments), kind="stable")  # the columns that matter most first
    w = w[:, order].astype(np.float64)
    h = moments[np.ix_(order, order)].copy()
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h[np.diag_indices_from(h)] += DAMPING * np.mean(np.diag(h))
    inverse = np.linalg.cholesky(np.linalg.inv(h)).T  # upper factor of the inverse, as GPTQ uses it
    levels = np.zeros_like(w)
    s = scale[:, None]
    for start in range(0, w.shape[1], block):
        end = min(start + block, w.shape[1])
        part, errors = w[:, start:end].copy(), np.zeros((len(w), end - start))
        local = inverse[start:end, start:end]
        for i in range(end - start):
            q = np.clip(np.round(part[:, i:i + 1] / s), LOW, HIGH)
            levels[:, start + i] = q[:, 0]
            error = (part[:, i] - (q * s)[:, 0]) / local[i, i]
            part[:, i:] -= np.outer(error, local[i, i:])
            errors[:, i] = error
        w[:, end:] -= errors @ inverse[start:end, end:]
    restored = np.empty_like(levels)
    restored[:, order] = levels
    return restored.astype(np.int8)


def layer_variants(float_model: onnx.ModelProto, inputs: np.ndarray) -> dict:
    """Every layer but the first and the last (the raw pixels' and the logits': few weights, much effect)
    GPTQ-rounded to each of `LEVELS`: (float weight name, levels) -> `rounded`'s entry. One pass for the moments."""
    names = [node.input[1] for node in weighted_layers(float_model.graph)][1:-1]
    moments = input_moments(float_model, inputs)
    floats = {t.name: numpy_helper.to_array(t) for t in float_model.graph.initializer}
    return {(name, k): rounded(floats[name], floats[name.removesuffix("weight") + "bias"], *moments[name], k)
            for name in names for k in LEVELS}


def rounded(weight: np.ndarray, bias: np.ndarray, second: np.ndarray, mean: np.ndarray, levels: int) -> tuple:
    """One layer GPTQ-rounded with its peaks at +-`levels`: (levels shaped as `weight`, per-channel scale, bias
    with the mean shift of the rounding put back)."""
    rows = weight.reshape(len(weight), -1).astype(np.float64)
    scale = channel_steps(rows, levels)
    q = gptq(rows, second, scale)
    shifted = bias + (rows - q * scale[:, None]) @ mean
    return q.reshape(weight.shape), scale.astype(np.float32), shifted.astype(np.float32)


def choose_levels(int8_model: onnx.ModelProto, variants: dict, inputs: np.ndarray, gzip_bytes: int) -> dict[str, int]:
    """`LEVELS` per layer so that the int8 file gzips to about `gzip_bytes`: from the finest everywhere, the layer
    whose next step down costs the least KL divergence (each layer lowered alone, against the int8 graph's
    probabilities on `inputs`) per byte saved steps down, until the file fits or every layer is at the coarsest."""
    import onnxruntime as ort

    def probabilities(model):
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        logits = np.concatenate([session.run(None, {name: inputs[i:i + 256]})[0] for i in range(0, len(inputs), 256)])
        shifted = logits - logits.max(1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(1, keepdims=True))

    reference = probabilities(int8_model)
    cost, size = {}, {}
    for (name, k), entry in variants.items():
        log_p = probabilities(with_weights(int8_model, {name: entry}))
        cost[name, k] = float((np.exp(reference) * (reference - log_p)).sum(1).mean())
        size[name, k] = len(gzip.compress(entry[0].astype(np.int8).tobytes(), 6))
    names = sorted({name for name, _ in variants})
    rest = len(gzip.compress(int8_model.SerializeToString(), 6)) - sum(
        len(gzip.compress(numpy_helper.to_array(t).tobytes(), 6)) for t in int8_model.graph.initializer
        if t.name.removesuffix("_quantized") in names)
    rung = {name: len(LEVELS) - 1 for name in names}
    while rest + sum(size[name, LEVELS[i]] for name, i in rung.items()) > gzip_bytes:
        steps = [((cost[name, LEVELS[i - 1]] - cost[name, LEVELS[i]])
                  / max(size[name, LEVELS[i]] - size[name, LEVELS[i - 1]], 1), name)
                 for name, i in rung.items() if i > 0]
        if not steps:
            break
        rung[min(steps)[1]] -= 1
    return {name: LEVELS[i] for name, i in rung.items()}


def with_weights(int8_model: onnx.ModelProto, lowered: dict) -> onnx.ModelProto:
    """`int8_model` (a QDQ graph, as `train.quantize` writes it) holding the `lowered` weights (float weight name
    -> integer levels, per-channel scale, float bias), each bias requantized to its input's and weight's scales."""
    model = onnx.ModelProto()
    model.CopyFrom(int8_model)
    tensors = {t.name: t for t in model.graph.initializer}
    dequantized = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    input_scale = {dequantized[node.input[1]].input[0].removesuffix("_quantized"): dequantized[node.input[0]].input[1]
                   for node in model.graph.node if node.op_type in ("Conv", "Gemm")}
    for name, (levels, scale, bias) in lowered.items():
        stem = name.removesuffix("weight")
        bias_scale = (numpy_helper.to_array(tensors[input_scale[name]]) * scale).astype(np.float32)
        for suffix, value in (("weight_quantized", levels.astype(np.int8)), ("weight_scale", scale),
                              ("bias_quantized", np.round(bias / bias_scale).astype(np.int32)),
                              ("bias_quantized_scale", bias_scale)):
            tensors[stem + suffix].CopyFrom(numpy_helper.from_array(value, stem + suffix))
    return model


def distil(model, lowered: dict, faces, pre, epochs: float = DISTIL_EPOCHS,
           batch_size: int = 128, lr: float = DISTIL_LR, seed: int = 0) -> dict:
    """The `lowered` layers fine-tuned as they will run (rounded to their levels in the forward pass, straight
    through in the backward one) to give what the float `model` (an `EmotionCNN`) gives on augmented uint8
    training `faces` (N, H, W), cropped and normalized as `pre` (a `PreprocessConfig`) says: the KL divergence
    from its probabilities, the other layers left as they are. Returns `lowered` with the new levels and biases
    (the same scales)."""
    import copy

    import torch
    import torch.nn.functional as F
    from torch.func import functional_call
    from tqdm.auto import tqdm

    from fer_model.model import fuse_batchnorm
    from fer_model.preprocess import normalize

    from .augment import augment, random_crop

    torch.manual_seed(seed)
    teacher = fuse_batchnorm(model).float().eval()
    student = copy.deepcopy(teacher)
    for p in student.parameters():
        p.requires_grad_(False)
    params = dict(student.named_parameters())
    trained = {}
    for name, (levels, scale, bias) in lowered.items():
        key = name.removeprefix("model.")
        shape = (-1,) + (1,) * (levels.ndim - 1)
        weight, b = params[key], params[key.removesuffix("weight") + "bias"]
        weight.data = torch.from_numpy(levels.astype(np.float32) * scale.reshape(shape)).contiguous()
        b.data = torch.from_numpy(bias.astype(np.float32))
        trained[key] = (weight, b, torch.from_numpy(scale).reshape(shape))
        weight.requires_grad_(True)
        b.requires_grad_(True)
    optimizer = torch.optim.Adam([t for w, b, *_ in trained.values() for t in (w, b)], lr=lr)
    faces = torch.as_tensor(faces)
    steps = max(1, int(epochs * len(faces) / batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    progress = tqdm(range(steps), desc="distilling the lowered weights", unit="step")
    for step in progress:
        batch = faces[torch.randint(0, len(faces), (batch_size,))]
        x = normalize(random_crop(augment(batch), pre.input_size), pre).contiguous(memory_format=torch.channels_last)
        rounded = {key: w + (torch.clamp(torch.round(w / s), LOW, HIGH) * s - w).detach()
                   for key, (w, _, s) in trained.items()}
        with torch.autocast("cpu", dtype=torch.bfloat16):
            with torch.no_grad():
                target = F.softmax(teacher(x).float(), 1)
            loss = F.kl_div(F.log_softmax(functional_call(student, rounded, (x,)).float(), 1), target,
                            reduction="batchmean")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 20 == 0:
            progress.set_postfix(kl=f"{loss.item():.4f}")
    out = {}
    for name, (levels, scale, _) in lowered.items():
        w, b, s = trained[name.removeprefix("model.")]
        new = torch.clamp(torch.round(w.detach() / s), LOW, HIGH).numpy().astype(np.int8)
        out[name] = (new, scale, b.detach().numpy().astype(np.float32))
    return out


def lower_int8(folder: str | Path, inputs: np.ndarray, train_faces, gzip_bytes: int,
               epochs: float = DISTIL_EPOCHS, lr: float = DISTIL_LR) -> dict:
    """Rewrite `folder`'s int8 graph with coarser weights per layer so that it gzips to about `gzip_bytes`: GPTQ
    rounding on `inputs` (the float graph's input, as the int8 ranges were set on, mirrored too), levels chosen by
    `choose_levels`, then `distil` on uint8 `train_faces` against the float model. Returns the levels per layer
    and the file's gzip size."""
    from fer_model.classifier import INT8_NAME, ONNX_NAME
    from fer_model.hub import load_pretrained

    folder = Path(folder)
    float_model, int8_model = onnx.load(folder / ONNX_NAME), onnx.load(folder / INT8_NAME)
    views = np.ascontiguousarray(np.concatenate([inputs, inputs[..., ::-1]]))
    variants = layer_variants(float_model, views)
    levels = choose_levels(int8_model, variants, views, gzip_bytes)
    layers = {name.removeprefix("model.").removesuffix(".weight"): k for name, k in levels.items()}
    print("peak levels per layer:", ", ".join(f"{layer} +-{k}" for layer, k in layers.items()), flush=True)
    model, config = load_pretrained(folder)
    lowered = distil(model, {name: variants[name, k] for name, k in levels.items()}, train_faces,
                     config.preprocessing, epochs, lr=lr)
    data = with_weights(int8_model, lowered).SerializeToString()
    (folder / INT8_NAME).write_bytes(data)
    size = len(gzip.compress(data, 6))
    print(f"int8 weights lowered: {size:,} bytes gzip (asked {gzip_bytes:,})")
    return {"weight_levels": layers, "gzip_bytes": size, "distil_epochs": epochs, "distil_lr": lr}
