"""The fitted sampling prior (vaegan.prior, VAEGAN.latent_prior): a Gaussian mixture fitted
to posterior codes after training, saved with the weights, drawn from by sample()."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from vaegan.hub import load_model
from vaegan.model import PRESETS, VAEGAN, MixturePrior, VAEGANConfig
from vaegan.prior import fit_mixture, main, with_prior

SAMPLE = Path(__file__).parent / "data" / "fashion-mnist-sample"


def two_clusters(n: int, seed: int = 0) -> np.ndarray:
    """Codes (n, 8) from a known mixture: 30% around +5 on dim 0, 70% around -2 with dims 0
    and 1 correlated (rho 0.8)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(int(0.3 * n), 8)) * 0.5
    a[:, 0] += 5.0
    b = rng.normal(size=(n - len(a), 8))
    b[:, 1] = 0.8 * b[:, 0] + 0.6 * b[:, 1]
    b[:, 0] -= 2.0
    return np.concatenate([a, b])


@pytest.fixture(scope="module")
def fitted():
    torch.manual_seed(0)
    model = VAEGAN(PRESETS["tiny"]).eval()
    return model, with_prior(model, fit_mixture(two_clusters(4000), 2, seed=0))


def test_samples_follow_the_fitted_mixture(fitted):
    _, m = fitted
    assert m.config.prior_components == 2
    z = m.prior(6000, torch.Generator().manual_seed(1)).double()  # (6000, 8)
    big = z[:, 0] > 1.5
    assert abs(big.double().mean().item() - 0.3) < 0.03  # the mixture weights
    assert abs(z[big, 0].mean().item() - 5.0) < 0.1 and abs(z[big, 0].std().item() - 0.5) < 0.05
    rest = z[~big]
    corr = torch.corrcoef(rest[:, :2].T)[0, 1].item()
    assert abs(corr - 0.8) < 0.05  # full covariance, not diagonal
    assert abs(rest[:, 0].mean().item() + 2.0) < 0.1


def test_first_code_of_a_seed_does_not_depend_on_the_count(fitted):
    _, m = fitted
    one = m.prior(1, torch.Generator().manual_seed(5))
    many = m.prior(16, torch.Generator().manual_seed(5))
    assert torch.equal(one[0], many[0])
    assert not torch.equal(many[0], m.prior(1, torch.Generator().manual_seed(6))[0])
    # temperature scales the spread around the component means: at 0 only the means remain
    z0 = m.prior(50, torch.Generator().manual_seed(5), temperature=0.0)
    means = m.latent_prior.means
    assert torch.cdist(z0, means).min(1).values.max() < 1e-5


def test_decoder_and_encoder_are_untouched_by_the_fit(fitted):
    base, m = fitted
    z = torch.randn(4, 8)
    assert torch.equal(base.decode(z), m.decode(z))
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(base.encode(x).mean, m.encode(x).mean)
    assert base.latent_prior is None  # the original is not changed in place


def test_round_trip_through_save_pretrained(fitted, tmp_path):
    _, m = fitted
    m.save_pretrained(tmp_path / "w")
    assert json.loads((tmp_path / "w" / "config.json").read_text())["prior_components"] == 2
    back = VAEGAN.from_pretrained(tmp_path / "w")
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(m.sample(8, g1), back.sample(8, g2))


def test_config_written_before_the_prior_existed_still_loads(tmp_path):
    torch.manual_seed(0)
    VAEGAN(PRESETS["tiny"]).save_pretrained(tmp_path / "old")
    cfg = json.loads((tmp_path / "old" / "config.json").read_text())
    # N(0, I) is written as older versions wrote it (no key), so they can load it too
    assert "prior_components" not in cfg and set(cfg) == set(PRESETS["tiny"].to_dict())
    m = VAEGAN.from_pretrained(tmp_path / "old")
    assert m.config.prior_components == 0 and m.latent_prior is None
    # the same draws as N(0, I) always gave
    g = torch.Generator().manual_seed(0)
    assert torch.equal(m.prior(4, torch.Generator().manual_seed(0)), torch.randn(4, 8, generator=g))
    # other missing keys are still an error
    with pytest.raises(ValueError, match=r"missing keys \['gamma'\]"):
        VAEGANConfig.from_dict({k: v for k, v in cfg.items() if k != "gamma"})
    for bad in (-1, 1001, 2.5, True):
        with pytest.raises(ValueError, match="prior_components must be an integer from 0"):
            VAEGANConfig(prior_components=bad)


