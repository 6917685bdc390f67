"""The latent map, the atlas and the realism meter: stored map data against a re-encoding,
clicks that decode what they should, percentiles that mean what they say, and the public
/atlas and /realism endpoints."""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image
from scipy import stats
from sklearn.manifold import trustworthiness

from conftest import serving
from ui import plots
from ui.page import create_demo
from vaegan import latent
from vaegan.assets import load_assets, save_assets
from vaegan.data import load_fashion_mnist
from vaegan.explorer import Explorer, load_explorer
from vaegan.hub import EXPLORER_FILE, LoadedModel, load_model
from vaegan.realism import percentile

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = Path(__file__).parent / "data" / "fashion-mnist-sample"


@pytest.fixture(scope="module")
def shipped() -> Explorer:
    ex = load_explorer(str(ROOT / "weights" / "fashion-mnist"))
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def test_pictures():
    return load_fashion_mnist("test", SAMPLE)  # the first 1,000 test pictures


# ---- what the assets store ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["fashion-mnist", "fashion-mnist-vae"])
def test_the_shipped_maps_codes_are_the_test_pictures_codes_and_the_embedding_keeps_neighbours(
        name, test_pictures):
    ex = load_explorer(str(ROOT / "weights" / name))
    a = ex.assets
    assert len(a.map_codes) >= 5000 and len(a.map_embedding) == len(a.map_codes)
    images, labels = test_pictures
    with torch.inference_mode():
        codes = ex.model.encode(images.float() / 255).mean
    assert torch.allclose(a.map_codes[:len(images)], codes, atol=1e-4)
    assert torch.equal(a.map_labels[:len(images)], labels)
    # the stored 2-D places belong to these codes: t-SNE keeps their neighbourhoods
    assert trustworthiness(a.map_codes[:2000].numpy(), a.map_embedding[:2000].numpy(), n_neighbors=10) > 0.9
    shuffled = a.map_embedding[torch.randperm(2000, generator=torch.Generator().manual_seed(0))]
    assert trustworthiness(a.map_codes[:2000].numpy(), shuffled.numpy(), n_neighbors=10) < 0.6
    ex.close()


def test_an_older_assets_file_loads_and_the_map_says_how_to_build_it(tiny_folder, tmp_path):
    loaded = load_model(str(tiny_folder))
    a = load_assets(tiny_folder / EXPLORER_FILE, 8, 1, 28)
    assert a.has_map and len(a.map_codes) == 300
    old = tmp_path / EXPLORER_FILE
    save_assets(type(a)(**{k: getattr(a, k) for k in ("mean_kl", "z_mean", "z_std", "pca_directions",
                                                      "pca_variance_ratio", "pca_std", "class_vectors",
                                                      "example_images", "example_labels",
                                                      "class_names", "num_images", "source")}), old)
    ex = Explorer(LoadedModel(loaded.model, "tiny", tmp_path, old))
    assert not ex.map.available
    with pytest.raises(ValueError, match=r"no latent map: build its explorer assets with "
                                         r"`python -m vaegan.explorer build WEIGHTS_DIR`"):
        ex.map_view("plane")
    r = ex.realism(None)  # the meter still works, without percentiles
    assert r.real_percentile is None and r.density_percentile is None and r.real_probability is not None
    ex.close()


# ---- clicks decode what they should ----------------------------------------------------------------
def test_a_place_on_a_plane_is_exactly_origin_plus_a_u_plus_b_v(explorer_tiny):
    origin = explorer_tiny.seed_latent(3)
    view = explorer_tiny.map_view("plane", origin.tolist(), "class", 2, 5)
    u, v = explorer_tiny.basis("class").matrix[:, 1], explorer_tiny.basis("class").matrix[:, 4]
    z = explorer_tiny.map_code(view, 0.75, -1.5)
    assert torch.allclose(z, origin + 0.75 * u - 1.5 * v, atol=1e-6)
    # and the map's places are the test codes' coordinates in that plane
    back = latent.compose(origin, view.directions, view.xy)
    resid = explorer_tiny.assets.map_codes - back  # what the plane cannot show is orthogonal to it
    assert torch.allclose(view.directions.T @ resid.T, torch.zeros(2, len(back)), atol=1e-3)


