"""The evaluation's classifier (vaegan/classifier.py) with a tiny recipe on the shipped
Fashion-MNIST sample (1000 test pictures, also used as the training split here): trained once
and then read from the cache, trained anew when the data or the recipe changes, deterministic,
and its test accuracy printed each time."""
import gzip
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from vaegan import classifier as C
from vaegan.data import FASHION_CLASSES, load_fashion_mnist

SAMPLE = Path(__file__).parent / "data" / "fashion-mnist-sample"
TINY = C.Recipe(epochs=1, batch_size=64, widths=(4, 8, 8), limit=300)


def write_idx(path: Path, array: np.ndarray) -> None:
    """An unsigned-byte IDX file (gzip), as Fashion-MNIST ships."""
    header = (0x0800 + array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def sample_as_both_splits(folder: Path) -> Path:
    """A Fashion-MNIST folder whose train and test splits are both the shipped sample."""
    folder.mkdir()
    for kind in ("images-idx3", "labels-idx1"):
        for split in ("t10k", "train"):
            (folder / f"{split}-{kind}-ubyte.gz").symlink_to(SAMPLE / f"t10k-{kind}-ubyte.gz")
    return folder


@pytest.fixture
def data(tmp_path) -> Path:
    return sample_as_both_splits(tmp_path / "data")


def test_trains_once_then_loads_from_the_cache_and_prints_its_accuracy(data, tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    clf = C.load_classifier("fashion-mnist", data, cache, threads=1, recipe=TINY)
    err = capsys.readouterr().err
    assert "training the fashion-mnist classifier on 300 pictures" in err
    assert f"(trained, {clf.key}): test accuracy {clf.test_accuracy:.2%} on 1000 test pictures" in err
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".safetensors"]
    info = json.loads(clf.path.with_suffix(".json").read_text())
    assert info["key"] == clf.key and info["epochs"] == 1 and info["train_size"] == 300
    assert info["test_accuracy"] == pytest.approx(clf.test_accuracy) and info["version"] == C.VERSION
    assert clf.class_names == FASHION_CLASSES and clf.test_size == 1000

    def no_training(*a, **k):
        raise AssertionError("trained again although the cache holds this classifier")
    monkeypatch.setattr(C, "train_net", no_training)
    again = C.load_classifier("fashion-mnist", data, cache, threads=1, recipe=TINY)
    err = capsys.readouterr().err
    assert f"(loaded, {clf.key}): test accuracy {again.test_accuracy:.2%}" in err
    assert again.test_accuracy == clf.test_accuracy
    x, _ = load_fashion_mnist("test", SAMPLE)
    assert torch.equal(again.logits(x[:50]), clf.logits(x[:50]))
    assert C.load_classifier("fashion-mnist", data, cache, recipe=TINY, verbose=False) and \
        capsys.readouterr().err == ""


def test_changed_data_or_recipe_trains_anew(data, tmp_path, capsys):
    cache = tmp_path / "cache"
    first = C.load_classifier("fashion-mnist", data, cache, threads=1, recipe=TINY)
    other = tmp_path / "other"
    other.mkdir()
    images, labels = load_fashion_mnist("test", SAMPLE)
    labels = labels.clone()
    labels[7] = (labels[7] + 1) % 10  # one label of the 300 used differs
    write_idx(other / "train-images-idx3-ubyte.gz", images[:, 0].numpy())
    write_idx(other / "train-labels-idx1-ubyte.gz", labels.numpy())
    for kind in ("images-idx3", "labels-idx1"):
        (other / f"t10k-{kind}-ubyte.gz").symlink_to(SAMPLE / f"t10k-{kind}-ubyte.gz")
    capsys.readouterr()
    second = C.load_classifier("fashion-mnist", other, cache, threads=1, recipe=TINY)
    assert "training the fashion-mnist classifier" in capsys.readouterr().err
    assert second.key != first.key and len(list(cache.glob("*.safetensors"))) == 2
    # the same data under the same recipe is one key; any change of the recipe is another
    x, y = images[:300], load_fashion_mnist("test", SAMPLE)[1][:300]
    assert C.data_key(x, y, TINY) == first.key
    assert C.data_key(x, y, replace(TINY, epochs=2)) != first.key
    assert C.data_key(x, y, replace(TINY, flip=True)) != first.key
    assert C.data_key(x[:, :, :, :27], y, TINY) != first.key  # the shape counts


def test_training_is_deterministic_and_leaves_the_global_rng_alone(data, tmp_path):
    torch.manual_seed(123)
    a = C.load_classifier("fashion-mnist", data, tmp_path / "a", threads=1, recipe=TINY, verbose=False)
    after = torch.rand(3)
    torch.manual_seed(123)
    b = C.load_classifier("fashion-mnist", data, tmp_path / "b", threads=1, recipe=TINY, verbose=False)
    assert torch.equal(after, torch.rand(3))
    sa, sb = a.net.state_dict(), b.net.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    c = C.load_classifier("fashion-mnist", data, tmp_path / "c", threads=1, recipe=replace(TINY, seed=1),
                          verbose=False)
    assert not torch.equal(c.net.state_dict()["head.3.weight"], sa["head.3.weight"])


def test_predict_probs_and_shape_errors(data, tmp_path):
    clf = C.load_classifier("fashion-mnist", data, tmp_path / "cache", threads=1, recipe=TINY, verbose=False)
    x, _ = load_fashion_mnist("test", SAMPLE)
    labels = clf.predict(x[:37], batch_size=10)
    assert labels.shape == (37,) and labels.dtype == torch.int64
    assert int(labels.min()) >= 0 and int(labels.max()) < 10
    p = clf.probs(x[:37])
    assert p.shape == (37, 10) and torch.allclose(p.sum(1), torch.ones(37))
    assert torch.equal(p.argmax(1), labels)
    assert torch.equal(clf.predict(x[:37].float() / 255), labels)  # uint8 or float in [0, 1]
    assert clf.predict(x[:0]).shape == (0,)
    with pytest.raises(ValueError, match=r"takes pictures of shape \(B, 1, 28, 28\), got \(2, 3, 28, 28\)"):
        clf.predict(torch.zeros(2, 3, 28, 28))


def test_a_few_epochs_learn_the_classes(data, tmp_path):
    recipe = C.Recipe(epochs=10, batch_size=50, lr=5e-3, widths=(8, 16, 16))
    clf = C.load_classifier("fashion-mnist", data, tmp_path / "cache", threads=1, recipe=recipe,
                            verbose=False)
    assert clf.test_accuracy > 0.5  # chance is 0.1 (trained and tested on the same 1000 here)


def test_command_line_prints_the_accuracy(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(C.RECIPES, "fashion-mnist", TINY)
    monkeypatch.setenv("VAEGAN_CACHE", str(tmp_path / "vc"))
    assert C.main(["--dataset", "fashion-mnist", "--data-dir", str(data), "--threads", "1"]) == 0
    out, err = capsys.readouterr()
    assert "fashion-mnist: test accuracy 0." in out and "on 1000 test pictures" in out
    assert "Ankle boot:" in out and "test accuracy" in err
    assert len(list((tmp_path / "vc" / "classifiers").glob("fashion-mnist-*.safetensors"))) == 1


def test_a_dataset_without_labels_is_refused(tmp_path):
    from PIL import Image
    (tmp_path / "pics").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "pics" / "a.png")
    with pytest.raises(ValueError, match="has no labels"):
        C.load_classifier(str(tmp_path / "pics"), cache_dir=tmp_path / "c", image_size=8, channels=1)


def test_a_shape_the_dataset_does_not_have_is_refused(data, tmp_path):
    with pytest.raises(ValueError, match=r"has pictures of shape \(1, 28, 28\), not \(3, 28, 28\)"):
        C.load_classifier("fashion-mnist", data, tmp_path / "c", channels=3, recipe=TINY)