def test_prior_weights_that_do_not_fit_are_named(fitted, tmp_path):
    _, m = fitted
    m.save_pretrained(tmp_path / "w")
    path = tmp_path / "w" / "model.safetensors"
    state = load_file(path)
    # config says 2 components, weights carry none
    save_file({k: v for k, v in state.items() if not k.startswith("latent_prior.")}, path)
    with pytest.raises(ValueError, match=r"missing keys \['latent_prior.means'"):
        VAEGAN.from_pretrained(tmp_path / "w")
    # mixture weights that are not a distribution
    save_file({**state, "latent_prior.weights": torch.tensor([0.9, 0.9])}, path)
    with pytest.raises(ValueError, match="model.safetensors: latent_prior.weights must be >= 0 and sum to 1"):
        VAEGAN.from_pretrained(tmp_path / "w")
    bad = state["latent_prior.scale_tril"].clone()
    bad[0, 0, 0] = float("nan")
    save_file({**state, "latent_prior.scale_tril": bad}, path)
    with pytest.raises(ValueError, match="non-finite"):
        VAEGAN.from_pretrained(tmp_path / "w")


def test_mixture_check_rejects_a_non_triangular_scale():
    p = MixturePrior(2, 3)
    p.scale_tril[1, 0, 2] = 0.5
    with pytest.raises(ValueError, match="lower-triangular"):
        p.check()


@pytest.fixture
def train_dir(tmp_path):
    """The shipped sample (a test split) presented as a training split."""
    data = tmp_path / "data"
    data.mkdir()
    for kind in ("images-idx3", "labels-idx1"):
        (data / f"train-{kind}-ubyte.gz").symlink_to(SAMPLE / f"t10k-{kind}-ubyte.gz")
    return data


def test_cli_fits_a_folder_and_removes_the_prior_again(tmp_path, train_dir, capsys):
    torch.manual_seed(0)
    VAEGAN(PRESETS["tiny"]).save_pretrained(tmp_path / "w")
    before = load_file(tmp_path / "w" / "model.safetensors")
    data = train_dir
    assert main([str(tmp_path / "w"), "--components", "3", "--data-dir", str(data),
                 "--threads", "1"]) == 0
    assert "3-component Gaussian mixture fitted to 1000 posterior codes" in capsys.readouterr().out
    info = json.loads((tmp_path / "w" / "prior.json").read_text())
    assert info["components"] == 3 and info["codes"] == 1000 and info["converged"]
    # the mixture explains the codes better than N(0, I) does
    assert info["mean_log_likelihood"] > info["standard_normal_log_likelihood"]
    assert info["bn_codes"] == 25600  # the default: decoder statistics estimated anew
    m = load_model(str(tmp_path / "w")).model
    assert m.config.prior_components == 3
    after = load_file(tmp_path / "w" / "model.safetensors")
    stats = {k for k in before if k.startswith("decoder.") and k.endswith(("running_mean", "running_var"))}
    assert stats  # the tiny decoder has BatchNorm layers
    # weights and every other buffer untouched; the decoder's BatchNorm statistics changed
    assert all(torch.equal(before[k], after[k]) for k in before if k not in stats and "num_batches" not in k)
    assert all(not torch.equal(before[k], after[k]) for k in stats)
    assert math.isclose(float(after["latent_prior.weights"].sum()), 1.0, rel_tol=1e-5)

    assert main([str(tmp_path / "w"), "--components", "0", "--bn-codes", "0"]) == 0
    plain = load_model(str(tmp_path / "w")).model
    assert plain.latent_prior is None and plain.config.prior_components == 0
    assert set(load_file(tmp_path / "w" / "model.safetensors")) == set(before)
    assert not (tmp_path / "w" / "prior.json").exists()  # nothing left to record


