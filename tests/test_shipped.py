"""The weights in weights/ against issue 2's bars.

FID needs the full protocol (about 30 minutes per 10,000 images on 2 CPU cores), so its bars
are checked on what `python -m vaegan.evaluate` recorded in metrics.json; reconstruction
SSIM and sharpness are measured again here on the 1,000 test images shipped under tests/.
The card must say what the files say: a stale card or baseline.json fails.
"""
import json
from pathlib import Path

import pytest
import torch

from vaegan import refine
from vaegan.card import BASELINE_FILE, build_model_card
from vaegan.data import load_fashion_mnist
from vaegan.evaluate import evaluate
from vaegan.hub import load_model

ROOT = Path(__file__).resolve().parent.parent
VAEGAN_DIR, VAE_DIR = ROOT / "weights" / "fashion-mnist", ROOT / "weights" / "fashion-mnist-vae"
EMOJI_DIR = ROOT / "weights" / "emoji-64"  # issue 21; its plain-VAE baseline's files (no weights):
EMOJI_VAE_DIR = ROOT / "docs" / "emoji-64-vae"
SAMPLE = Path(__file__).parent / "data" / "fashion-mnist-sample"


def read(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text())


def test_shipped_metrics_meet_the_bars_on_the_full_protocol():
    ours, vae = read(VAEGAN_DIR, "metrics.json"), read(VAE_DIR, "metrics.json")
    for m in (ours, vae):  # the full protocol, both sampled the same way
        assert m["n"] == 10000 and m["feature_extractor"] == "default_1.pt"
    assert ours["prior"] == vae["prior"] and ours["seed"] == vae["seed"]
    assert ours["fid"] <= 30
    # Issue 2's "at most half the plain VAE's FID" was met (45.3%) against a baseline of 9,360
    # steps on one shared thread; against the baseline retrained in the same budget (issue 20:
    # 28,745 steps, two threads) it is not (56.8%), and the README says so. What holds: the
    # VAE/GAN beats it on FID and KID, keeps more classes in its reconstructions, and samples
    # every class closer to its real share.
    assert ours["fid"] < vae["fid"] and ours["kid"] < vae["kid"]
    assert ours["recon_class_kept_ratio"] > vae["recon_class_kept_ratio"]
    assert ours["min_class_share_ratio"] > vae["min_class_share_ratio"]
    assert 0.7 <= ours["sharpness_ratio"] <= 1.3
    assert ours["recon_ssim"] >= 0.6


def test_shipped_training_fits_the_budget():
    for folder in (VAEGAN_DIR, VAE_DIR):
        t = read(folder, "training.json")
        assert t["train_seconds"] <= 90 * 60 and t["device"] == "cpu" and t["threads"] <= 2, folder.name
    size = sum(p.stat().st_size for p in (ROOT / "weights").rglob("*") if p.is_file())
    assert size <= 20 * 1024 * 1024


@pytest.mark.parametrize("folder", [VAEGAN_DIR, VAE_DIR, EMOJI_DIR], ids=lambda p: p.name)
def test_shipped_card_says_what_the_files_say(folder):
    card = build_model_card(folder, source=f"weights/{folder.name}")
    assert (folder / "README.md").read_text() == str(card), "run python -m vaegan.card " + folder.name
    if (folder / BASELINE_FILE).exists():  # the comparison is with the baseline as shipped now
        record = read(folder, BASELINE_FILE)
        assert record["metrics"] == read(ROOT / record["folder"], "metrics.json")


def test_shipped_vaegan_reconstructs_and_samples_as_recorded():
    torch.set_num_threads(2)
    model = load_model(str(VAEGAN_DIR)).model.eval()
    images, _ = load_fashion_mnist("test", SAMPLE, download=False)
    got = evaluate(model, images, None, n=len(images), batch_size=250, refine_steps=refine.STEPS)
    recorded = read(VAEGAN_DIR, "metrics.json")
    assert got["recon_ssim"] >= 0.6 and got["recon_ssim"] == pytest.approx(recorded["recon_ssim"], abs=0.03)
    assert 0.7 <= got["sharpness_ratio"] <= 1.3
    # Reconstruct's refined codes (vaegan.refine), as recorded on the full protocol
    assert recorded["refined"]["steps"] == refine.STEPS
    assert got["refined"]["recon_ssim"] == pytest.approx(recorded["refined"]["recon_ssim"], abs=0.03)
    assert got["refined"]["recon_ssim"] > got["recon_ssim"] + 0.05


def test_shipped_refined_codes_keep_more_than_the_posterior_means():
    for folder in (VAEGAN_DIR, VAE_DIR):
        m = read(folder, "metrics.json")
        r = m["refined"]
        assert r["recon_mse"] < m["recon_mse"] and r["recon_ssim"] > m["recon_ssim"], folder.name
        assert r["recon_class_kept_ratio"] > m["recon_class_kept_ratio"], folder.name


# ---- the emoji model (issue 21) ----------------------------------------------------------------
def test_shipped_emoji_model_beats_its_vae_baseline_and_fits_the_budget():
    ours, vae = read(EMOJI_DIR, "metrics.json"), read(EMOJI_VAE_DIR, "metrics.json")
    for m in (ours, vae):  # the held-out emoji, sampled and measured the same way
        assert m["dataset"] == "emoji" and m["n"] == 348 and m["feature_extractor"] == "default_1.pt"
    assert ours["prior"] == vae["prior"] and ours["seed"] == vae["seed"]
    assert ours["fid"] < vae["fid"] and ours["kid"] < vae["kid"]
    assert ours["recon_class_kept"] > 0 and ours["classifier_test_accuracy"] > 0.5
    for folder in (EMOJI_DIR, EMOJI_VAE_DIR):
        t = read(folder, "training.json")
        assert t["train_seconds"] <= 90 * 60 and t["device"] == "cpu" and t["threads"] <= 2, folder.name
        assert t["dataset"] == "emoji"
    assert read(EMOJI_DIR, BASELINE_FILE)["metrics"] == vae


def test_shipped_emoji_model_reconstructs_as_recorded():
    from vaegan.data import load_dataset
    model = load_model(str(EMOJI_DIR)).model.eval()
    c = model.config
    assert (c.image_size, c.channels) == (64, 3)
    images, _ = load_dataset("emoji", "test", None, 64, 3)
    got = evaluate(model, images, None, n=len(images), batch_size=116)
    recorded = read(EMOJI_DIR, "metrics.json")
    assert got["recon_ssim"] == pytest.approx(recorded["recon_ssim"], abs=0.03)
    assert got["sharpness_ratio"] == pytest.approx(recorded["sharpness_ratio"], rel=0.1)
