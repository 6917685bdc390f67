"""The networks, the Hub mixin round trip, determinism and gradient routing (tiny configs)."""
import json

import pytest
import torch

from vaegan.hub import ModelLoadError, load_model
from vaegan.model import VAEGAN, DiagonalGaussian, VAEGANConfig
from vaegan.train import make_optimizers, routed_grads, train_step, vaegan_losses

CONFIGS = {
    "gray28": VAEGANConfig(image_size=28, channels=1, latent_dim=8, widths=(4, 8), disc_widths=(4, 8)),
    "rgb64": VAEGANConfig(image_size=64, channels=3, latent_dim=16, widths=(4, 8, 8), disc_widths=(4, 8, 8),
                          disc_norm="none"),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_shapes_and_dtypes(name):
    c = CONFIGS[name]
    torch.manual_seed(0)
    m = VAEGAN(c).eval()
    x = torch.rand(5, c.channels, c.image_size, c.image_size)
    post = m.encode(x)
    assert isinstance(post, DiagonalGaussian)
    assert post.mean.shape == post.logvar.shape == (5, c.latent_dim)
    assert post.kl().shape == (5, c.latent_dim) and (post.kl() >= 0).all()
    z = post.sample(torch.Generator().manual_seed(0))
    out = m.decode(z)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 1
    assert m.sample(3, torch.Generator().manual_seed(1)).shape == (3, c.channels, c.image_size, c.image_size)
    assert m.reconstruct(x).shape == x.shape
    logits, feats = m.discriminator(x)
    assert logits.shape == (5,) and feats.dim() == 4


def test_kl_matches_closed_form():
    mean, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    kl = DiagonalGaussian(mean, logvar).kl()
    expected = 0.5 * (mean**2 + logvar.exp() - 1 - logvar)
    assert torch.allclose(kl, expected)
    assert kl[0, 0].item() == pytest.approx(0.5)
    # zero for the prior itself
    assert DiagonalGaussian(torch.zeros(1, 3), torch.zeros(1, 3)).kl().abs().max() == 0


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    m = VAEGAN(CONFIGS["gray28"]).eval()
    m.save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in tmp_path.iterdir()}
    m2 = VAEGAN.from_pretrained(tmp_path)
    assert m2.config == m.config
    x = torch.rand(4, 1, 28, 28)
    z = torch.randn(4, 8)
    assert torch.equal(m.decode(z), m2.decode(z))
    assert torch.equal(m.encode(x).mean, m2.encode(x).mean)
    loaded = load_model(str(tmp_path))
    assert torch.equal(loaded.model.decode(z), m.decode(z))


def test_mismatched_weights_name_the_key(tmp_path):
    VAEGAN(CONFIGS["gray28"]).save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["latent_dim"] = 9  # weights were saved for 8
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"model.safetensors.*wrong shapes.*decoder.fc.0.weight"):
        VAEGAN.from_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="wrong shapes"):
        load_model(str(tmp_path))


def test_unknown_config_key_is_an_error(tmp_path):
    VAEGAN(CONFIGS["gray28"]).save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["dropout"] = 0.1
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=r"config.json.*unknown keys \['dropout'\]"):
        load_model(str(tmp_path))


def test_vae_weights_do_not_load_into_vaegan_config(tmp_path):
    c = CONFIGS["gray28"]
    VAEGAN(VAEGANConfig(**{**c.to_dict(), "mode": "vae"})).save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["mode"] = "vaegan"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="missing keys.*discriminator"):
        VAEGAN.from_pretrained(tmp_path)


def test_seed_determinism():
    m = VAEGAN(CONFIGS["gray28"]).eval()
    a = m.sample(6, torch.Generator().manual_seed(42), temperature=0.8)
    b = m.sample(6, torch.Generator().manual_seed(42), temperature=0.8)
    c = m.sample(6, torch.Generator().manual_seed(43), temperature=0.8)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_temperature_scales_the_prior():
    m = VAEGAN(CONFIGS["gray28"])
    z1 = m.prior(1000, torch.Generator().manual_seed(0), 1.0)
    z2 = m.prior(1000, torch.Generator().manual_seed(0), 0.5)
    assert torch.allclose(z2, 0.5 * z1)
    assert z1.std().item() == pytest.approx(1.0, abs=0.05)