def test_cli_says_when_there_are_too_few_codes(tmp_path, train_dir):
    torch.manual_seed(0)
    VAEGAN(PRESETS["tiny"]).save_pretrained(tmp_path / "w")
    with pytest.raises(SystemExit, match="10 codes are too few to fit 8 components"):
        main([str(tmp_path / "w"), "--components", "8", "--limit", "10", "--data-dir", str(train_dir)])


def test_model_card_says_where_samples_come_from(fitted, tmp_path):
    from vaegan.card import build_model_card
    _, m = fitted
    m.save_pretrained(tmp_path / "w")
    (tmp_path / "w" / "README.md").unlink()
    (tmp_path / "w" / "prior.json").write_text(json.dumps({
        "command": "python -m vaegan.prior w --components 2", "components": 2, "codes": 4000,
        "seconds": 1.5, "mean_log_likelihood": -9.1, "standard_normal_log_likelihood": -14.2}))
    (tmp_path / "w" / "metrics.json").write_text(json.dumps(
        {"n": 100, "seed": 0, "fid": 12.5, "prior": "fitted Gaussian mixture, 2 components"}))
    (tmp_path / "w" / "metrics_prior-standard.json").write_text(json.dumps(
        {"n": 100, "seed": 0, "fid": 40.25, "sharpness_ratio": 1.1}))
    text = str(build_model_card(tmp_path / "w"))
    assert "## Sampling prior" in text and "python -m vaegan.prior w --components 2" in text
    assert "-9.1 under the mixture vs -14.2 under N(0, I)" in text
    assert "codes from a 2-component Gaussian mixture" in text
    assert "With codes from N(0, I) instead (`--prior standard`, 100 images): FID 40.25" in text
    # a model that samples from N(0, I) says so and has no prior section
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "config.json").write_text(json.dumps(PRESETS["tiny"].to_dict()))
    (tmp_path / "p" / "metrics.json").write_text(json.dumps({"n": 100, "seed": 0, "fid": 50.0}))
    plain = str(build_model_card(tmp_path / "p"))
    assert "## Sampling prior" not in plain and "codes from N(0, I)" in plain
    assert "beta" not in plain  # the default KL weight goes unsaid; another one is named
    (tmp_path / "p" / "config.json").write_text(json.dumps({**PRESETS["tiny"].to_dict(), "beta": 0.5}))
    assert "; KL weight beta 0.5." in str(build_model_card(tmp_path / "p"))
    assert "BatchNorm" not in text and "BatchNorm" not in plain  # no recalibration recorded
    # recalibrated decoder statistics are named, for the mixture and for N(0, I) alike
    (tmp_path / "w" / "prior.json").write_text(json.dumps({"components": 2, "codes": 4000, "bn_codes": 25600}))
    assert "estimated anew on 25600 codes drawn from the mixture" in str(build_model_card(tmp_path / "w"))
    (tmp_path / "p" / "prior.json").write_text(json.dumps({"components": 0, "bn_codes": 1280}))
    plain = str(build_model_card(tmp_path / "p"))
    assert "## Decoder statistics" in plain and "1280 codes drawn from N(0, I)" in plain


def test_a_config_asking_for_a_prior_the_file_lacks_fails_before_allocating(tmp_path):
    from vaegan.hub import ModelLoadError
    torch.manual_seed(0)
    VAEGAN(PRESETS["tiny"]).save_pretrained(tmp_path / "w")
    cfg = json.loads((tmp_path / "w" / "config.json").read_text())
    # 10**8 components of 8x8 would be 27 GB: the header check must refuse before building it
    (tmp_path / "w" / "config.json").write_text(json.dumps({**cfg, "prior_components": 10**8}))
    with pytest.raises(ModelLoadError, match="invalid config .prior_components must be an integer from 0"):
        load_model(str(tmp_path / "w"))
    (tmp_path / "w" / "config.json").write_text(json.dumps({**cfg, "prior_components": 1000}))
    with pytest.raises(ModelLoadError, match="asks for a 1000-component sampling prior but the "
                       "file has no latent_prior.weights"):
        load_model(str(tmp_path / "w"))


