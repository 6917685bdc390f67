"""An independent image classifier for the evaluation's class figures: a small CNN that this
package trains itself on a dataset's training split, so that `vaegan.evaluate` can ask "is the
reconstruction of a sneaker still a sneaker?" and "does the model draw every class about as often
as the test set holds it?" without trusting the model under test.

Network: three blocks of 3x3 conv + BatchNorm + ReLU + 2x2 max-pool + dropout, global average
pool, dropout, linear (pictures larger than `max_side` are first area-averaged down to it).
Recipe: Adam with a cosine learning-rate decay, a few epochs, seeded data order, initialisation
and dropout; emoji are mirrored left-right at random (a group does not depend on the side).

The trained weights are cached as safetensors, with a JSON of what they are, under
`$VAEGAN_CACHE/classifiers` (default ~/.cache/vaegan/classifiers), keyed by a hash of the
training data (image bytes and labels), its shape and the recipe (VERSION and its fields): new
data or a new recipe trains anew, the same data loads. Its accuracy on the dataset's test split
is measured, and printed to stderr, every time it is loaded or trained.

`python -m vaegan.classifier --dataset emoji` trains (or loads) one and prints its accuracy.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import dataset_classes, load_dataset, unit_float
from .files import UnreadableFile, read_safetensors

VERSION = "small-cnn v1"  # change when the network or the training loop changes
NATIVE = {"fashion-mnist": (28, 1), "emoji": (64, 3)}  # dataset -> (image_size, channels)


def default_cache_dir() -> Path:
    return Path(os.environ.get("VAEGAN_CACHE", Path.home() / ".cache" / "vaegan")) / "classifiers"


@dataclass(frozen=True)
class Recipe:
    """Everything besides the data that decides the trained weights (part of the cache key)."""

    epochs: int = 5
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    widths: tuple[int, ...] = (32, 64, 128)
    dropout: float = 0.1
    max_side: int = 32  # larger pictures are area-averaged down to this side first
    flip: bool = False  # mirror each training picture left-right with probability 1/2
    seed: int = 0
    limit: int | None = None  # train on the first `limit` training pictures only (tests)

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))


RECIPES: dict[str, Recipe] = {
    # 90.6% test accuracy, about 6 minutes on one (shared) thread; dropout 0.2 and 4 epochs: 89.1%
    "fashion-mnist": Recipe(epochs=5),
    # 3,307 pictures: more passes, and mirrored ones. 84.2% test accuracy (the 191 People & Body
    # test pictures 99%, the 12 Activities 8%), 5-11 minutes on one shared thread; at dropout 0.2,
    # 30 epochs gave 80.2% and 60 gave 83.1%
    "emoji": Recipe(epochs=60, flip=True),
}


class SmallCNN(nn.Module):
    """(B, C, H, W) in [0, 1] -> class logits (B, K)."""

    def __init__(self, channels: int, num_classes: int, recipe: Recipe) -> None:
        super().__init__()
        self.max_side = recipe.max_side
        layers: list[nn.Module] = []
        cin = channels
        for w in recipe.widths:
            layers += [nn.Conv2d(cin, w, 3, padding=1, bias=False), nn.BatchNorm2d(w),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Dropout(recipe.dropout)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(recipe.dropout),
                                  nn.Linear(cin, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if max(x.shape[-2:]) > self.max_side:
            s = self.max_side / max(x.shape[-2:])
            x = F.interpolate(x, (round(x.shape[-2] * s), round(x.shape[-1] * s)), mode="area")
        return self.head(self.features(x * 2 - 1))


class Classifier:
    """A trained SmallCNN with its class names; pictures (B, C, H, W), uint8 or float in [0, 1],
    of exactly the shape it was trained on."""

    def __init__(self, net: SmallCNN, class_names: tuple[str, ...], image_size: int, channels: int,
                 dataset: str, key: str, path: Path | None = None) -> None:
        self.net = net.eval()
        self.class_names = tuple(class_names)
        self.image_size, self.channels = image_size, channels
        self.dataset, self.key, self.path = dataset, key, path
        self.test_accuracy: float | None = None  # on the dataset's test split (load_classifier)
        self.test_size = 0

    @torch.inference_mode()
    def logits(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """(B, C, H, W) -> (B, K) float32."""
        want = (self.channels, self.image_size, self.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != want:
            raise ValueError(f"the {self.dataset} classifier takes pictures of shape "
                             f"(B, {', '.join(map(str, want))}), got {tuple(images.shape)}")
        return torch.cat([self.net(unit_float(images[i:i + batch_size]))
                          for i in range(0, len(images), batch_size)]) if len(images) else \
            torch.zeros(0, len(self.class_names))

    def probs(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """(B, C, H, W) -> class probabilities (B, K)."""
        return self.logits(images, batch_size).softmax(1)

    def predict(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """(B, C, H, W) -> labels (B,) int64, indices into class_names."""
        return self.logits(images, batch_size).argmax(1)

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        return float((self.predict(images) == labels).float().mean()) if len(labels) else float("nan")

    def class_accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """Accuracy per true class (classes absent from labels left out)."""
        right = self.predict(images) == labels
        return {name: float(right[labels == k].float().mean())
                for k, name in enumerate(self.class_names) if (labels == k).any()}


def class_names(dataset: str, labels: torch.Tensor) -> tuple[str, ...]:
    """The dataset's class names (data.dataset_classes), else the label numbers."""
    return dataset_classes(dataset) or tuple(str(k) for k in range(int(labels.max()) + 1))


