"""The app launched on 127.0.0.1 and called through gradio_client, as an API user would."""

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from ui import server
from ui.components import THEME
from ui.page import create_demo
from vaegan import refine
from vaegan.data import to_tensor
from vaegan.explorer import N_SLIDERS
from conftest import serving

PUBLIC = {"/sample", "/decode", "/reconstruct", "/interpolate", "/atlas", "/realism", "/compare",
          "/direction"}


@pytest.fixture(scope="module")
def served(explorer_tiny):
    demo = create_demo(explorer_tiny)
    with serving(demo) as url:
        yield demo, url


@pytest.fixture
def client(served, tmp_path):
    return Client(served[1], verbose=False, download_files=str(tmp_path), analytics_enabled=False)


def _open(path) -> Image.Image:
    with Image.open(path) as im:
        im.load()
        return im.copy()


def _check_image(path, size) -> np.ndarray:
    im = _open(path)
    assert im.size == size and im.mode == "L"
    arr = np.asarray(im)
    assert arr.std() > 0, "blank image"
    return arr


@pytest.fixture(scope="module")
def example_png(explorer_tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp("uploads") / "sneaker.png"
    explorer_tiny.example(7).save(path)
    return path


def test_api_lists_exactly_the_public_endpoints(client, explorer_tiny):
    info = client.view_api(return_format="dict", print_info=False)
    assert set(info["named_endpoints"]) == PUBLIC
    assert not info["unnamed_endpoints"]
    decode = info["named_endpoints"]["/decode"]
    names = [p["parameter_name"] for p in decode["parameters"]]
    assert names == (["basis", "origin"] + [f"slider_{i + 1}" for i in range(N_SLIDERS)]
                     + ["directions", "model"])
    # every public endpoint takes the model last, optional, defaulting to the app's default model
    for name in PUBLIC:
        last = info["named_endpoints"][name]["parameters"][-1]
        assert last["parameter_name"] in ("model", "model_b"), name
        assert last["parameter_has_default"], name  # the default model: its name, or None (/realism)
        assert last["parameter_default"] in (explorer_tiny.spec, None), name


def test_sample(client, explorer_tiny):
    a = _check_image(client.predict(3, 1.0, 9, api_name="/sample"), explorer_tiny.sample(3, 1.0, 9).image.size)
    b = np.asarray(_open(client.predict(3, 1.0, 9, api_name="/sample")))
    c = np.asarray(_open(client.predict(4, 1.0, 9, api_name="/sample")))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(a, np.asarray(explorer_tiny.sample(3, 1.0, 9).image))  # lossless PNG


def test_decode(client, explorer_tiny):
    origin = explorer_tiny.seed_latent(5).tolist()
    still = _check_image(client.predict("pca", origin, api_name="/decode"), (336, 336))
    moved = _check_image(client.predict("pca", origin, slider_1=2.5, slider_3=-1.0, api_name="/decode"),
                         (336, 336))
    assert not np.array_equal(still, moved)
    values = [2.5, 0.0, -1.0] + [0.0] * (N_SLIDERS - 3)
    assert np.array_equal(moved, np.asarray(explorer_tiny.decode(values, "pca", origin)))


def test_reconstruct_without_refining(client, explorer_tiny, example_png):
    _, rec, _, metrics, z = client.predict(handle_file(example_png), 0, api_name="/reconstruct")
    expected = explorer_tiny.reconstruct(Image.open(example_png), 0)
    assert metrics == f"**MSE** {expected.mse:.4f} · **SSIM** {expected.ssim:.3f} (the encoder's code)"
    assert np.allclose(z, expected.z.numpy(), atol=1e-6)
    with torch.inference_mode():
        mean = explorer_tiny.model.encode(to_tensor(Image.open(example_png), 28, 1)).mean[0]
    assert np.allclose(z, mean.numpy(), atol=1e-6)  # the posterior mean itself
    assert np.array_equal(_check_image(rec, (336, 336)), np.asarray(expected.reconstruction))


def test_reconstruct(client, explorer_tiny, example_png):
    """By default the code is refined (vaegan.refine.STEPS steps) and the metrics say both."""
    seen, rec, err, metrics, z = client.predict(handle_file(example_png), api_name="/reconstruct")
    expected = explorer_tiny.reconstruct(Image.open(example_png), refine.STEPS)
    assert (f"after {refine.STEPS} refining steps · the encoder's code alone: "
            f"MSE {expected.encoder_mse:.4f} · SSIM {expected.encoder_ssim:.3f}") in metrics
    assert np.array_equal(_check_image(seen, (336, 336)), np.asarray(expected.input))
    _check_image(rec, (336, 336))
    _check_image(err, (336, 336))
    assert f"**MSE** {expected.mse:.4f}" in metrics and "**SSIM**" in metrics
    assert np.allclose(z, expected.z.numpy(), atol=1e-6)
    # the code comes back as the starting point for decode
    assert np.array_equal(np.asarray(_open(client.predict("kl", z, api_name="/decode"))),
                          np.asarray(expected.reconstruction))


def test_interpolate(client, example_png):
    strip, gif = client.predict("Seed", 1, None, "Picture", 0, handle_file(example_png), 6, "slerp",
                                api_name="/interpolate")
    _check_image(strip, _open(strip).size)
    with Image.open(gif) as g:
        assert g.format == "GIF" and g.n_frames == 6 and g.size == (336, 336)
    strip2, gif2 = client.predict("Seed", 1, None, "Seed", 2, None, 3, "lerp", api_name="/interpolate")
    with Image.open(gif2) as g:
        assert g.n_frames == 3


@pytest.mark.parametrize("args, api_name, message", [
    ((None,), "/reconstruct", "Image: no picture given; upload a PNG"),
    ((-1, 1.0, 4), "/sample", "Seed must be a whole number between 0 and 4294967295, got -1"),
    ((0, 1.0, 100), "/sample", "Count must be a whole number between 1 and 64, got 100"),
    (("kl", [0.0] * 3), "/decode", "Origin must have 8 numbers, got 3"),
    (("Seed", 1, None, "Picture", 0, None, 4, "slerp"), "/interpolate", "Endpoint B: no picture given"),
    ((0, 1.0, 4, "org/unlisted"), "/sample", r"Model must be one of \[.*\], got 'org/unlisted'"),
])
def test_bad_input_gets_a_sentence(client, args, api_name, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name=api_name)


def test_bad_uploads_get_a_sentence_and_the_app_keeps_working(client, explorer_tiny, tmp_path):
    not_image = tmp_path / "notes.png"
    not_image.write_text("not a picture at all")
    with pytest.raises(AppError, match="That file could not be read as a picture; upload a PNG"):
        client.predict(handle_file(not_image), api_name="/reconstruct")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(AppError, match="could not be read as a picture"):
        client.predict(handle_file(empty), api_name="/reconstruct")
    _check_image(client.predict(0, 1.0, 4, api_name="/sample"), explorer_tiny.sample(0, 1.0, 4).image.size)


def test_uploads_over_the_size_limit_are_refused(client, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (11 * 1024 * 1024))
    with pytest.raises(Exception, match="(?i)size|large|413"):
        client.predict(handle_file(big), api_name="/reconstruct")


def test_safe_defaults(served):
    demo, _ = served
    assert demo.max_file_size == 10 * 1024 * 1024
    assert demo.delete_cache == server.DELETE_CACHE
    assert demo.share is False and demo.analytics_enabled is False
    assert not demo.allowed_paths
    assert demo.ssr_mode is False
    assert demo.theme is THEME