def test_a_place_on_the_tsne_map_is_a_blend_of_its_nearest_pictures(explorer_tiny):
    view = explorer_tiny.map_view("tsne")
    k = 17
    z = explorer_tiny.map_code(view, *view.xy[k].tolist())  # right on picture k
    assert torch.allclose(z, explorer_tiny.assets.map_codes[k], atol=1e-3)


def test_a_click_on_the_pictured_map_decodes_the_place_under_the_pointer(explorer_tiny):
    page = create_demo(explorer_tiny).vaegan_page
    tab = page.tabs["map"]
    origin = explorer_tiny.seed_latent(0).tolist()
    settings = ("plane", "pca", 1, 2, False, origin, None)
    drawn = tab.draw(*settings)
    frame = plots.Frame(**drawn[tab.frame])
    picture = drawn[tab.picture]
    assert picture.size == plots.SIZE
    px, py = frame.to_pixel(0.5, -0.25)

    class Click:
        index = [px, py]
    out = tab.pick(drawn[tab.frame], *settings, Click())
    u, v = explorer_tiny.basis("pca").matrix[:, :2].T
    want = torch.tensor(origin) + 0.5 * u - 0.25 * v
    assert torch.allclose(torch.tensor(out[tab.code]), want, atol=1e-4)
    assert np.array_equal(np.asarray(out[tab.picked]), np.asarray(explorer_tiny.decode([], "kl", want.tolist())))
    assert "Real?" in out[tab.meter] and "percentile" in out[tab.meter]
    assert not np.array_equal(np.asarray(out[tab.picture]), np.asarray(picture))  # the mark
    Click.index = [2, 2]  # the picture's corner, outside the plot box: nothing happens
    assert tab.pick(drawn[tab.frame], *settings, Click()) == {tab.picked: gr.skip()}  # nothing
    opened = tab.open_in_explore(out[tab.code], None)
    assert opened[page.tabs["explore"].origin] == out[tab.code]


# ---- the atlas -------------------------------------------------------------------------------------
def test_the_atlas_is_the_slice_decoded_in_reading_order(explorer_tiny):
    origin = explorer_tiny.seed_latent(2)
    n, extent = 5, 2.0
    grid = np.asarray(explorer_tiny.atlas(origin.tolist(), "kl", 1, 3, extent, n))
    s, cell = explorer_tiny._grid_scale(n), 28 + 2
    u, v = explorer_tiny.basis("kl").matrix[:, 0], explorer_tiny.basis("kl").matrix[:, 2]
    for row, col in ((0, 0), (0, 4), (4, 0), (2, 3)):
        a, b = -extent + col * extent * 2 / (n - 1), extent - row * extent * 2 / (n - 1)
        want = explorer_tiny.decode([], "kl", (origin + a * u + b * v).tolist(), scale=s)
        y0, x0 = (2 + row * cell) * s, (2 + col * cell) * s
        got = grid[y0:y0 + 28 * s, x0:x0 + 28 * s]
        assert np.abs(got.astype(int) - np.asarray(want).astype(int)).max() <= 1  # batched decode
    with pytest.raises(ValueError, match="n must be a whole number between 2 and 24, got 25"):
        explorer_tiny.atlas(None, "kl", 1, 2, 1.0, 25)
    with pytest.raises(ValueError, match="direction_1 and direction_2 must differ, both are 2"):
        explorer_tiny.atlas(None, "kl", 2, 2)


# ---- the realism meter ---------------------------------------------------------------------------
def test_percentiles_of_the_test_pictures_themselves_are_uniform(shipped, test_pictures):
    images, _ = test_pictures
    with torch.inference_mode():
        z = shipped.model.encode(images.float() / 255).mean
        x = shipped.model.decode(z)
    meters = shipped.map.realism(z, x)
    real = np.array([r.real_percentile for r in meters]) / 100
    typical = np.array([r.density_percentile for r in meters]) / 100
    for pct in (real, typical):
        assert stats.kstest(pct, "uniform").statistic < 0.06
    # and a percentile is the share of the reference below the value
    ref = torch.arange(10.0)
    assert percentile(ref, torch.tensor([-1.0, 4.0, 4.5, 20.0])).tolist() == [0.0, 45.0, 50.0, 100.0]