def data_key(images: torch.Tensor, labels: torch.Tensor, recipe: Recipe) -> str:
    """Hash of the training data (image bytes, labels, shape) and the recipe."""
    h = hashlib.sha256(f"{VERSION}|{json.dumps(asdict(recipe), sort_keys=True)}|"
                       f"{tuple(images.shape)}|{images.dtype}".encode())
    h.update(images.contiguous().numpy().tobytes())
    h.update(labels.to(torch.int64).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def dataset_slug(dataset: str) -> str:
    """A dataset's name as a file name part ("emoji"; a folder's last part)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(dataset).name or "data").strip("_") or "data"


@contextmanager
def _threads(n: int | None):
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def train_net(images: torch.Tensor, labels: torch.Tensor, num_classes: int, recipe: Recipe,
              verbose: bool = True) -> SmallCNN:
    """Train a SmallCNN on uint8 images (N, C, H, W) and labels (N,): deterministic for a recipe
    (its seed fixes initialisation, dropout, data order and flips; the caller's RNG is untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)  # initialisation and dropout
        net = SmallCNN(images.shape[1], num_classes, recipe)
        opt = torch.optim.Adam(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        steps_per_epoch = math.ceil(len(images) / recipe.batch_size)
        total = recipe.epochs * steps_per_epoch
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
        net.train()
        for epoch in range(recipe.epochs):
            t0, loss_sum, right = time.time(), 0.0, 0
            g = torch.Generator().manual_seed(recipe.seed * 1000 + epoch)
            order = torch.randperm(len(images), generator=g)
            for i in range(0, len(images), recipe.batch_size):
                idx = order[i:i + recipe.batch_size]
                x, y = unit_float(images[idx]), labels[idx]  # (b, C, H, W), (b,)
                if recipe.flip:
                    mirror = torch.rand(len(x), generator=g) < 0.5
                    x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
                logits = net(x)
                loss = F.cross_entropy(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += float(loss.detach()) * len(idx)
                right += int((logits.argmax(1) == y).sum())
            if verbose:
                print(f"classifier epoch {epoch + 1}/{recipe.epochs}: loss {loss_sum / len(images):.4f}, "
                      f"train accuracy {right / len(images):.2%}, {time.time() - t0:.0f} s", file=sys.stderr)
    return net.eval()


def _save(net: SmallCNN, info: dict, weights: Path, meta: Path) -> None:
    from safetensors.torch import save_file
    weights.parent.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_suffix(".tmp.safetensors")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp),
              metadata={"version": VERSION, "key": info["key"]})
    os.replace(tmp, weights)
    meta.write_text(json.dumps(info, indent=2) + "\n")


def load_classifier(dataset: str, data_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                    threads: int | None = None, verbose: bool = True, image_size: int | None = None,
                    channels: int | None = None, recipe: Recipe | None = None,
                    retrain: bool = False) -> Classifier:
    """The classifier of `dataset` ("fashion-mnist", "emoji" or a labelled dataset that
    vaegan.data.load_dataset reads) at image_size x image_size with `channels` (default: the
    dataset's own), loaded from cache_dir (default $VAEGAN_CACHE/classifiers) or trained on the
    training split and saved there. Its test accuracy is measured on the test split and printed
    to stderr each time (unless verbose=False)."""
    size0, ch0 = NATIVE.get(dataset, (image_size, channels))
    image_size, channels = image_size or size0, channels or ch0
    if not image_size or not channels:
        raise ValueError(f"say image_size and channels for the dataset {dataset!r}")
    recipe = recipe or RECIPES.get(dataset, Recipe())
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    images, labels = load_dataset(dataset, "train", data_dir, image_size, channels)
    if labels is None:
        raise ValueError(f"{dataset}: the dataset has no labels, so no classifier can be trained on it")
    if tuple(images.shape[1:]) != (channels, image_size, image_size):
        raise ValueError(f"{dataset} has pictures of shape {tuple(images.shape[1:])}, not "
                         f"({channels}, {image_size}, {image_size}) as asked")
    if recipe.limit is not None:
        images, labels = images[:recipe.limit], labels[:recipe.limit]
    names = class_names(dataset, labels)
    key = data_key(images, labels, recipe)
    weights = cache / f"{dataset_slug(dataset)}-{key}.safetensors"
    meta = weights.with_suffix(".json")
    with _threads(threads):
        net = SmallCNN(channels, len(names), recipe)
        trained = False
        if weights.is_file() and meta.is_file() and not retrain:
            try:
                net.load_state_dict(read_safetensors(weights).tensors, strict=True)
                info = json.loads(meta.read_text())
            except (UnreadableFile, RuntimeError, ValueError) as e:
                print(f"classifier cache {weights} unreadable ({e}); training anew", file=sys.stderr)
                trained = True
        else:
            trained = True
        if trained:
            if verbose:
                print(f"training the {dataset} classifier on {len(images)} pictures "
                      f"({recipe.epochs} epochs; cached at {weights})", file=sys.stderr)
            t0 = time.time()
            net = train_net(images, labels, len(names), recipe, verbose)
            info = {"dataset": dataset, "key": key, "version": VERSION, "recipe": asdict(recipe),
                    "image_size": image_size, "channels": channels, "class_names": list(names),
                    "train_size": len(images), "epochs": recipe.epochs,
                    "train_seconds": round(time.time() - t0, 1)}
        clf = Classifier(net, names, image_size, channels, dataset, key, weights)
        test_images, test_labels = load_dataset(dataset, "test", data_dir, image_size, channels)
        clf.test_accuracy = clf.accuracy(test_images, test_labels)
        clf.test_size = len(test_labels)
        if trained:
            try:
                _save(net, {**info, "test_accuracy": clf.test_accuracy, "test_size": clf.test_size},
                      weights, meta)
            except OSError as e:
                print(f"classifier not cached ({e})", file=sys.stderr)
    if verbose:
        print(f"{dataset} classifier ({'trained' if trained else 'loaded'}, {key}): test accuracy "
              f"{clf.test_accuracy:.2%} on {clf.test_size} test pictures", file=sys.stderr)
    return clf


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vaegan.classifier", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist",
                   help="fashion-mnist (default), emoji, or a labelled dataset")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder")
    p.add_argument("--image-size", type=int, default=None, help="default: the dataset's own")
    p.add_argument("--channels", type=int, choices=(1, 3), default=None, help="default: the dataset's own")
    p.add_argument("--cache-dir", default=None,
                   help="default: $VAEGAN_CACHE/classifiers (~/.cache/vaegan/classifiers)")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (a new cache key)")
    p.add_argument("--retrain", action="store_true", help="train even when the cache holds this classifier")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    recipe = RECIPES.get(args.dataset, Recipe())
    if args.epochs:
        recipe = replace(recipe, epochs=args.epochs)
    t0 = time.time()
    clf = load_classifier(args.dataset, args.data_dir, args.cache_dir, args.threads, True,
                          args.image_size, args.channels, recipe, args.retrain)
    test_images, test_labels = load_dataset(args.dataset, "test", args.data_dir, clf.image_size,
                                            clf.channels)
    per_class = clf.class_accuracy(test_images, test_labels)
    print(f"{args.dataset}: test accuracy {clf.test_accuracy:.4f} on {clf.test_size} test pictures "
          f"({time.time() - t0:.0f} s; {clf.path})")
    for name, acc in per_class.items():
        print(f"  {name}: {acc:.4f} ({int((test_labels == clf.class_names.index(name)).sum())} pictures)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
