"""Shared fixtures: a tiny random model folder with explorer assets built from the shipped
Fashion-MNIST sample (tests/data/fashion-mnist-sample: 1000 test images), a second one as
the files of a Hub repo, and huggingface_hub pointed at a loopback fake of the Hub."""
import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path

# Gradio's upload/output cache for the whole test session, removed at the end (set before
# gradio is imported anywhere, since it reads the variable at import time).
GRADIO_TMP = Path(tempfile.mkdtemp(prefix="vaegan-tests-gradio-"))
os.environ["GRADIO_TEMP_DIR"] = str(GRADIO_TMP)
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402
import torch  # noqa: E402

from vaegan.hub import load_model  # noqa: E402
from vaegan.model import PRESETS, VAEGAN  # noqa: E402

SAMPLE_DIR = Path(__file__).parent / "data" / "fashion-mnist-sample"


def make_tiny_folder(folder: Path, seed: int = 0, preset: str = "tiny") -> Path:
    """config.json + model.safetensors + explorer.safetensors of PRESETS["tiny"] (28x28 grey,
    latent 8; assets from the Fashion-MNIST sample) or PRESETS["tiny-rgb"] (32x32 RGB, latent
    8; assets from the emoji, skin tone included), random, with decoder weights scaled so that
    different codes give visibly different images."""
    from vaegan.explorer import main
    torch.manual_seed(seed)
    model = VAEGAN(PRESETS[preset]).eval()
    with torch.no_grad():  # at init the decoder's output hardly depends on z; make it visible
        for p in model.decoder.parameters():
            if p.dim() > 1:
                p.mul_(3.0)
    model.save_pretrained(folder)
    data = (["--dataset", "emoji", "--split", "train"] if model.config.channels == 3 else
            ["--data-dir", str(SAMPLE_DIR), "--split", "test", "--limit", "400"])
    assert main(["build", str(folder), *data, "--map-points", "300"]) == 0
    return folder


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    return make_tiny_folder(tmp_path_factory.mktemp("weights") / "tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_rgb_folder(tmp_path_factory) -> Path:
    """A tiny random 32x32 RGB model with emoji explorer assets (needs the emoji fonts)."""
    return make_tiny_folder(tmp_path_factory.mktemp("weights") / "tiny-rgb", seed=0, preset="tiny-rgb")


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory) -> dict[str, bytes]:
    """The files of a Hub repo holding another tiny model (seed 1), explorer assets included."""
    folder = make_tiny_folder(tmp_path_factory.mktemp("repo") / "tiny", seed=1)
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def free_port() -> int:
    """A loopback port nothing listens on (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(demo, trailing_slash: bool = True):
    """Launch a create_demo(...) app on a free loopback port; yield its URL; close it."""
    from ui.server import launch
    for attempt in range(3):
        port = free_port()
        try:
            launch(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
            break
        except ValueError as e:  # Gradio's own check (HEAD / within 3 s) timed out on a
            demo.close()         # starved CPU: "When localhost is not accessible, ..."
            if "localhost is not accessible" not in str(e) or attempt == 2:
                raise
    try:
        yield f"http://127.0.0.1:{port}" + ("/" if trailing_slash else "")
    finally:
        demo.close()


@pytest.fixture(scope="module")
def explorer_tiny(tiny_folder):
    """The tiny model as an Explorer, shared by one test module."""
    from vaegan.explorer import Explorer
    ex = Explorer(load_model(str(tiny_folder)))
    yield ex
    ex.close()


@contextmanager
def hub_at(url: str, cache: Path):
    """huggingface_hub pointed at `url` (read at import, so patched in constants), its cache
    in `cache`, online, and no token; undone when the block ends."""
    from huggingface_hub import constants
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(constants, "ENDPOINT", url)
        mp.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                   url + "/{repo_id}/resolve/{revision}/{filename}")
        mp.setattr(constants, "HF_HUB_CACHE", str(cache))
        mp.setattr(constants, "HF_HUB_OFFLINE", False)
        mp.setattr(constants, "HF_TOKEN_PATH", str(cache / "no-token"))
        for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
            mp.delenv(var, raising=False)
        yield mp


@pytest.fixture
def explorer(tiny_folder):
    from vaegan.explorer import Explorer
    ex = Explorer(load_model(str(tiny_folder)))
    yield ex
    ex.close()


@pytest.fixture(scope="session", autouse=True)
def _remove_gradio_cache():
    yield
    shutil.rmtree(GRADIO_TMP, ignore_errors=True)
