"""Shared fixtures: a tiny random model folder with explorer assets built from the shipped
Fashion-MNIST sample (tests/data/fashion-mnist-sample: 1000 test images)."""
from pathlib import Path

import pytest
import torch

from vaegan.hub import load_model
from vaegan.model import PRESETS, VAEGAN

SAMPLE_DIR = Path(__file__).parent / "data" / "fashion-mnist-sample"


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    """config.json + model.safetensors + explorer.safetensors of PRESETS["tiny"] (latent 8)."""
    from vaegan.explorer import main
    folder = tmp_path_factory.mktemp("weights") / "tiny"
    torch.manual_seed(0)
    VAEGAN(PRESETS["tiny"]).eval().save_pretrained(folder)
    assert main(["build", str(folder), "--data-dir", str(SAMPLE_DIR), "--split", "test",
                 "--limit", "400"]) == 0
    return folder


@pytest.fixture
def explorer(tiny_folder):
    from vaegan.explorer import Explorer
    ex = Explorer(load_model(str(tiny_folder)))
    yield ex
    ex.close()
