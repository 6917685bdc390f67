"""vaegan.refine: codes fitted past the encoder's guess, for VAE/GAN and plain VAE models,
on the Fashion-MNIST test pictures shipped under tests/ and on the shipped weights."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaegan import refine
from vaegan.data import load_fashion_mnist, unit_float
from vaegan.evaluate import main as evaluate_main, reconstruct_all
from vaegan.explorer import Explorer, ssim
from vaegan.hub import load_model
from vaegan.model import PRESETS, VAEGAN

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = Path(__file__).parent / "data" / "fashion-mnist-sample"


@pytest.fixture(scope="module")
def pictures() -> torch.Tensor:
    return unit_float(load_fashion_mnist("test", SAMPLE)[0][:24])


@pytest.fixture(scope="module")
def shipped():
    return load_model(str(ROOT / "weights" / "fashion-mnist")).model.eval()


@pytest.fixture(scope="module")
def shipped_vae():
    return load_model(str(ROOT / "weights" / "fashion-mnist-vae")).model.eval()


@pytest.mark.parametrize("which, gain", [("shipped", 0.9), ("shipped_vae", 0.99)])
def test_refining_lowers_the_objective_and_the_pixel_error(request, which, gain, pictures):
    """The VAE/GAN's feature loss falls by more than a tenth; the plain VAE's pixel
    likelihood, mostly the pictures' own irreducible part, by less."""
    model = request.getfixturevalue(which)
    with torch.no_grad():
        z0 = model.encode(pictures).mean
    z = refine.refine_codes(model, pictures, 50)
    assert z.shape == z0.shape and not torch.equal(z, z0)
    before, after = refine.objective(model, pictures, z0), refine.objective(model, pictures, z)
    assert (after < before).float().mean() >= 0.9, (before, after)  # nearly every picture
    assert after.mean() < gain * before.mean()
    with torch.no_grad():
        mse0 = (model.decode(z0) - pictures).pow(2).mean()
        mse = (model.decode(z) - pictures).pow(2).mean()
    assert mse < gain * mse0, (float(mse0), float(mse))


def test_more_steps_fit_closer_and_the_start_is_the_posterior_mean(shipped, pictures):
    x = pictures[:8]
    with torch.no_grad():
        z0 = shipped.encode(x).mean
    assert torch.equal(refine.refine_codes(shipped, x, 0), z0)
    losses = [float(refine.objective(shipped, x, refine.refine_codes(shipped, x, s)).mean())
              for s in (0, 10, 40)]
    assert losses[0] > losses[1] > losses[2], losses
    # from another start, as given
    start = torch.zeros_like(z0)
    assert torch.equal(refine.refine_codes(shipped, x, 0, z0=start), start)


def test_refining_leaves_the_model_untouched_and_holds_no_gradients(shipped, pictures):
    before = {k: v.clone() for k, v in shipped.state_dict().items()}
    with torch.inference_mode():  # as the app's handlers and evaluate call it
        z = refine.refine_codes(shipped, pictures[:4], 5)
    assert not z.requires_grad
    assert all(p.grad is None for p in shipped.parameters())
    assert all(torch.equal(before[k], v) for k, v in shipped.state_dict().items())


def test_a_batch_refines_each_picture_as_alone(shipped, pictures):
    both = refine.refine_codes(shipped, pictures[:2], 20)
    one = refine.refine_codes(shipped, pictures[1:2], 20)
    assert torch.allclose(both[1], one[0], atol=1e-4)


@pytest.mark.parametrize("steps", [-1, 201, 2.5, "many"])
def test_bad_step_counts_say_what_is_accepted(shipped, pictures, steps):
    with pytest.raises(ValueError, match=r"^steps must be a whole number from 0 to 200, got "):
        refine.refine_codes(shipped, pictures[:1], steps)


def test_explorer_reconstruct_refines_and_reports_the_encoder_too(shipped, pictures):
    ex = Explorer(load_model(str(ROOT / "weights" / "fashion-mnist")))
    picture = Image.fromarray((pictures[3, 0].numpy() * 255).round().astype(np.uint8))
    plain, fitted = ex.reconstruct(picture, 0), ex.reconstruct(picture, 50)
    assert plain.steps == 0 and plain.encoder_mse is None
    assert fitted.steps == 50
    assert fitted.encoder_mse == pytest.approx(plain.mse) and fitted.encoder_ssim == pytest.approx(plain.ssim)
    assert fitted.mse < plain.mse and fitted.ssim > plain.ssim
    assert np.array_equal(np.asarray(fitted.input), np.asarray(plain.input))
    # the code shown decodes to the picture shown
    again = ex.decode([0.0] * 12, "kl", fitted.z.tolist())
    assert np.array_equal(np.asarray(again), np.asarray(fitted.reconstruction))
    with pytest.raises(ValueError, match=r"steps must be a whole number between 0 and 200"):
        ex.reconstruct(picture, 500)