def test_gan_term_gives_no_gradient_to_the_encoder():
    """Changing only the discriminator's head changes L_GAN but not L_prior + L_llike:
    the encoder's routed gradient must stay the same, the decoder's must not."""
    torch.manual_seed(0)
    m = VAEGAN(CONFIGS["gray28"])
    m.discriminator.eval()  # freeze spectral norm's power iteration between the two passes
    x = torch.rand(8, 1, 28, 28)
    g1, l1 = routed_grads(m, x, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in m.discriminator.head.parameters():
            p.mul_(-3.0).add_(0.5)
    g2, l2 = routed_grads(m, x, torch.Generator().manual_seed(0))
    assert l1.gan_gen != pytest.approx(l2.gan_gen) and l1.llike == pytest.approx(l2.llike)
    for a, b in zip(g1["encoder"], g2["encoder"]):
        assert torch.allclose(a, b, atol=1e-6)
    assert any(not torch.allclose(a, b) for a, b in zip(g1["decoder"], g2["decoder"]))
    # and the encoder does get a gradient (from L_prior + L_llike)
    assert all(g is not None and g.abs().sum() > 0 for g in g1["encoder"])


def test_beta_weighs_the_kl_term_in_the_encoders_loss_alone():
    """beta scales L_prior in the encoder's loss only: its gradient is beta * grad(L_prior) +
    grad(L_llike), taken from two runs whose difference is beta; decoder and discriminator
    gradients do not move. The same holds for a plain VAE."""
    import dataclasses
    for config in (CONFIGS["gray28"], dataclasses.replace(CONFIGS["gray28"], mode="vae")):
        grads = {}
        for beta in (1.0, 0.25):
            torch.manual_seed(0)
            m = VAEGAN(dataclasses.replace(config, beta=beta))
            if m.discriminator is not None:
                m.discriminator.eval()
            x = torch.rand(8, 1, 28, 28)
            grads[beta], _ = routed_grads(m, x, torch.Generator().manual_seed(0))
            if beta == 1.0:  # grad(L_prior) alone, from the same forward pass
                post = m.encode(x)
                kl = torch.autograd.grad(post.kl().sum(1).mean(), list(m.encoder.parameters()),
                                         allow_unused=True)
        for g1, g25, k in zip(grads[1.0]["encoder"], grads[0.25]["encoder"], kl):
            k = torch.zeros_like(g1) if k is None else k
            assert torch.allclose(g25, g1 - 0.75 * k, atol=1e-5)
        assert any(k is not None and k.abs().sum() > 0 for k in kl)
        for net in grads[1.0]:
            if net != "encoder":
                for a, b in zip(grads[1.0][net], grads[0.25][net]):
                    assert torch.allclose(a, b, atol=1e-6)


def test_beta_is_a_positive_number_and_config_files_without_it_load():
    from vaegan.model import VAEGANConfig
    for bad in (0, -1, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match="beta must be a finite number > 0"):
            VAEGANConfig(beta=bad)
    written = VAEGANConfig().to_dict()
    assert "beta" not in written  # 1, as before the key existed: older versions load it
    assert VAEGANConfig.from_dict(written).beta == 1.0
    assert VAEGANConfig.from_dict({**written, "beta": 0.5}).beta == 0.5
    assert VAEGANConfig(beta=0.5).to_dict()["beta"] == 0.5


def test_discriminator_step_does_not_move_encoder_or_decoder():
    torch.manual_seed(0)
    m = VAEGAN(CONFIGS["gray28"])
    opts = make_optimizers(m, 1e-3)
    x = torch.rand(8, 1, 28, 28)
    grads, _ = routed_grads(m, x, torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in m.state_dict().items()}  # after the forward pass (BN stats)
    for p, g in zip(m.discriminator.parameters(), grads["discriminator"]):
        p.grad = g
    opts["discriminator"].step()
    after = m.state_dict()
    for k in before:
        if k.startswith(("encoder.", "decoder.")):
            assert torch.equal(before[k], after[k]), k
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("discriminator."))
    # the raw discriminator loss does depend on the decoder (through the fakes): the
    # routing, not the graph, is what keeps it out
    per_net, _ = vaegan_losses(m, x, torch.Generator().manual_seed(0))
    dec = list(m.decoder.parameters())
    raw = torch.autograd.grad(per_net["discriminator"], dec, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in raw)


