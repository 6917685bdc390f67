"""Shared fixtures: a tiny random model folder with explorer assets built from the shipped
Fashion-MNIST sample (tests/data/fashion-mnist-sample: 1000 test images)."""
import os
import shutil
import tempfile
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


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    """config.json + model.safetensors + explorer.safetensors of PRESETS["tiny"] (latent 8),
    random, with decoder weights scaled so that different codes give visibly different images."""
    from vaegan.explorer import main
    folder = tmp_path_factory.mktemp("weights") / "tiny"
    torch.manual_seed(0)
    model = VAEGAN(PRESETS["tiny"]).eval()
    with torch.no_grad():  # at init the decoder's output hardly depends on z; make it visible
        for p in model.decoder.parameters():
            if p.dim() > 1:
                p.mul_(3.0)
    model.save_pretrained(folder)
    assert main(["build", str(folder), "--data-dir", str(SAMPLE_DIR), "--split", "test",
                 "--limit", "400"]) == 0
    return folder


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
