"""Model files in one place: `config.json`, `model.onnx` and `model.safetensors`, in a local folder or a
Hugging Face Hub repo. Reading a config and finding a model's folder need no torch; saving and loading
the torch model do."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from fnmatch import fnmatch
from pathlib import Path

from .classifier import INT8_NAME, ONNX_NAME, WEIGHTS_NAME
from .config import FERConfig
from .errors import ModelLoadError, require

CONFIG_NAME = "config.json"
DEFAULT_MODEL_DIR = Path(__file__).parent / "weights" / "default"
"""The embedded default model, shipped inside the package so everything runs offline."""
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
MODEL_FILES = [CONFIG_NAME, ONNX_NAME, INT8_NAME, WEIGHTS_NAME]
HUB_FILES = [*MODEL_FILES, "README.md", "*.png", "metrics.json", "command.txt"]
"""What `push_to_hub` uploads from a model folder (with the face detector's ONNX file and a card)."""


def build_model(config: FERConfig):
    """A fresh `EmotionCNN` for `config` (needs torch)."""
    from .model import EmotionCNN

    return EmotionCNN(config.model, num_classes=len(config.labels), image_size=config.preprocessing.input_size)


def save_pretrained(model, config: FERConfig, folder: str | os.PathLike, dtype=None) -> Path:
    """Write `config.json`, `model.safetensors` (optionally cast to `dtype`, e.g. torch.float16) and
    `model.onnx` (exported from the weights as saved, checked against torch) into `folder`."""
    require("torch", "saving a model")
    from safetensors.torch import save

    from .export import export_onnx

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    (folder / WEIGHTS_NAME).write_bytes(save(state, metadata={"format": "pt"}))  # usual file mode, unlike save_file
    (folder / CONFIG_NAME).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    export_onnx(model_from_state(state, config, folder / WEIGHTS_NAME), folder / ONNX_NAME,
                config.preprocessing.input_size)
    return folder


def copy_pretrained(source: str | os.PathLike, config: FERConfig, folder: str | os.PathLike) -> Path:
    """Write `config` and copy the model files of the folder `source` into `folder` (no torch needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (ONNX_NAME, INT8_NAME, WEIGHTS_NAME):
        if (Path(source) / name).is_file() and Path(source, name).resolve() != (folder / name).resolve():
            shutil.copyfile(Path(source) / name, folder / name)
    (folder / CONFIG_NAME).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    return folder


def resolve(source: str | os.PathLike | None = None, revision: str | None = None) -> Path:
    """The local folder holding a model: the embedded default (None, or "default" where no folder has that name),
    a folder, or a Hub repo id (downloaded or cached)."""
    if source is None:
        return DEFAULT_MODEL_DIR
    path = Path(source)
    if path.is_dir():
        return path
    if str(source) == "default":
        return DEFAULT_MODEL_DIR
    if path.exists():
        raise ModelLoadError(f"{source} is a file; a model is a folder with {CONFIG_NAME} and {ONNX_NAME}")
    if path.is_absolute() or str(source).startswith((".", "~")) or str(source).count("/") != 1:
        raise ModelLoadError(f"no such model folder: {source} (a Hub repo id looks like user/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(repo_id=str(source), revision=revision,
                                      allow_patterns=[*MODEL_FILES, "*.md", "*.png"]))
    except LocalEntryNotFoundError as err:
        raise ModelLoadError(f"no such model folder: {source}, and the Hub repo {source} is not in the local cache "
                             "while the Hub cannot be reached (offline or no network)") from err
    except (RepositoryNotFoundError, HfHubHTTPError) as err:
        raise ModelLoadError(f"no such model folder: {source}, and the Hub could not give {source}: "
                             f"{str(err).splitlines()[0]}") from err


def read_config(folder: str | os.PathLike) -> FERConfig:
    """The `config.json` of a model folder; `ModelLoadError` when it is missing or invalid."""
    config_file = Path(folder) / CONFIG_NAME
    if not config_file.is_file():
        raise ModelLoadError(f"no {CONFIG_NAME} in {folder}")
    try:
        return FERConfig.from_dict(json.loads(config_file.read_text()))
    except (ValueError, TypeError) as err:
        raise ModelLoadError(f"invalid {config_file}: {err}") from err


def load_pretrained(source: str | os.PathLike | None = None, revision: str | None = None):
    """The torch model (in eval mode, float32) and config from `resolve(source, revision)`. Only safetensors
    are read. Needs torch."""
    require("torch", "loading the torch model")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = resolve(source, revision)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        hint = f" (found {', '.join(pickles)}: pickle files are never loaded, convert them to safetensors)" if pickles else ""
        raise ModelLoadError(f"no {WEIGHTS_NAME} in {folder}{hint}")
    config = read_config(folder)
    try:
        state = load_file(weights)
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelLoadError(f"{weights} is not a valid safetensors file ({err}); pickle weights are refused") from err
    return model_from_state(state, config, weights), config


def model_from_state(state: dict, config: FERConfig, weights: Path):
    """An `EmotionCNN` for `config` holding `state` as float32, in eval mode; `ModelLoadError` when they differ."""
    model = build_model(config)
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as err:
        raise ModelLoadError(f"weights in {weights} do not match {weights.parent / CONFIG_NAME}: {err}") from err
    return model.eval()


def push_to_hub(folder: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None,
                commit_message: str = "Upload FER model", allow_patterns: list[str] | None = None) -> str:
    """Create `repo_id` if needed and upload, in one commit, what a runtime needs: the folder's files that
    match `allow_patterns` (default `HUB_FILES`), the face detector's ONNX file and the model card with
    its usage snippets for `repo_id` (a minimal card when the folder has none). Returns the commit URL."""
    from huggingface_hub import HfApi

    from .card import with_usage
    from .detection.yunet import MODEL_FILE as DETECTOR_FILE

    folder = Path(folder)
    patterns = allow_patterns or HUB_FILES
    with tempfile.TemporaryDirectory() as staging:
        for path in sorted(folder.iterdir()):
            if path.is_file() and any(fnmatch(path.name, pattern) for pattern in patterns):
                shutil.copy2(path, staging)
        shutil.copy2(DETECTOR_FILE, staging)
        card = folder / "README.md"
        Path(staging, "README.md").write_text(with_usage(card.read_text() if card.is_file() else None,
                                                         read_config(folder), repo_id))
        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(folder_path=staging, repo_id=repo_id, commit_message=commit_message)
    return str(getattr(info, "commit_url", info))