def test_split_discriminator_calls_equal_one_call_on_the_batch(monkeypatch):
    """vaegan_losses runs the discriminator on real, reconstructed and prior images in three
    calls (cheaper gradients). Losses and routed gradients must equal Algorithm 1 with one
    call on the concatenation, spectral norm's power iteration included (one per step)."""
    from copy import deepcopy

    from vaegan import train

    torch.manual_seed(0)
    m = VAEGAN(CONFIGS["gray28"])  # spectral norm, training mode: u moves on each weight use
    ref = deepcopy(m)
    x = torch.rand(8, 1, 28, 28)
    grads, logged = routed_grads(m, x, torch.Generator().manual_seed(3))
    monkeypatch.setattr(train, "discriminate", train.discriminate_at_once)
    want, expected = routed_grads(ref, x, torch.Generator().manual_seed(3))
    assert logged.llike == pytest.approx(expected.llike, rel=1e-5)
    assert logged.gan_gen == pytest.approx(expected.gan_gen, rel=1e-5)
    assert logged.gan_dis == pytest.approx(expected.gan_dis, rel=1e-5)
    for name in ("encoder", "decoder", "discriminator"):
        for g, w in zip(grads[name], want[name], strict=True):
            assert torch.allclose(g, w, rtol=1e-4, atol=1e-6), name
    # one power iteration, as one call makes: the spectral-norm vectors moved alike
    for k, v in ref.discriminator.state_dict().items():
        assert torch.allclose(m.discriminator.state_dict()[k], v, atol=1e-6), k


def test_full_step_moves_all_networks():
    torch.manual_seed(0)
    m = VAEGAN(CONFIGS["gray28"])
    opts = make_optimizers(m, 1e-3)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    logged = train_step(m, opts, torch.rand(8, 1, 28, 28), torch.Generator().manual_seed(1))
    assert logged.gan_dis > 0 and logged.llike > 0
    for prefix in ("encoder.", "decoder.", "discriminator."):
        assert any(not torch.equal(before[k], v) for k, v in m.state_dict().items() if k.startswith(prefix))
    assert all(p.grad is None for p in m.parameters())


def test_plain_vae_mode_has_no_discriminator():
    c = VAEGANConfig(**{**CONFIGS["gray28"].to_dict(), "mode": "vae"})
    m = VAEGAN(c)
    assert m.discriminator is None
    opts = make_optimizers(m, 1e-3)
    assert set(opts) == {"encoder", "decoder"}
    logged = train_step(m, opts, torch.rand(8, 1, 28, 28), torch.Generator().manual_seed(0))
    assert logged.gan_gen == 0 and logged.llike > 0


def test_config_validation():
    with pytest.raises(ValueError, match="divisible"):
        VAEGANConfig(image_size=30, widths=(4, 8, 8))
    with pytest.raises(ValueError, match="mode"):
        VAEGANConfig(mode="gan")
    for bad in ("0.2", float("nan"), float("inf"), -1.0, None, True):
        with pytest.raises(ValueError, match="gamma must be a finite number >= 0"):
            VAEGANConfig(gamma=bad)
    assert VAEGANConfig(gamma=1).gamma == 1.0 and isinstance(VAEGANConfig(gamma=1).gamma, float)


def test_bf16_step_follows_the_fp32_step():
    """--precision bf16: the networks' passes really run in bfloat16, the float32 weights take
    float32 gradients, and those point where the float32 step's do (same model, same batch)."""
    from vaegan import train

    torch.manual_seed(0)
    m = VAEGAN(CONFIGS["gray28"])
    x = torch.rand(16, 1, 28, 28)
    seen = []
    hook = m.decoder.fc[0].register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    with train.arithmetic("bf16", "cpu"):  # what train_step runs routed_grads in
        low, low_logged = routed_grads(m, x, torch.Generator().manual_seed(0))
    hook.remove()
    assert seen and set(seen) == {torch.bfloat16}
    full, full_logged = routed_grads(m, x, torch.Generator().manual_seed(0))
    for name in ("llike", "prior", "gan_gen", "gan_dis"):
        assert getattr(low_logged, name) == pytest.approx(getattr(full_logged, name), rel=0.02), name
    for name in ("encoder", "decoder", "discriminator"):
        a = torch.cat([g.flatten() for g in full[name] if g is not None])
        b = torch.cat([g.flatten() for g in low[name] if g is not None])
        assert b.dtype == torch.float32
        assert torch.nn.functional.cosine_similarity(a, b, dim=0) > 0.99, name
    # train_step takes the precision by name and refuses others
    opts = make_optimizers(m, 1e-3)
    seen.clear()
    hook = m.decoder.fc[0].register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    train_step(m, opts, x, torch.Generator().manual_seed(1), precision="bf16")
    assert seen == [torch.bfloat16] and all(p.dtype == torch.float32 for p in m.parameters())
    hook.remove()
    with pytest.raises(ValueError, match="precision must be one of"):
        train_step(m, opts, x, torch.Generator().manual_seed(1), precision="fp16")
    assert train.PRECISIONS == ("fp32", "bf16")
