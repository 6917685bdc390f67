"""The Compare tab: the same picture, seed and pair of pictures through two listed models,
each figure equal to what that model's Explorer gives alone; /compare through gradio_client."""
import os

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from conftest import serving
from ui.models import Models
from ui.page import create_demo
from vaegan import refine
from vaegan.explorer import load_explorer


@pytest.fixture(scope="module")
def two(explorer_tiny, tiny_repo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("other") / "tiny-vae"
    folder.mkdir()
    for name, data in tiny_repo.items():
        (folder / name).write_bytes(data)
    spec = os.path.relpath(folder)
    other = load_explorer(spec)
    models = Models(explorer_tiny, [spec])
    yield models, other
    models.close()
    other.close()


def test_both_models_reconstruct_the_same_picture_as_they_would_alone(two, explorer_tiny):
    models, other = two
    tab = create_demo(models).vaegan_page.tabs["compare"]
    a, b = tab._defaults()
    assert (a, b) == (explorer_tiny.spec, other.spec)  # "-vae" names the plain VAE: B by default
    picture = explorer_tiny.example(4)
    out = tab.compare(picture, 0, a, b)
    for i, ex in enumerate((explorer_tiny, other)):
        r = ex.reconstruct(picture, refine.STEPS)  # the code refined as Reconstruct's default
        assert np.array_equal(np.asarray(out[tab.pictures[i]]), np.asarray(r.reconstruction))
        assert f"{r.mse:.4f}" in out[tab.metrics[i]] and f"{r.ssim:.3f}" in out[tab.metrics[i]]
        assert f"the encoder's code alone: MSE {r.encoder_mse:.4f}" in out[tab.metrics[i]]
        before, after = out[tab.sliders[i]]
        assert np.array_equal(np.asarray(before), np.asarray(r.input))
    assert not np.array_equal(np.asarray(out[tab.pictures[0]]), np.asarray(out[tab.pictures[1]]))
    seeds = tab.compare(None, 9, a, b)  # no picture: the seed's first sample by each
    for i, ex in enumerate((explorer_tiny, other)):
        want = ex.decode([], "kl", ex.seed_latent(9).tolist())
        assert np.array_equal(np.asarray(seeds[tab.pictures[i]]), np.asarray(want))
    paths = tab.compare_paths(0, 7, a, b)
    assert len(paths) == 2 and all(im.size == paths[tab.strips[0]].size for im in paths.values())


def test_compare_through_gradio_client(two, explorer_tiny, tmp_path):
    models, other = two
    with serving(create_demo(models)) as url:
        c = Client(url, verbose=False, download_files=str(tmp_path), analytics_enabled=False)
        png = tmp_path / "in.png"
        explorer_tiny.example(2).save(png)
        out = c.predict(handle_file(str(png)), 0, explorer_tiny.spec, other.spec, api_name="/compare")
        with Image.open(out[1]) as im:
            assert np.array_equal(np.asarray(im), np.asarray(other.reconstruct(str(png), refine.STEPS).reconstruction))
        assert "MSE" in out[3] and other.spec in out[3]
        with pytest.raises(AppError, match=r"Model_b must be one of \[.*\], got 'org/nope'"):
            c.predict(None, 0, explorer_tiny.spec, "org/nope", api_name="/compare")