def test_a_prior_that_throws_codes_far_out_is_refused(fitted, tmp_path):
    _, m = fitted
    m.save_pretrained(tmp_path / "w")
    path = tmp_path / "w" / "model.safetensors"
    state = load_file(path)
    save_file({**state, "latent_prior.means": state["latent_prior.means"] * 1e6}, path)
    with pytest.raises(ValueError, match="latent_prior puts codes up to .* at most 100 is accepted"):
        VAEGAN.from_pretrained(tmp_path / "w")


def test_zero_weight_components_are_never_drawn():
    p = MixturePrior(3, 2)
    p.weights.copy_(torch.tensor([0.0, 1.0, 0.0]))
    p.means.copy_(torch.tensor([[-9.0, -9.0], [0.0, 0.0], [9.0, 9.0]]))
    z = p.sample(3000, torch.Generator().manual_seed(0), temperature=0.0)
    assert torch.equal(z, torch.zeros(3000, 2))


def test_refitting_moves_or_removes_the_figures_of_the_old_prior(tmp_path, train_dir, capsys):
    torch.manual_seed(0)
    w = tmp_path / "w"
    VAEGAN(PRESETS["tiny"]).save_pretrained(w)
    (w / "metrics.json").write_text(json.dumps({"n": 10, "fid": 70.0, "prior": "N(0, I)"}))
    (w / "samples.png").write_bytes(b"png")
    assert main([str(w), "--components", "2", "--data-dir", str(train_dir), "--threads", "1",
                 "--bn-codes", "0"]) == 0
    assert "was drawn from N(0, I): renamed to metrics_prior-standard.json" in capsys.readouterr().out
    assert not (w / "metrics.json").exists() and not (w / "samples.png").exists()
    assert json.loads((w / "metrics_prior-standard.json").read_text())["fid"] == 70.0
    assert (w / "samples_prior-standard.png").read_bytes() == b"png"
    # figures of a mixture are simply stale once it is refitted
    (w / "metrics.json").write_text(json.dumps({"n": 10, "fid": 30.0, "prior": "fitted Gaussian mixture, 2 components"}))
    assert main([str(w), "--components", "3", "--data-dir", str(train_dir), "--threads", "1",
                 "--bn-codes", "0"]) == 0
    assert "removed" in capsys.readouterr().out and not (w / "metrics.json").exists()
    # new decoder statistics make every earlier figure stale, the N(0, I) ones included
    (w / "reconstructions.png").write_bytes(b"png")
    assert main([str(w), "--components", "3", "--data-dir", str(train_dir), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "made with the decoder's previous BatchNorm statistics" in out
    assert not list(w.glob("metrics*.json")) and not list(w.glob("*.png"))
    with pytest.raises(SystemExit, match="--limit takes a number of images >= 1"):
        main([str(w), "--limit", "0", "--data-dir", str(train_dir)])


def test_card_words_the_evaluation_from_the_metrics_not_the_config(fitted, tmp_path):
    """metrics.json drawn from N(0, I) before the prior was fitted says N(0, I) on the card."""
    from vaegan.card import build_model_card
    _, m = fitted
    m.save_pretrained(tmp_path / "w")
    (tmp_path / "w" / "metrics.json").write_text(json.dumps({"n": 100, "seed": 0, "fid": 70.0,
                                                             "prior": "N(0, I)"}))
    text = str(build_model_card(tmp_path / "w"))
    assert "samples (codes from N(0, I)) vs test images" in text


def test_decoder_statistics_are_those_of_the_prior_codes(fitted):
    """recalibrate_decoder: the first BatchNorm's running mean and variance become the mean and
    variance of its input over codes from the model's prior, whatever they were before; the
    weights stay."""
    import copy

    from vaegan.prior import recalibrate_decoder
    _, m = fitted
    m = copy.deepcopy(m)
    bn = next(mod for mod in m.decoder.modules() if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm))
    bn.running_mean.fill_(5.0)
    bn.running_var.fill_(9.0)
    weights = {k: v.clone() for k, v in m.named_parameters()}
    assert recalibrate_decoder(m, 130 * 64, batch_size=64, seed=3) == 130 * 64
    assert all(torch.equal(weights[k], v) for k, v in m.named_parameters())
    assert not m.training
    # what reaches that BatchNorm, for fresh prior codes
    seen = []
    hook = bn.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach()))
    with torch.no_grad():
        m.decode(m.prior(20000, torch.Generator().manual_seed(9)))
    hook.remove()
    act = seen[0].transpose(0, 1).reshape(bn.num_features, -1)  # (channels, everything else)
    assert torch.allclose(bn.running_mean, act.mean(1), atol=0.1 * act.std(1).mean().item())
    assert torch.allclose(bn.running_var, act.var(1), rtol=0.1)
    with pytest.raises(ValueError, match="at least one batch"):
        recalibrate_decoder(m, 10, batch_size=64)


