"""What the decoder paints beside reconstructions (train.Fakes): slerp mixes of two pictures'
codes (--mix, ACAI-style) and codes from the fitted mixture (--gan-codes prior)."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vaegan import latent
from vaegan.distributed import World
from vaegan.model import PRESETS, VAEGAN
from vaegan.prior import fit_mixture, with_prior
from vaegan.train import Fakes, fake_codes, vaegan_losses

from test_train import data_dir, logged, run  # noqa: F401  (the module's data fixture)


def test_slerp_rows_is_slerp_row_by_row():
    g = torch.Generator().manual_seed(0)
    a, b, t = torch.randn(40, 6, generator=g), torch.randn(40, 6, generator=g), torch.rand(40, generator=g)
    b[1], b[2], a[3] = -a[1], 3 * a[2], 0.0  # antiparallel, parallel, a zero code
    t[4], t[5] = 0.0, 1.0
    rows = latent.slerp_rows(a, b, t)
    want = torch.stack([latent.slerp(a[i], b[i], t[i]) for i in range(40)])
    assert torch.allclose(rows, want, atol=2e-6)
    assert torch.equal(rows[4], a[4]) and torch.equal(rows[5], b[5])


def test_mixes_are_slerps_of_row_pairs_and_the_rest_is_standard_noise():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, 5, generator=g) * 2
    model = VAEGAN(PRESETS["tiny"])
    plain = fake_codes(model, z, 8, slice(0, 8), torch.Generator().manual_seed(1))
    mixed = fake_codes(model, z, 8, slice(0, 8), torch.Generator().manual_seed(1), Fakes(mix=0.5))
    assert torch.equal(mixed[4:], plain[4:])  # rows past round(0.5 * 8) keep N(0, I)
    for i in range(4):  # row i lies on the arc from its code to its pair's (2k <-> 2k + 1)
        j = i ^ 1
        ts = torch.linspace(0, 1, 2001)
        arc = latent.slerp(z[i], z[j], ts)
        assert (arc - mixed[i]).norm(dim=1).min() < 5e-3 * z[i].norm()
        assert not torch.allclose(mixed[i], plain[i])
    # and all of them is all mixes
    every = fake_codes(model, z, 8, slice(0, 8), torch.Generator().manual_seed(1), Fakes(mix=1.0))
    assert torch.equal(every[:4], mixed[:4])


def test_each_ranks_fake_codes_are_its_rows_of_the_global_batch():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(12, 5, generator=g)
    model = VAEGAN(PRESETS["tiny"])
    fakes = Fakes(mix=0.5)
    whole = fake_codes(model, z, 12, slice(0, 12), torch.Generator().manual_seed(3), fakes)
    shares = []
    for r in range(3):  # 3 ranks of 4 rows: pairs never straddle two ranks
        n, rows = World(rank=r, size=3).rows(4)
        shares.append(fake_codes(model, z[rows], n, rows, torch.Generator().manual_seed(3), fakes))
    assert torch.allclose(torch.cat(shares), whole, atol=1e-6)


def _mixture_model(weights=(0.25, 0.75)):
    """A tiny model whose fitted prior has two far-apart components with these weights."""
    rng = np.random.default_rng(0)
    k = [int(1000 * w) for w in weights]
    codes = np.concatenate([rng.normal(size=(k[0], 8)) * 0.1 - 5, rng.normal(size=(k[1], 8)) * 0.1 + 5])
    torch.manual_seed(0)
    return with_prior(VAEGAN(PRESETS["tiny"]), fit_mixture(codes, 2))


def test_prior_codes_come_from_the_fitted_mixture():
    model = _mixture_model()
    z = torch.zeros(4000, 8)
    codes = fake_codes(model, z, 4000, slice(0, 4000), torch.Generator().manual_seed(0), Fakes("prior"))
    high = (codes.mean(1) > 0).float().mean()
    assert float(high) == pytest.approx(0.75, abs=0.03)
    assert codes[codes.mean(1) > 0].mean(0).sub(5).abs().max() < 0.05
    # the mixture's transform is how its own sample() draws: the same normals, the same codes
    e = torch.stack([torch.randn(9, generator=torch.Generator().manual_seed(7))])
    assert torch.equal(model.latent_prior.transform(e)[0],
                       model.latent_prior.sample(1, torch.Generator().manual_seed(7))[0])
    with pytest.raises(ValueError, match="needs a model with a fitted mixture prior"):
        fake_codes(VAEGAN(PRESETS["tiny"]), z[:4], 4, slice(0, 4), torch.Generator(), Fakes("prior"))


def test_the_decoder_is_asked_to_paint_mixes_as_real():
    """With --mix 1 the decoder's GAN term is over reconstructions and mixes: it changes, and
    it reaches the decoder's weights."""
    torch.manual_seed(0)
    m = VAEGAN(PRESETS["tiny"])
    m.discriminator.eval()
    x = torch.rand(8, 1, 28, 28)
    per_net, logged_std = vaegan_losses(m, x, torch.Generator().manual_seed(0))
    _, logged_mix = vaegan_losses(m, x, torch.Generator().manual_seed(0), fakes=Fakes(mix=1.0))
    assert logged_mix.gan_gen != pytest.approx(logged_std.gan_gen)
    per_net, _ = vaegan_losses(m, x, torch.Generator().manual_seed(0), fakes=Fakes(mix=1.0))
    dec = list(m.decoder.parameters())
    assert any(g is not None and g.abs().sum() > 0
               for g in torch.autograd.grad(per_net["decoder"], dec, allow_unused=True))


