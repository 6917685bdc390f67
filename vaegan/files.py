"""The one safetensors reader: every file the package opens (model weights, explorer assets,
the header check before a model is built) goes through read_safetensors, so a missing,
truncated or foreign file always gets the same sentence naming it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open


class UnreadableFile(ValueError):
    """'<path>: not a readable safetensors file (<why>)'."""


@dataclass
class TensorFile:
    metadata: dict[str, str]
    shapes: dict[str, tuple[int, ...]]  # every key's shape, read from the header
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # empty with header_only


def read_safetensors(path: str | Path, header_only: bool = False) -> TensorFile:
    """The file's metadata, shapes and (unless header_only) tensors; UnreadableFile otherwise."""
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = list(f.keys())
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in keys}
            tensors = {} if header_only else {k: f.get_tensor(k) for k in keys}
            return TensorFile(f.metadata() or {}, shapes, tensors)
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise UnreadableFile(f"{path}: not a readable safetensors file ({e})") from None