def test_cli_refuses_too_few_codes_for_the_statistics(tmp_path, train_dir):
    torch.manual_seed(0)
    VAEGAN(PRESETS["tiny"]).save_pretrained(tmp_path / "w")
    with pytest.raises(SystemExit, match=r"--bn-codes takes 0 .* or at least one batch \(128\) of codes, got 5"):
        main([str(tmp_path / "w"), "--bn-codes", "5", "--data-dir", str(train_dir)])


def test_model_card_compares_with_a_baseline_measured_the_same_way(tmp_path, capsys):
    from vaegan.card import build_model_card, main as card_main
    model, base = tmp_path / "m", tmp_path / "b"
    for folder, mode, fid in ((model, "vaegan", 23.74), (base, "vae", 51.59)):
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({**PRESETS["tiny"].to_dict(), "mode": mode}))
        (folder / "metrics.json").write_text(json.dumps(
            {"n": 10000, "seed": 0, "fid": fid, "recon_ssim": 0.7, "sharpness_ratio": 0.8,
             "feature_extractor": "default_1.pt"}))
    assert "## Against" not in str(build_model_card(model))  # no baseline recorded yet
    assert card_main([str(model), "--baseline", str(base)]) == 0
    record = json.loads((model / "baseline.json").read_text())
    assert record["folder"] == str(base) and record["metrics"]["fid"] == 51.59
    card = (model / "README.md").read_text()
    assert "## Against the plain-VAE baseline" in card
    assert f"| `{base}` | 51.59 |" in card and "| this model | 23.74 |" in card
    assert "This model's FID is 46.0% of the plain-VAE baseline's." in card
    # the record stays with the weights: the baseline's folder may change or go away later
    (base / "metrics.json").write_text(json.dumps({"n": 500, "seed": 0, "fid": 99.0}))
    assert "46.0%" in str(build_model_card(model))
    # a baseline measured on other images is named as such, with no ratio
    record["metrics"]["n"] = 500
    (model / "baseline.json").write_text(json.dumps(record))
    text = str(build_model_card(model))
    assert "(n 10000 here vs 500 there); no comparison is made" in text and "%" not in text.split("## Against")[1]
    # a baseline without an FID is refused with the file named, and nothing is written
    (model / "baseline.json").unlink()
    (base / "metrics.json").write_text(json.dumps({"n": 500}))
    with pytest.raises(SystemExit):
        card_main([str(model), "--baseline", str(base)])
    assert "no FID measured for the baseline" in capsys.readouterr().err
    assert not (model / "baseline.json").exists()