def test_a_model_without_a_discriminator_shows_the_density_and_says_why():
    vae = load_explorer(str(ROOT / "weights" / "fashion-mnist-vae"))
    r = vae.realism(vae.seed_latent(0).tolist())
    assert r.real_probability is None and r.real_percentile is None
    assert r.density_percentile is not None
    assert "no discriminator in this model" in r.text() and "log p(z)" in r.text()
    assert vae.map.realism_field(torch.zeros(32), torch.eye(32)[:, :2], 1.0, 4) is None
    vae.close()


def test_the_realism_field_is_the_discriminators_probability_on_the_slice(explorer_tiny):
    origin = explorer_tiny.seed_latent(1)
    directions, _ = explorer_tiny.plane("pca", 1, 2)
    field = explorer_tiny.map.realism_field(origin, directions, 2.0, 6)
    assert field.shape == (6, 6) and ((0 <= field) & (field <= 1)).all()
    top_right = origin + 2.0 * directions[:, 0] + 2.0 * directions[:, 1]
    assert field[0, -1] == pytest.approx(explorer_tiny.realism(top_right.tolist()).real_probability, abs=1e-4)


# ---- the public API --------------------------------------------------------------------------------
def test_atlas_and_realism_through_gradio_client(explorer_tiny, tmp_path):
    with serving(create_demo(explorer_tiny)) as url:
        c = Client(url, verbose=False, download_files=str(tmp_path), analytics_enabled=False)
        origin = explorer_tiny.seed_latent(4).tolist()
        path = c.predict("pca", 1, 2, origin, 2.0, 6, api_name="/atlas")
        with Image.open(path) as im:
            assert np.array_equal(np.asarray(im), np.asarray(explorer_tiny.atlas(origin, "pca", 1, 2, 2.0, 6)))
        got = c.predict(origin, api_name="/realism")
        want = explorer_tiny.realism(origin)
        assert got["real_probability"] == pytest.approx(want.real_probability)
        assert got["density_percentile"] == pytest.approx(want.density_percentile)
        with pytest.raises(AppError, match="N must be a whole number between 2 and 24, got 30"):
            c.predict("pca", 1, 2, origin, 2.0, 30, api_name="/atlas")
        with pytest.raises(AppError, match="Z must have 8 numbers, got 3"):
            c.predict([0.1, 0.2, 0.3], api_name="/realism")
        with pytest.raises(AppError, match="Model must be one of"):
            c.predict(origin, "org/nope", api_name="/realism")


def test_each_interpolation_frame_gets_its_realism(explorer_tiny):
    tab = create_demo(explorer_tiny).vaegan_page.tabs["interpolate"]
    out = tab.interpolate("Seed", 1, None, "Seed", 2, None, 6, "lerp", None)
    assert len(out[tab.path]) == 6
    plot = tab.path_realism(out[tab.path], None)[tab.meter]
    assert plot.size[0] > 300 and np.asarray(plot).std() > 0
    meters = explorer_tiny.map.realism(torch.tensor(out[tab.path]))
    assert [m.log_density for m in meters] == pytest.approx(
        [explorer_tiny.realism(z).log_density for z in out[tab.path]])
    assert tab.path_realism(None, None) == {tab.meter: gr.skip()}  # nothing


def test_explore_shows_the_realism_and_the_place_of_the_code_the_sliders_point_at(explorer_tiny):
    tab = create_demo(explorer_tiny).vaegan_page.tabs["explore"]
    origin = explorer_tiny.seed_latent(5).tolist()
    still = tab.where_now("pca", origin, [], *[0.0] * 12, None)
    moved = tab.where_now("pca", origin, [], 2.0, -1.0, *[0.0] * 10, None)
    z = explorer_tiny.latent([2.0, -1.0], "pca", origin)
    assert moved[tab.meter] == explorer_tiny.realism(z.tolist()).text()
    assert moved[tab.meter] != still[tab.meter]
    assert not np.array_equal(np.asarray(moved[tab.minimap]), np.asarray(still[tab.minimap]))
    with pytest.raises(gr.Error, match=r"Values\[0\] must be a number between -3 and 3"):
        tab.where_now("pca", origin, [], 9.0, *[0.0] * 11, None)
