"""Explorer: what every tab does, without the UI (tiny random model, real files)."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from safetensors import safe_open

from vaegan import latent
from vaegan.assets import load_assets
from vaegan.data import FASHION_CLASSES, to_image
from vaegan.explorer import (KEEP_GIFS, N_SLIDERS, Explorer, load_explorer, ssim)
from vaegan.hub import EXPLORER_FILE, LoadedModel, ModelLoadError, load_model
from vaegan.model import PRESETS


def _pixels(im: Image.Image) -> np.ndarray:
    return np.asarray(im)


@torch.inference_mode()
def _decode(model, z: torch.Tensor) -> torch.Tensor:
    return model.decode(z)


# ---- assets -------------------------------------------------------------------------------

def test_build_writes_assets_with_labels(tiny_folder):
    path = tiny_folder / EXPLORER_FILE
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert json.loads(meta["class_names"]) == list(FASHION_CLASSES)
    assert meta["num_images"] == "400" and meta["source"] == "Fashion-MNIST test"
    assert {"mean_kl", "pca_directions", "pca_variance_ratio", "class_vectors", "z_mean", "z_std",
            "example_images", "example_labels"} <= keys
    a = load_assets(path, latent_dim=8, channels=1, image_size=28)
    assert a.example_images.dtype == torch.uint8 and a.example_images.shape == (10, 1, 28, 28)
    assert sorted(a.example_labels.tolist()) == list(range(10))  # one per class
    assert a.pca_variance_ratio.sum() == pytest.approx(1.0, abs=1e-4)
    assert (a.mean_kl >= 0).all() and a.class_vectors.shape == (10, 8)


def test_assets_that_do_not_fit_the_model_fail_loudly(tiny_folder, tmp_path):
    with pytest.raises(ValueError, match=r"key 'mean_kl' has shape \(8,\), expected \(16,\)"):
        load_assets(tiny_folder / EXPLORER_FILE, latent_dim=16, channels=1, image_size=28)
    bad = tmp_path / EXPLORER_FILE
    bad.write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_assets(bad, 8, 1, 28)


def test_without_assets_the_explorer_falls_back(tiny_folder):
    loaded = load_model(str(tiny_folder))
    ex = Explorer(LoadedModel(loaded.model, "tiny", tiny_folder, None))
    try:
        assert list(ex.bases) == ["kl"]
        assert torch.equal(ex.basis("kl").matrix, torch.eye(8))
        assert ex.basis("kl").labels[0] == "z[0]"
        assert "not precomputed" in ex.status and "not precomputed" in ex.basis("kl").info
        assert ex.examples == []
        with pytest.raises(ValueError, match="no example pictures"):
            ex.example(0)
        with pytest.raises(ValueError, match=r"basis must be one of \['kl'\]"):
            ex.decode([0.0], "pca")
    finally:
        ex.close()


def test_load_explorer_random_fallback_only_when_allowed(tmp_path):
    missing = tmp_path / "weights" / "fashion-mnist"
    ex = load_explorer(str(missing), allow_random=True)
    try:
        assert ex.config == PRESETS["fashion-mnist"]
        assert "randomly initialised" in ex.status and str(missing) in ex.status
    finally:
        ex.close()
    empty = tmp_path / "exists-but-empty"
    empty.mkdir()  # a folder that is there but broken is an error, not a random model
    with pytest.raises(ModelLoadError, match="config.json: missing"):
        load_explorer(str(empty), allow_random=True)


# ---- Sample -------------------------------------------------------------------------------

def test_sampling_is_deterministic_by_seed(explorer):
    a, b = explorer.sample(7, 0.8, 9), explorer.sample(7, 0.8, 9)
    assert np.array_equal(_pixels(a.image), _pixels(b.image)) and torch.equal(a.z, b.z)
    c = explorer.sample(8, 0.8, 9)
    assert not torch.equal(a.z, c.z)
    expected = explorer.model.prior(9, torch.Generator().manual_seed(7), 0.8)
    assert torch.equal(a.z, expected)
    assert a.z.shape == (9, 8) and a.image.mode == "L"
    # 3x3 grid of 28px cells with 2px padding, upscaled by an integer factor
    side = 3 * 30 + 2
    assert a.image.width == a.image.height and a.image.width % side == 0
    assert torch.equal(explorer.sample(7, 0.0, 4).z, torch.zeros(4, 8))  # temperature scales std


def test_grid_cell_maps_pixels_to_samples(explorer):
    g = explorer.sample(1, 1.0, 10)  # 4 columns, 3 rows, last row has 2
    s = g.image.width // (4 * 30 + 2)
    centre = lambda col, row: ((2 + col * 30 + 14) * s, (2 + row * 30 + 14) * s)  # noqa: E731
    assert explorer.grid_cell(*centre(0, 0), 10) == 0
    assert explorer.grid_cell(*centre(3, 0), 10) == 3
    assert explorer.grid_cell(*centre(1, 2), 10) == 9
    assert explorer.grid_cell(*centre(2, 2), 10) is None  # empty cell
    # a click before the picture loaded: the browser sends no position (or NaN)
    assert explorer.grid_cell(None, None, 10) is None
    assert explorer.grid_cell(float("nan"), 5, 10) is None
    # the sample in a cell is the one the grid shows there
    cell = g.image.crop((2 * s, 2 * s, 30 * s, 30 * s)).resize((28, 28), Image.Resampling.NEAREST)
    x0 = _decode(explorer.model, g.z[:1])
    assert np.array_equal(_pixels(cell), _pixels(to_image(x0)))


# ---- Explore ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["kl", "pca", "class"])
def test_slider_values_move_z_along_the_basis(explorer, name):
    basis = explorer.basis(name)
    k = basis.matrix.shape[1]
    origin = explorer.seed_latent(3)
    values = [0.0] * N_SLIDERS
    values[0], values[1] = 1.5, -2.0
    z = explorer.latent(values, name, origin.tolist())
    assert torch.allclose(z, origin + 1.5 * basis.matrix[:, 0] - 2.0 * basis.matrix[:, 1])
    assert torch.allclose(explorer.latent([0.0] * N_SLIDERS, name, origin.tolist()), origin)
    assert len(basis.labels) == k
    im = explorer.decode(values, name, origin.tolist())
    assert np.array_equal(_pixels(im), _pixels(to_image(_decode(explorer.model, z[None]), 12)))


def test_bases_follow_the_assets(explorer):
    a = explorer.assets
    kl = explorer.basis("kl").matrix
    order = latent.kl_ranking(a.mean_kl)
    for j in range(kl.shape[1]):  # column j moves only dimension order[j], by its data std
        d = int(order[j])
        assert kl[d, j] == pytest.approx(float(a.z_std[d]))
        assert int((kl[:, j] != 0).sum()) == 1
    pca = explorer.basis("pca")
    assert torch.allclose(pca.matrix[:, 0] / pca.matrix[:, 0].norm(), a.pca_directions[:, 0], atol=1e-5)
    assert pca.labels[0].startswith("PC1 · ") and pca.labels[0].endswith("% of variance")
    cls = explorer.basis("class")
    assert cls.matrix.shape == (8, 10)  # ten classes, even with an 8-d latent
    assert cls.labels[7] == "more Sneaker"
    assert torch.equal(cls.matrix[:, 7], a.class_vectors[7])


def test_decode_shows_large_pixel_exact_images(explorer):
    im = explorer.decode([0.5], "kl", explorer.seed_latent(1).tolist())
    assert im.size == (336, 336) and im.mode == "L"
    arr = _pixels(im)
    blocks = arr.reshape(28, 12, 28, 12)
    assert (blocks == blocks[:, :1, :, :1]).all()  # nearest neighbour: 12x12 constant blocks
    assert arr.std() > 0


# ---- Reconstruct ----------------------------------------------------------------------------

def test_reconstruct_a_shipped_example(explorer):
    example = explorer.example(0)
    r = explorer.reconstruct(example)
    assert r.input.size == r.reconstruction.size == r.error.size == (336, 336)
    x = np.asarray(example, dtype=np.float64) / 255
    assert np.array_equal(_pixels(r.input)[::12, ::12], np.asarray(example))  # no change needed
    rec = np.asarray(r.reconstruction, dtype=np.float64)[::12, ::12] / 255
    assert r.mse == pytest.approx(((x - rec) ** 2).mean(), abs=2e-3)
    assert np.abs(np.asarray(r.error, dtype=np.float64)[::12, ::12] / 255 - np.abs(x - rec)).max() <= 2 / 255
    assert -1 <= r.ssim <= 1 and r.z.shape == (8,)
    assert torch.allclose(r.z, explorer.encode(example))


def test_reconstruct_inverts_dark_on_light_colour_uploads(explorer, tmp_path):
    example = explorer.example(1)
    path = tmp_path / "garment.jpg"
    ImageOps.invert(example).convert("RGB").resize((112, 112), Image.Resampling.NEAREST).save(path, quality=95)
    r = explorer.reconstruct(str(path))
    seen = _pixels(r.input)[::12, ::12].astype(int)
    assert np.abs(seen - np.asarray(example, dtype=int)).mean() < 12  # back to light on dark


def test_ssim_matches_scikit_image():
    skimage = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 28, 28, generator=g)
    b = (a + 0.2 * torch.randn(1, 28, 28, generator=g)).clamp(0, 1)
    expected = skimage.structural_similarity(a[0].numpy(), b[0].numpy(), data_range=1.0)
    assert ssim(a, b) == pytest.approx(expected, abs=1e-5)
    assert ssim(a, a) == pytest.approx(1.0)


# ---- Interpolate ----------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolation_endpoints_frames_and_gif(explorer, method):
    picture = explorer.example(2)
    r = explorer.interpolate(5, picture, 7, method)
    za, zb = explorer.seed_latent(5), explorer.encode(picture)
    assert r.z.shape == (7, 8) and len(r.frames) == 7
    assert torch.allclose(r.z[0], za) and torch.allclose(r.z[-1], zb, atol=1e-6)
    if method == "slerp":
        norms = r.z.norm(dim=1)
        assert torch.allclose(norms, torch.linspace(float(za.norm()), float(zb.norm()), 7), rtol=1e-4)
    else:
        assert torch.allclose(r.z[3], (za + zb) / 2, atol=1e-6)
    with Image.open(r.gif) as gif:
        assert gif.format == "GIF" and gif.n_frames == 7 and gif.info["loop"] == 0
        assert gif.size == r.frames[0].size == (336, 336)
    assert r.strip.width > r.strip.height


def test_gifs_live_in_a_temp_dir_that_is_cleaned(tiny_folder):
    ex = Explorer(load_model(str(tiny_folder)))
    gifs = [ex.interpolate(1, 2, 2, "lerp").gif for _ in range(KEEP_GIFS + 2)]
    folder = gifs[0].parent
    assert not gifs[0].exists() and gifs[-1].exists()  # old ones pruned
    assert len(list(folder.glob("*.gif"))) == KEEP_GIFS
    ex.close()
    assert not folder.exists()


# ---- validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda e: e.sample(-1), r"seed must be a whole number between 0 and 4294967295, got -1"),
    (lambda e: e.sample(1.5), r"seed must be a whole number"),
    (lambda e: e.sample("abc"), r"seed must be a whole number .* got 'abc'"),
    (lambda e: e.sample(None), r"seed must be a whole number .* got None"),
    (lambda e: e.sample(0, float("nan")), r"temperature must be a number between 0 and 2, got nan"),
    (lambda e: e.sample(0, float("inf")), r"temperature must be a number between 0 and 2"),
    (lambda e: e.sample(0, 1.0, 0), r"count must be a whole number between 1 and 64, got 0"),
    (lambda e: e.sample(0, 1.0, 65), r"count must be a whole number between 1 and 64"),
    (lambda e: e.decode([0.0], "nope"), r"basis must be one of \['class', 'kl', 'pca'\], got 'nope'"),
    (lambda e: e.decode([0.0, float("nan")], "kl"), r"values\[1\] must be a number between -3 and 3"),
    (lambda e: e.decode([4.0], "kl"), r"values\[0\] must be a number between -3 and 3, got 4.0"),
    (lambda e: e.decode([0.0] * 9 + [1.0], "kl"), r"basis 'kl' has 8 directions; values\[8:\] must be 0"),
    (lambda e: e.decode([0.0], "kl", [0.0] * 3), r"origin must have 8 numbers, got 3"),
    (lambda e: e.decode([0.0], "kl", [float("inf")] * 8), r"origin values must be finite"),
    (lambda e: e.decode([0.0], "kl", "zeros"), r"origin must be a list of 8 numbers"),
    (lambda e: e.interpolate(1, 2, 1), r"steps must be a whole number between 2 and 64, got 1"),
    (lambda e: e.interpolate(1, 2, 8, "cubic"), r"method must be 'lerp' or 'slerp', got 'cubic'"),
    (lambda e: e.interpolate(-3, 2), r"endpoint A: seed must be a whole number"),
    (lambda e: e.interpolate(1, None), r"endpoint B: no picture given"),
    (lambda e: e.reconstruct(None), r"image: no picture given; upload a PNG"),
    (lambda e: e.reconstruct(Image.new("L", (0, 0))), r"image: the picture is empty"),
    (lambda e: e.reconstruct(42), r"image: expected a picture, got int"),
    (lambda e: e.example(10), r"index must be a whole number between 0 and 9"),
])
def test_bad_arguments_get_a_clear_sentence(explorer, call, message):
    with pytest.raises(ValueError, match=message):
        call(explorer)


def test_unreadable_files_get_a_clear_sentence(explorer, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture")
    with pytest.raises(ValueError, match=r"image: the file could not be read as a picture"):
        explorer.reconstruct(str(text))
    truncated = tmp_path / "truncated.png"
    explorer.example(0).resize((200, 200)).save(tmp_path / "full.png")
    truncated.write_bytes((tmp_path / "full.png").read_bytes()[:300])
    with pytest.raises(ValueError, match=r"could not be read as a picture"):
        explorer.reconstruct(Image.open(truncated))


@pytest.mark.parametrize("n,c,ncols", [(16, 1, 4), (7, 1, 3), (5, 3, 2), (1, 1, 1)])
def test_tile_is_torchvisions_make_grid(n, c, ncols):
    from torchvision.utils import make_grid

    from vaegan.explorer import tile
    x = torch.rand(n, c, 6, 5, generator=torch.Generator().manual_seed(n))
    want = make_grid(x, nrow=ncols, padding=2, pad_value=0.3)[:c]
    assert torch.equal(tile(x, ncols, 2, 0.3), want)


def test_the_app_does_not_import_torchvision():
    """torchvision's import pulls in torch._dynamo: seconds of cold start (issue 6)."""
    import subprocess
    import sys
    code = "import sys, app; print('torchvision' in sys.modules, 'torch._dynamo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[1], env={**os.environ, "VAEGAN_MODELS": ""})
    assert out.stdout.split() == ["False", "False"], out.stderr[-2000:]


# ---- the model's own prior ------------------------------------------------------------------

def test_a_fitted_prior_drives_sampling_and_is_named_in_the_status(tiny_folder, tmp_path):
    import shutil

    from vaegan.prior import fit_mixture, with_prior
    plain = load_explorer(str(tiny_folder))
    assert "random codes from N(0, I)" in plain.status
    folder = tmp_path / "fitted"
    shutil.copytree(tiny_folder, folder)
    (folder / "config.json").unlink()
    codes = np.random.default_rng(0).normal(size=(400, 8)) * 0.2 + 3.0  # far from N(0, I)
    with_prior(load_model(str(tiny_folder)).model, fit_mixture(codes, 3)).save_pretrained(folder)
    ex = load_explorer(str(folder))
    assert "random codes from a 3-part Gaussian mixture fitted to its training codes" in ex.status
    grid = ex.sample(seed=7, temperature=1.0, count=9)
    assert (grid.z.mean(0) - 3.0).abs().max() < 0.5  # drawn from the mixture, not N(0, I)
    assert torch.equal(ex.seed_latent(7), grid.z[0])  # a seed's code is its grid's first cell
    assert not torch.equal(plain.sample(seed=7, count=9).z, grid.z)