def first_bn_input(m, codes: torch.Tensor) -> tuple[torch.nn.Module, torch.Tensor]:
    """The decoder's first BatchNorm and what reaches it for codes (B, Z) -> (channels, ...)."""
    bn = next(mod for mod in m.decoder.modules() if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm))
    seen = []
    hook = bn.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach()))
    with torch.no_grad():
        m.decode(codes)
    hook.remove()
    return bn, seen[0].transpose(0, 1).reshape(bn.num_features, -1)


def test_decoder_statistics_of_posterior_means_and_of_a_blend(fitted):
    """prior_share 0: the statistics are those of the given codes (posterior means); 0.5: each
    batch holds half prior codes, half means, so the running mean lands between the two."""
    import copy

    from vaegan.prior import recalibrate_decoder
    _, m = fitted
    g = torch.Generator().manual_seed(4)
    means = 0.3 * torch.randn(3000, m.config.latent_dim, generator=g) + 1.0  # far from the prior's codes
    a = copy.deepcopy(m)
    assert recalibrate_decoder(a, 40 * 64, batch_size=64, means=means, prior_share=0.0) == 40 * 64
    bn, act = first_bn_input(a, means[:2560])  # the rows used, in order
    assert torch.allclose(bn.running_mean, act.mean(1), atol=1e-4)
    assert torch.allclose(bn.running_var, act.var(1), rtol=0.05)
    b = copy.deepcopy(m)
    recalibrate_decoder(b, 200 * 64, batch_size=64, means=means, prior_share=0.5, seed=1)
    prior_act = first_bn_input(b, b.prior(20000, torch.Generator().manual_seed(2)))[1]
    mean_act = first_bn_input(b, means)[1]
    bn_b = first_bn_input(b, means[:1])[0]
    mid = (prior_act.mean(1) + mean_act.mean(1)) / 2
    assert torch.allclose(bn_b.running_mean, mid, atol=0.1 * prior_act.std(1).mean().item())
    assert (bn_b.running_mean - bn.running_mean).abs().max() > 0.1 * prior_act.std(1).mean()
    with pytest.raises(ValueError, match="posterior means are needed"):
        recalibrate_decoder(copy.deepcopy(m), 640, batch_size=64, prior_share=0.5)
    with pytest.raises(ValueError, match=r"prior_share must lie in \[0, 1\]"):
        recalibrate_decoder(copy.deepcopy(m), 640, batch_size=64, means=means, prior_share=1.5)


def test_cli_estimates_statistics_on_posterior_means(tmp_path, train_dir, capsys):
    """--bn-source means: the decoder's statistics are those of the posterior means of the
    training pictures (not of prior codes), recorded in prior.json and said in the card."""
    from vaegan.card import build_model_card
    from vaegan.data import load_fashion_mnist
    from vaegan.prior import posterior_means
    torch.manual_seed(0)
    VAEGAN(PRESETS["tiny"]).save_pretrained(tmp_path / "w")
    assert main([str(tmp_path / "w"), "--components", "2", "--data-dir", str(train_dir),
                 "--bn-source", "means", "--bn-codes", "1280"]) == 0
    assert "1280 codes (posterior means of training pictures)" in capsys.readouterr().out
    info = json.loads((tmp_path / "w" / "prior.json").read_text())
    assert info["bn_source"] == "means" and info["bn_codes"] == 1280
    m = load_model(str(tmp_path / "w")).model.eval()
    x, _ = load_fashion_mnist("train", train_dir)
    bn, act = first_bn_input(m, posterior_means(m, x, 500))
    assert torch.allclose(bn.running_mean, act.mean(1), atol=0.05 * act.std(1).mean().item())
    prior_act = first_bn_input(m, m.prior(5000, torch.Generator().manual_seed(0)))[1]
    assert (bn.running_var / prior_act.var(1)).mean() < 0.9  # means spread less than prior codes
    assert "posterior means of 1280 random training pictures" in str(build_model_card(tmp_path / "w"))