def test_refining_keeps_more_classes_on_the_shipped_pictures(shipped, pictures):
    """On the 1,000 test pictures under tests/: the shipped VAE/GAN's reconstructions keep
    more classes, and come closer in pixels, from refined codes (50 steps) than from the
    posterior means (the classifier is this project's; trained and cached on first use)."""
    from vaegan.classifier import load_classifier
    images, labels = load_fashion_mnist("test", SAMPLE)
    x, y = unit_float(images[:300]), labels[:300]
    clf = load_classifier("fashion-mnist", verbose=False)
    plain, fitted = reconstruct_all(shipped, x, 100), reconstruct_all(shipped, x, 100, refine.STEPS)
    kept = [float((clf.predict(r) == y).float().mean()) for r in (plain, fitted)]
    assert kept[1] > kept[0] + 0.01, kept
    ssims = [np.mean([ssim(a, b) for a, b in zip(x, r)]) for r in (plain, fitted)]
    assert ssims[1] > ssims[0] + 0.03, ssims


def test_evaluate_refine_writes_the_refined_figures(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert evaluate_main([str(ROOT / "weights" / "fashion-mnist"), "-n", "40", "--no-fid",
                          "--no-classifier", "--data-dir", str(SAMPLE), "--refine", "20",
                          "--out", str(out)]) == 0
    import json
    r = json.loads(out.read_text())
    assert r["refined"]["steps"] == 20
    assert r["refined"]["recon_mse"] < r["recon_mse"] and r["refined"]["recon_ssim"] > r["recon_ssim"]
    assert "refined_recon_ssim" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        evaluate_main([str(ROOT / "weights" / "fashion-mnist"), "--refine", "999", "--no-fid"])
    assert "--refine must be from 0 to 200 steps, got 999" in capsys.readouterr().err


def test_a_random_tiny_model_refines_on_its_own_pixels():
    """A tiny plain VAE (no discriminator) refines by its pixel likelihood."""
    torch.manual_seed(0)
    model = VAEGAN(dict(PRESETS["tiny"].to_dict(), mode="vae")).eval()
    x = torch.rand(3, 1, 28, 28)
    z0 = refine.refine_codes(model, x, 0)
    z = refine.refine_codes(model, x, 30)
    assert (refine.objective(model, x, z) < refine.objective(model, x, z0)).all()


def test_the_card_shows_the_refined_figures_when_evaluate_measured_them(tmp_path):
    import json
    from vaegan.card import build_model_card, main as card_main
    model, base = tmp_path / "m", tmp_path / "b"
    for folder, mode, ssim_refined in ((model, "vaegan", 0.789), (base, "vae", 0.815)):
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({**PRESETS["tiny"].to_dict(), "mode": mode}))
        (folder / "metrics.json").write_text(json.dumps(
            {"n": 10000, "seed": 0, "fid": 23.35, "recon_ssim": 0.713, "feature_extractor": "default_1.pt",
             "refined": {"steps": 50, "lr": 0.1, "recon_mse": 0.009, "recon_ssim": ssim_refined,
                         "recon_class_kept_ratio": 0.933}}))
    assert card_main([str(model), "--baseline", str(base)]) == 0
    card = (model / "README.md").read_text()
    assert "| reconstruction SSIM, refined codes | 0.789 |" in card
    assert "| reconstruction SSIM | 0.713 |" in card
    assert "Refined codes (`--refine 50`): each test picture's posterior mean fitted by 50 Adam steps" in card
    against = card.split("## Against")[1]
    assert "reconstruction SSIM, refined codes" in against and "0.815" in against
    # without --refine's figures, no such rows or sentence
    (model / "metrics.json").write_text(json.dumps({"n": 10000, "seed": 0, "fid": 23.35, "recon_ssim": 0.713}))
    plain = str(build_model_card(model))
    assert "refined codes |" not in plain.split("## Against")[0] and "Refined codes" not in plain
