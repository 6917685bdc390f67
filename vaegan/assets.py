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

Since version 2, for the latent map and the realism meter (M = map pictures, e.g. 5,000 test
pictures; a version-1 file loads with these empty, and the app says how to build them):

    map_codes           (M, Z) posterior means of the map pictures
    map_labels          (M,)   their classes
    map_embedding       (M, 2) a t-SNE embedding of map_codes (scikit-learn, at build time)
    realism_logits      (M,)   sorted discriminator logits of their reconstructions (empty
                               for a model without a discriminator)
    realism_log_density (M,)   sorted log-densities of map_codes under the sampling prior

Optional, for a dataset with an attribute of its own (emoji: skin tone; A = directions):

    attribute_vectors   (A, Z) e.g. mean code of each skin-tone variant minus its untoned one

Metadata (strings): format, version, class_names (JSON list), num_images, source, and with
attribute_vectors: attribute_title, attribute_names (JSON list), attribute_info.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from safetensors.torch import save_file

from . import latent
from .files import read_safetensors

FORMAT, VERSION = "vaegan-explorer", "2"
VERSIONS = ("1", "2")  # what load_assets reads
MAP_POINTS = 5000  # test pictures on the latent map


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
    map_codes: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 0))
    map_labels: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    map_embedding: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 2))
    realism_logits: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    realism_log_density: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    attribute_vectors: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 0))
    attribute_title: str = ""
    attribute_names: tuple[str, ...] = ()
    attribute_info: str = ""

    TENSORS = ("mean_kl", "z_mean", "z_std", "pca_directions", "pca_variance_ratio", "pca_std",
               "class_vectors", "example_images", "example_labels")
    MAP_TENSORS = ("map_codes", "map_labels", "map_embedding", "realism_logits",
                   "realism_log_density")

    @property
    def has_map(self) -> bool:
        return len(self.map_codes) > 0