def test_fakes_refuse_what_they_cannot_do():
    with pytest.raises(ValueError, match="codes must be one of"):
        Fakes("uniform")
    with pytest.raises(ValueError, match="mix must be a share from 0 to 1"):
        Fakes(mix=1.5)


def test_mix_training_runs_records_and_resumes_exactly(tmp_path, data_dir):  # noqa: F811
    assert run(tmp_path / "a", data_dir, "--max-steps", "12", "--mix", "0.5") == 0
    info = json.loads((tmp_path / "a" / "model" / "training.json").read_text())
    assert info["mix"] == 0.5 and info["gan_codes"] == "standard"
    assert run(tmp_path / "b", data_dir, "--max-steps", "6", "--mix", "0.5") == 0
    assert run(tmp_path / "b", data_dir, "--max-steps", "12", "--resume") == 0
    a, b = (load_file(tmp_path / r / "model" / "model.safetensors") for r in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert logged(tmp_path / "a")[-1] == logged(tmp_path / "b")[-1]
    # and the mixes change the run: the same seed without them ends elsewhere
    assert run(tmp_path / "c", data_dir, "--max-steps", "12") == 0
    c = load_file(tmp_path / "c" / "model" / "model.safetensors")
    assert any(not torch.equal(a[k], c[k]) for k in a if k.startswith("decoder."))


def test_prior_codes_fine_tuning_keeps_the_mixture(tmp_path, data_dir):  # noqa: F811
    _mixture_model().save_pretrained(tmp_path / "w")
    assert run(tmp_path / "ft", data_dir, "--max-steps", "2", "--init-from", str(tmp_path / "w"),
               "--gan-codes", "prior") == 0
    config = json.loads((tmp_path / "ft" / "model" / "config.json").read_text())
    assert config["prior_components"] == 2
    got = load_file(tmp_path / "ft" / "model" / "model.safetensors")
    want = load_file(tmp_path / "w" / "model.safetensors")
    assert torch.equal(got["latent_prior.means"], want["latent_prior.means"])


@pytest.mark.parametrize("flags, sentence", [
    (["--mix", "1.5"], "--mix takes a share from 0 to 1"),
    (["--mix", "0.5", "--batch-size", "31"], "--batch-size must be a multiple of 2, got 31"),
    (["--mix", "0.5", "--mode", "vae"], "a plain VAE (--mode vae) has none"),
    (["--gan-codes", "prior"], "give it with --init-from"),
])
def test_mix_and_prior_codes_flags_say_what_is_wrong(tmp_path, data_dir, flags, sentence):  # noqa: F811
    with pytest.raises(SystemExit, match=sentence.replace("(", r"\(").replace(")", r"\)")):
        run(tmp_path / "bad", data_dir, "--max-steps", "1", *flags)


def test_prior_codes_need_an_init_model_with_a_mixture(tmp_path, data_dir):  # noqa: F811
    torch.manual_seed(0)
    VAEGAN(PRESETS["tiny"]).save_pretrained(tmp_path / "w")
    with pytest.raises(SystemExit, match="samples from N\\(0, I\\)"):
        run(tmp_path / "ft", data_dir, "--max-steps", "1", "--init-from", str(tmp_path / "w"),
            "--gan-codes", "prior")
