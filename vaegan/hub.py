"""Resolve a model spec to a ready model: a local folder ("weights/fashion-mnist") or a
Hugging Face Hub repo id with an optional revision ("org/name", "org/name@v1",
"org/name@<40-hex commit>"). Files come through huggingface_hub, so they land in the
standard cache and load again with HF_HUB_OFFLINE=1. Only safetensors are accepted.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, LocalEntryNotFoundError,
                                    RepositoryNotFoundError, RevisionNotFoundError)

from .model import SAFETENSORS_FILE, VAEGAN, VAEGANConfig

EXPLORER_FILE = "explorer.safetensors"
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelLoadError(RuntimeError):
    """A model could not be had; the message says which and why, in one sentence."""


@dataclass
class LoadedModel:
    model: VAEGAN
    spec: str  # what the user asked for
    folder: Path  # local folder (or cache snapshot) holding the files
    explorer_file: Path | None  # precomputed directions/statistics, when shipped


def parse_spec(spec: str) -> tuple[str, str | None]:
    """'org/name@rev' -> ('org/name', 'rev'); 'org/name' -> ('org/name', None)."""
    repo, _, rev = spec.partition("@")
    return repo, (rev or None)


def _download(repo_id: str, revision: str | None, filename: str, required: bool = True) -> Path | None:
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision))
    except RepositoryNotFoundError:
        raise ModelLoadError(f"{repo_id}: repository not found on the Hub (or it is private "
                             "and no token was given: set HF_TOKEN)") from None
    except GatedRepoError:
        raise ModelLoadError(f"{repo_id}: gated repository; accept its terms and set HF_TOKEN") from None
    except RevisionNotFoundError:
        raise ModelLoadError(f"{repo_id}: revision {revision!r} not found") from None
    except EntryNotFoundError:
        if required:
            raise ModelLoadError(f"{repo_id}@{revision or 'main'}: no {filename} in the repository "
                                 "(only safetensors weights are accepted)") from None
        return None
    except LocalEntryNotFoundError:
        if required:
            raise ModelLoadError(f"{repo_id}: {filename} is not in the local cache and the Hub "
                                 "cannot be reached (offline?)") from None
        return None


def load_model(spec: str, device: str = "cpu") -> LoadedModel:
    """Folder or Hub repo id -> LoadedModel; raises ModelLoadError with a clear sentence."""
    path = Path(spec).expanduser()
    if path.is_dir():
        folder = path
        files = {"config": folder / "config.json", "weights": folder / SAFETENSORS_FILE}
        for f in files.values():
            if not f.exists():
                raise ModelLoadError(f"{f}: missing (a weights folder holds config.json and "
                                     f"{SAFETENSORS_FILE})")
        explorer = folder / EXPLORER_FILE
        explorer = explorer if explorer.exists() else None
    else:
        repo_id, revision = parse_spec(spec)
        if not REPO_ID.match(repo_id):
            raise ModelLoadError(f"{spec!r}: neither a local weights folder nor a Hub repo id "
                                 "like 'org/name' or 'org/name@revision'")
        files = {"config": _download(repo_id, revision, "config.json"),
                 "weights": _download(repo_id, revision, SAFETENSORS_FILE)}
        explorer = _download(repo_id, revision, EXPLORER_FILE, required=False)
        folder = files["weights"].parent
    try:
        data = json.loads(Path(files["config"]).read_text())
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        config = VAEGANConfig.from_dict(data, source=str(files["config"]))
    except (ValueError, TypeError) as e:
        raise ModelLoadError(f"{files['config']}: invalid config ({e})") from None
    model = VAEGAN(config)
    try:
        model.load_weights(files["weights"], strict=True)
    except ValueError as e:
        raise ModelLoadError(str(e)) from None
    return LoadedModel(model.to(device).eval(), spec, folder, explorer)