def pick_examples(images: torch.Tensor, labels: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first image of each class in turn (0, 1, 2, ...), up to n -> (images, labels)."""
    chosen: list[int] = []
    for c in torch.unique(labels).tolist():
        idx = (labels == c).nonzero()
        if len(idx) and len(chosen) < n:
            chosen.append(int(idx[0]))
    return images[chosen].clone(), labels[chosen].clone()


def encode_pictures(model, images: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 pictures (N, C, S, S) -> (posterior means (N, Z), summed KL per dimension (Z,))."""
    means, kl_sum = [], torch.zeros(model.config.latent_dim, dtype=torch.float64)
    for i in range(0, len(images), batch_size):
        x = images[i: i + batch_size].to(model.device).float() / 255  # (B, C, S, S)
        post = model.encode(x)
        means.append(post.mean.cpu())
        kl_sum += post.kl().double().sum(0).cpu()
    return torch.cat(means), kl_sum


def embed(codes: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A 2-D t-SNE embedding of codes (M, Z) -> (M, 2) (scikit-learn; build time only)."""
    from sklearn.manifold import TSNE
    perplexity = min(30.0, (len(codes) - 1) / 3)
    xy = TSNE(2, perplexity=perplexity, init="pca", learning_rate="auto",
              random_state=seed).fit_transform(codes.double().numpy())
    return torch.from_numpy(xy).float()


@torch.inference_mode()
def build_map(model, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> dict:
    """The latent map and the realism references from (test) pictures, uint8 (M, C, S, S)."""
    from .realism import real_logits
    codes, _ = encode_pictures(model, images, batch_size)  # (M, Z)
    logits = [real_logits(model, model.decode(codes[i: i + batch_size].to(model.device)))
              for i in range(0, len(codes), batch_size)]
    return {"map_codes": codes, "map_labels": labels.long().clone(), "map_embedding": embed(codes),
            "realism_logits": torch.zeros(0) if logits[0] is None else torch.cat(logits).sort().values,
            "realism_log_density": model.prior_log_prob(codes).float().sort().values}


@torch.inference_mode()
def build_assets(model, images: torch.Tensor, labels: torch.Tensor | None,
                 class_names: tuple[str, ...] | list[str], example_images: torch.Tensor,
                 example_labels: torch.Tensor, n_examples: int = 10, batch_size: int = 500,
                 source: str = "training", map_points: int = MAP_POINTS) -> ExplorerAssets:
    """Encode images (uint8 (N, C, S, S)) and compute every direction and statistic; the map
    and realism references from the first map_points example (test) pictures (0: none)."""
    model.eval()
    z, kl_sum = encode_pictures(model, images, batch_size)  # (N, Z)
    z_mean, directions, ratio = latent.pca(z)
    pca_std = ((z - z_mean) @ directions).std(0)  # (K,)
    if labels is not None:
        vectors = latent.class_vectors(z, labels, len(class_names))
    else:
        vectors, class_names = torch.zeros(0, z.shape[1]), ()
    ex_x, ex_y = pick_examples(example_images, example_labels, n_examples)
    extra = build_map(model, example_images[:map_points], example_labels[:map_points],
                      batch_size) if map_points else {}
    return ExplorerAssets((kl_sum / len(z)).float(), z_mean, z.std(0), directions, ratio, pca_std,
                          vectors, ex_x.to(torch.uint8), ex_y.long(), tuple(class_names),
                          len(z), source, **extra)


def save_assets(assets: ExplorerAssets, path: str | Path) -> None:
    names = ExplorerAssets.TENSORS + (ExplorerAssets.MAP_TENSORS if assets.has_map else ())
    tensors = {k: getattr(assets, k).contiguous() for k in names}
    meta = {"format": FORMAT, "version": VERSION, "class_names": json.dumps(list(assets.class_names)),
            "num_images": str(assets.num_images), "source": assets.source}
    if len(assets.attribute_vectors):
        tensors["attribute_vectors"] = assets.attribute_vectors.float().contiguous()
        meta.update(attribute_title=assets.attribute_title, attribute_info=assets.attribute_info,
                    attribute_names=json.dumps(list(assets.attribute_names)))
    save_file(tensors, str(path), metadata=meta)


def load_assets(path: str | Path, latent_dim: int, channels: int, image_size: int) -> ExplorerAssets:
    """Read and check explorer.safetensors against the model; ValueError names file and key."""
    file = read_safetensors(path)
    meta, tensors = file.metadata, file.tensors
    if meta.get("format") != FORMAT or meta.get("version") not in VERSIONS:
        raise ValueError(f"{path}: metadata format/version is {meta.get('format')!r}/"
                         f"{meta.get('version')!r}, expected {FORMAT!r}/one of {list(VERSIONS)}")
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
    assets = ExplorerAssets(**floats, example_images=t["example_images"].to(torch.uint8),
                            example_labels=t["example_labels"].long(), class_names=names,
                            num_images=num_images, source=meta.get("source", ""))
    if "attribute_vectors" in t:
        assets = replace(assets, **_attribute_part(path, t, meta, z))
    return replace(assets, **_map_part(path, t, z)) if "map_codes" in t else assets


def _attribute_part(path, t: dict, meta: dict, z: int) -> dict:
    """The optional attribute directions of a loaded file, checked (ValueError naming the file)."""
    v = t["attribute_vectors"].float()
    try:
        names = tuple(str(n) for n in json.loads(meta["attribute_names"]))
        title = str(meta["attribute_title"])
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: bad attribute metadata ({e!r})") from None
    if v.dim() != 2 or v.shape[1] != z or len(names) != v.shape[0] or not title:
        raise ValueError(f"{path}: key 'attribute_vectors' has shape {tuple(v.shape)}, expected "
                         f"({len(names)}, {z}) with a title and one name per direction")
    if not torch.isfinite(v).all():
        raise ValueError(f"{path}: non-finite values in attribute_vectors")
    return {"attribute_vectors": v, "attribute_names": names, "attribute_title": title,
            "attribute_info": str(meta.get("attribute_info", ""))}


def _map_part(path, t: dict, z: int) -> dict:
    """The version-2 map tensors of a loaded file, checked (ValueError naming file and key)."""
    missing = [k for k in ExplorerAssets.MAP_TENSORS if k not in t]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    m = len(t["map_codes"])
    expected = {"map_codes": (m, z), "map_labels": (m,), "map_embedding": (m, 2),
                "realism_log_density": (m,)}
    for key, shape in expected.items():
        if tuple(t[key].shape) != shape:
            raise ValueError(f"{path}: key {key!r} has shape {tuple(t[key].shape)}, expected {shape}")
    if len(t["realism_logits"]) not in (0, m):
        raise ValueError(f"{path}: key 'realism_logits' has {len(t['realism_logits'])} values, "
                         f"expected 0 or {m}")
    out = {k: t[k].float() for k in ExplorerAssets.MAP_TENSORS if k != "map_labels"}
    if not all(torch.isfinite(v).all() for v in out.values()):
        raise ValueError(f"{path}: non-finite values in the map or the realism references")
    return {**out, "map_labels": t["map_labels"].long()}
