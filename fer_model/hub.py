"""Weights I/O in one place: safetensors + config.json, in a local folder or a Hugging Face Hub repo."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .config import FERConfig
from .errors import ModelLoadError
from .model import EmotionCNN

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
DEFAULT_MODEL_DIR = Path(__file__).parent / "weights" / "default"
"""The embedded default model, shipped inside the package so everything runs offline."""
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def build_model(config: FERConfig) -> EmotionCNN:
    return EmotionCNN(config.model, num_classes=len(config.labels), image_size=config.preprocessing.input_size)


def save_pretrained(model: torch.nn.Module, config: FERConfig, folder: str | os.PathLike,
                    dtype: torch.dtype | None = None) -> Path:
    """Write `config.json` and `model.safetensors` (optionally cast to `dtype`, e.g. float16) into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    (folder / WEIGHTS_NAME).write_bytes(save(state, metadata={"format": "pt"}))  # usual file mode, unlike save_file
    (folder / CONFIG_NAME).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    return folder


def resolve(source: str | os.PathLike | None = None, revision: str | None = None) -> Path:
    """The local folder holding a model: the embedded default, a folder, or a Hub repo id (downloaded or cached)."""
    if source is None:
        return DEFAULT_MODEL_DIR
    path = Path(source)
    if path.is_dir():
        return path
    if path.exists():
        raise ModelLoadError(f"{source} is a file; a model is a folder with {CONFIG_NAME} and {WEIGHTS_NAME}")
    if path.is_absolute() or str(source).startswith((".", "~")) or str(source).count("/") != 1:
        raise ModelLoadError(f"no such model folder: {source} (a Hub repo id looks like user/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(repo_id=str(source), revision=revision,
                                      allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, "*.md", "*.png"]))
    except LocalEntryNotFoundError as err:
        raise ModelLoadError(f"no such model folder: {source}, and the Hub repo {source} is not in the local cache "
                             "while the Hub cannot be reached (offline or no network)") from err
    except (RepositoryNotFoundError, HfHubHTTPError) as err:
        raise ModelLoadError(f"no such model folder: {source}, and the Hub could not give {source}: "
                             f"{str(err).splitlines()[0]}") from err


def load_pretrained(source: str | os.PathLike | None = None, revision: str | None = None,
                    ) -> tuple[EmotionCNN, FERConfig]:
    """Model (in eval mode, float32) and config from `resolve(source, revision)`. Only safetensors are read."""
    folder = resolve(source, revision)
    weights, config_file = folder / WEIGHTS_NAME, folder / CONFIG_NAME
    if not weights.is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        hint = f" (found {', '.join(pickles)}: pickle files are never loaded, convert them to safetensors)" if pickles else ""
        raise ModelLoadError(f"no {WEIGHTS_NAME} in {folder}{hint}")
    if not config_file.is_file():
        raise ModelLoadError(f"no {CONFIG_NAME} in {folder}")
    try:
        config = FERConfig.from_dict(json.loads(config_file.read_text()))
    except (ValueError, TypeError) as err:
        raise ModelLoadError(f"invalid {config_file}: {err}") from err
    try:
        state = load_file(weights)
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelLoadError(f"{weights} is not a valid safetensors file ({err}); pickle weights are refused") from err
    model = build_model(config)
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as err:
        raise ModelLoadError(f"weights in {weights} do not match {config_file}: {err}") from err
    return model.eval(), config


def push_to_hub(folder: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None,
                commit_message: str = "Upload FER model", allow_patterns: list[str] | None = None) -> str:
    """Create `repo_id` if needed and upload `folder` (only `allow_patterns` when given); returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message=commit_message,
                             allow_patterns=allow_patterns)
    return str(getattr(info, "commit_url", info))
