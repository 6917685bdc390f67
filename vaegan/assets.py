"""Explorer assets: directions and statistics computed once from the training data and saved
next to the weights as explorer.safetensors, so the app needs no dataset at run time.

Tensors (Z = latent size, K = principal directions kept, C = classes, E = examples):

    mean_kl             (Z,)   mean KL(q(z_i|x) || N(0, 1)) per dimension over the data
    z_mean, z_std       (Z,)   mean and standard deviation of the encoded means
    pca_directions      (Z, K) principal directions of the encoded means (columns)
    pca_variance_ratio  (K,)   share of variance each explains
    pca_std             (K,)   standard deviation of the data along each
    class_vectors       (C, Z) mean z of a class minus mean z of the rest (Larsen et al.)
    example_images      (E, channels, S, S) uint8 test-set pictures; example_labels (E,)

Metadata (strings): format, version, class_names (JSON list), num_images, source.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from . import latent
from .files import read_safetensors

FORMAT, VERSION = "vaegan-explorer", "1"


@dataclass
class ExplorerAssets:
    mean_kl: torch.Tensor
    z_mean: torch.Tensor
    z_std: torch.Tensor
    pca_directions: torch.Tensor
    pca_variance_ratio: torch.Tensor
    pca_std: torch.Tensor
    class_vectors: torch.Tensor
    example_images: torch.Tensor
    example_labels: torch.Tensor
    class_names: tuple[str, ...]
    num_images: int
    source: str

    TENSORS = ("mean_kl", "z_mean", "z_std", "pca_directions", "pca_variance_ratio", "pca_std",
               "class_vectors", "example_images", "example_labels")


def pick_examples(images: torch.Tensor, labels: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first image of each class in turn (0, 1, 2, ...), up to n -> (images, labels)."""
    chosen: list[int] = []
    for c in torch.unique(labels).tolist():
        idx = (labels == c).nonzero()
        if len(idx) and len(chosen) < n:
            chosen.append(int(idx[0]))
    return images[chosen].clone(), labels[chosen].clone()


@torch.inference_mode()
def build_assets(model, images: torch.Tensor, labels: torch.Tensor | None,
                 class_names: tuple[str, ...] | list[str], example_images: torch.Tensor,
                 example_labels: torch.Tensor, n_examples: int = 10, batch_size: int = 500,
                 source: str = "training") -> ExplorerAssets:
    """Encode images (uint8 (N, C, S, S)) and compute every direction and statistic."""
    model.eval()
    means, kl_sum = [], torch.zeros(model.config.latent_dim, dtype=torch.float64)
    for i in range(0, len(images), batch_size):
        x = images[i: i + batch_size].to(model.device).float() / 255  # (B, C, S, S)
        post = model.encode(x)
        means.append(post.mean.cpu())
        kl_sum += post.kl().double().sum(0).cpu()
    z = torch.cat(means)  # (N, Z)
    z_mean, directions, ratio = latent.pca(z)
    pca_std = ((z - z_mean) @ directions).std(0)  # (K,)
    if labels is not None:
        vectors = latent.class_vectors(z, labels, len(class_names))
    else:
        vectors, class_names = torch.zeros(0, z.shape[1]), ()
    ex_x, ex_y = pick_examples(example_images, example_labels, n_examples)
    return ExplorerAssets((kl_sum / len(z)).float(), z_mean, z.std(0), directions, ratio, pca_std,
                          vectors, ex_x.to(torch.uint8), ex_y.long(), tuple(class_names),
                          len(z), source)


def save_assets(assets: ExplorerAssets, path: str | Path) -> None:
    tensors = {k: getattr(assets, k).contiguous() for k in ExplorerAssets.TENSORS}
    meta = {"format": FORMAT, "version": VERSION, "class_names": json.dumps(list(assets.class_names)),
            "num_images": str(assets.num_images), "source": assets.source}
    save_file(tensors, str(path), metadata=meta)


def load_assets(path: str | Path, latent_dim: int, channels: int, image_size: int) -> ExplorerAssets:
    """Read and check explorer.safetensors against the model; ValueError names file and key."""
    file = read_safetensors(path)
    meta, tensors = file.metadata, file.tensors
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"{path}: metadata format/version is {meta.get('format')!r}/"
                         f"{meta.get('version')!r}, expected {FORMAT!r}/{VERSION!r}")
    missing = [k for k in ExplorerAssets.TENSORS if k not in tensors]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    try:
        names = tuple(json.loads(meta["class_names"]))
        num_images = int(meta["num_images"])
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: bad metadata ({e!r})") from None
    t, z = tensors, latent_dim
    k, e = t["pca_directions"].shape[-1], len(t["example_labels"])
    expected = {"mean_kl": (z,), "z_mean": (z,), "z_std": (z,), "pca_directions": (z, k),
                "pca_variance_ratio": (k,), "pca_std": (k,), "class_vectors": (len(names), z),
                "example_images": (e, channels, image_size, image_size), "example_labels": (e,)}
    for key, shape in expected.items():
        if tuple(t[key].shape) != shape:
            raise ValueError(f"{path}: key {key!r} has shape {tuple(t[key].shape)}, expected {shape} "
                             f"for this model (latent_dim {z}, {channels}x{image_size}x{image_size})")
    floats = {key: t[key].float() for key in ExplorerAssets.TENSORS[:7]}
    if not all(torch.isfinite(v).all() for v in floats.values()):
        raise ValueError(f"{path}: non-finite values in the directions or statistics")
    return ExplorerAssets(**floats, example_images=t["example_images"].to(torch.uint8),
                          example_labels=t["example_labels"].long(), class_names=names,
                          num_images=num_images, source=meta.get("source", ""))
