"""The training loop on the shipped 1,000-image sample: loss goes down, checkpoints resume
exactly, the same seed gives the same run, a non-finite loss stops cleanly."""
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vaegan.train import check_output_dir, main

SAMPLE = Path(__file__).parent / "data" / "fashion-mnist-sample"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The shipped test-set sample, also presented as the training split."""
    d = tmp_path_factory.mktemp("fmnist")
    for kind in ("images-idx3", "labels-idx1"):
        src = SAMPLE / f"t10k-{kind}-ubyte.gz"
        (d / f"t10k-{kind}-ubyte.gz").symlink_to(src)
        (d / f"train-{kind}-ubyte.gz").symlink_to(src)
    return d


def run(out, data_dir, *extra):
    args = ["--preset", "tiny", "--data-dir", str(data_dir), "--batch-size", "32",
            "--epochs", "5", "--ckpt-every", "10", "--log-every", "5", "--threads", "1",
            "--out", str(out), *extra]
    return main(args)


def logged(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_vae_training_lowers_the_loss(tmp_path, data_dir):
    assert run(tmp_path, data_dir, "--mode", "vae", "--max-steps", "60", "--lr", "2e-3") == 0
    rows = [r for r in logged(tmp_path) if "epoch_end" not in r]
    first = rows[0]["prior"] + rows[0]["llike"]
    last = rows[-1]["prior"] + rows[-1]["llike"]
    assert last < 0.8 * first, (first, last)
    # an epoch boundary was crossed (31 batches of 32 per epoch): grids and weights written
    assert (tmp_path / "samples_e001.png").exists() and (tmp_path / "recon_e001.png").exists()
    assert (tmp_path / "model" / "model.safetensors").exists()


def test_bf16_training_lowers_the_loss_and_is_recorded(tmp_path, data_dir):
    """--precision bf16 learns as fp32 does, and the run keeps it: in the checkpoint (which
    --resume reads) and in training.json."""
    assert run(tmp_path, data_dir, "--mode", "vae", "--max-steps", "60", "--lr", "2e-3",
               "--precision", "bf16") == 0
    rows = [r for r in logged(tmp_path) if "epoch_end" not in r]
    first = rows[0]["prior"] + rows[0]["llike"]
    last = rows[-1]["prior"] + rows[-1]["llike"]
    assert last < 0.8 * first, (first, last)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["args"]["precision"] == "bf16"
    info = json.loads((tmp_path / "model" / "training.json").read_text())
    assert info["precision"] == "bf16"
    assert load_file(tmp_path / "model" / "model.safetensors")["decoder.fc.0.weight"].dtype == torch.float32


def test_vaegan_training_runs_and_learns_reconstruction(tmp_path, data_dir):
    assert run(tmp_path, data_dir, "--max-steps", "40", "--lr", "2e-3") == 0
    rows = [r for r in logged(tmp_path) if "epoch_end" not in r]
    assert {"prior", "llike", "gan_gen", "gan_dis"} <= set(rows[0])
    assert all(r["gan_dis"] > 0 for r in rows)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 40 and set(ckpt["optimizers"]) == {"encoder", "decoder", "discriminator"}


def test_resume_continues_exactly(tmp_path, data_dir):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run(straight, data_dir, "--max-steps", "40") == 0
    assert run(split, data_dir, "--max-steps", "23") == 0  # stops mid-epoch
    ckpt = torch.load(split / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 23 and ckpt["epoch"] == 0 and ckpt["batch_in_epoch"] == 23
    assert run(split, data_dir, "--max-steps", "40", "--resume") == 0
    ckpt = torch.load(split / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 40
    a = load_file(straight / "model" / "model.safetensors")
    b = load_file(split / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_same_seed_same_run_other_seed_differs(tmp_path, data_dir):
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert run(tmp_path / name, data_dir, "--max-steps", "31", "--seed", seed) == 0
    a, b, c = (load_file(tmp_path / n / "model" / "model.safetensors") for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tmp_path, data_dir, capsys):
    rc = run(tmp_path, data_dir, "--max-steps", "40", "--nan-at-step", "15")
    assert rc == 2
    err = capsys.readouterr().err
    assert "non-finite loss" in err and "at step 15" in err and "checkpoint" in err
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 10  # the last good one, written before the fault
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert not list(tmp_path.glob(".ckpt-*"))  # no half-written temp file left


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, data_dir):
    with pytest.raises(SystemExit, match="--resume given but .*checkpoint.pt does not exist"):
        run(tmp_path, data_dir, "--resume")


def test_unwritable_output_folder_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit, match="cannot write to the output folder"):
        check_output_dir(blocker / "run")


def test_fine_tune_from_a_weights_folder(tmp_path, data_dir):
    assert run(tmp_path / "base", data_dir, "--max-steps", "31") == 0
    base = load_file(tmp_path / "base" / "model" / "model.safetensors")
    # one step of fine-tuning from the exported folder starts from exactly those weights
    assert run(tmp_path / "ft", data_dir, "--max-steps", "1", "--lr", "1e-9",
               "--init-from", str(tmp_path / "base" / "model")) == 0
    ft = load_file(tmp_path / "ft" / "model" / "model.safetensors")
    assert all(torch.allclose(base[k].float(), ft[k].float(), atol=1e-5) for k in base
               if "running" not in k and "num_batches" not in k and "_u" not in k and "_v" not in k)
    with pytest.raises(SystemExit, match="--init-from: .*nowhere: no such weights folder"):
        run(tmp_path / "bad", data_dir, "--init-from", str(tmp_path / "nowhere"))


def _decoder(state):
    return {k: v for k, v in state.items() if k.startswith("decoder.")}


def test_ema_decoder_is_exported_and_resumes_exactly(tmp_path, data_dir):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run(straight, data_dir, "--max-steps", "40", "--ema", "0.9") == 0
    shipped = load_file(straight / "model" / "model.safetensors")
    live = load_file(straight / "model_live" / "model.safetensors")
    assert shipped.keys() == live.keys()
    # encoder and discriminator are the live ones; the decoder is the average, which lags
    for k in shipped:
        if not k.startswith("decoder."):
            assert torch.equal(shipped[k], live[k]), k
    moved = [k for k in _decoder(shipped) if shipped[k].is_floating_point()
             and not torch.allclose(shipped[k], live[k])]
    assert len(moved) >= len(_decoder(shipped)) // 2, moved
    info = json.loads((straight / "model" / "training.json").read_text())
    assert info["ema"] == 0.9
    # the average is in the checkpoint: stopping and resuming gives the same shipped weights
    assert run(split, data_dir, "--max-steps", "23", "--ema", "0.9") == 0
    assert "ema" in torch.load(split / "checkpoint.pt", weights_only=True)
    assert run(split, data_dir, "--max-steps", "40", "--resume") == 0
    resumed = load_file(split / "model" / "model.safetensors")
    for k in shipped:
        assert torch.equal(shipped[k], resumed[k]), k


def test_ema_with_almost_no_memory_is_the_live_decoder(tmp_path, data_dir):
    assert run(tmp_path, data_dir, "--max-steps", "12", "--ema", "1e-9") == 0
    shipped = load_file(tmp_path / "model" / "model.safetensors")
    live = load_file(tmp_path / "model_live" / "model.safetensors")
    for k in _decoder(shipped):
        assert torch.allclose(shipped[k].float(), live[k].float(), atol=1e-6), k


def test_discriminator_widths_and_learning_rate_flags(tmp_path, data_dir):
    assert run(tmp_path, data_dir, "--max-steps", "3", "--disc-widths", "6,12",
               "--disc-lr", "5e-4", "--lr", "1e-4") == 0
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["disc_widths"] == [6, 12]
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    lrs = {name: opt["param_groups"][0]["lr"] for name, opt in ckpt["optimizers"].items()}
    assert lrs == {"encoder": 1e-4, "decoder": 1e-4, "discriminator": 5e-4}
    with pytest.raises(SystemExit, match="--disc-widths takes comma-separated integers"):
        run(tmp_path / "bad", data_dir, "--disc-widths", "64;128")
    with pytest.raises(SystemExit, match="--ema takes a decay between 0 and 1"):
        run(tmp_path / "bad2", data_dir, "--ema", "1.5")


def test_beta_flag_is_written_to_the_config_and_kept_by_a_fine_tune(tmp_path, data_dir):
    assert run(tmp_path / "a", data_dir, "--max-steps", "2", "--beta", "0.5") == 0
    assert json.loads((tmp_path / "a" / "model" / "config.json").read_text())["beta"] == 0.5
    assert run(tmp_path / "b", data_dir, "--max-steps", "2", "--init-from",
               str(tmp_path / "a" / "model"), "--beta", "0.25") == 0
    assert json.loads((tmp_path / "b" / "model" / "config.json").read_text())["beta"] == 0.25
    with pytest.raises(SystemExit, match="error: beta must be a finite number > 0"):
        run(tmp_path / "bad", data_dir, "--beta", "0")


def test_fine_tuning_starts_without_a_fitted_prior(tmp_path, data_dir):
    """Training draws z_p from N(0, I); a mixture fitted to the old encoder would go stale."""
    import numpy as np

    from vaegan.model import PRESETS, VAEGAN
    from vaegan.prior import fit_mixture, with_prior
    torch.manual_seed(0)
    codes = np.random.default_rng(0).normal(size=(100, 8))
    with_prior(VAEGAN(PRESETS["tiny"]), fit_mixture(codes, 2)).save_pretrained(tmp_path / "w")
    assert run(tmp_path / "ft", data_dir, "--max-steps", "1", "--init-from", str(tmp_path / "w")) == 0
    assert "prior_components" not in json.loads((tmp_path / "ft" / "model" / "config.json").read_text())
    assert not [k for k in load_file(tmp_path / "ft" / "model" / "model.safetensors")
                if k.startswith("latent_prior.")]


def test_time_limit_stops_exports_and_resumes(tmp_path, data_dir, monkeypatch, capsys):
    import itertools

    import vaegan.train as tr
    clock = itertools.count()  # a fake wall clock: one second per reading
    monkeypatch.setattr(tr.time, "time", lambda: float(next(clock)))
    assert run(tmp_path / "r", data_dir, "--time-limit", "0.5") == 0  # 30 "seconds"
    assert "stopped at the time limit of 0.5 min" in capsys.readouterr().err
    info = json.loads((tmp_path / "r" / "model" / "training.json").read_text())
    ckpt = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    assert 0 < info["steps"] == ckpt["step"] < 5 * 31  # stopped early, all of it saved
    assert 30 <= info["train_seconds"] < 40 and ckpt["elapsed_s"] >= 30
    assert run(tmp_path / "r", data_dir, "--resume") == 0  # no limit now: runs to the end
    assert json.loads((tmp_path / "r" / "model" / "training.json").read_text())["steps"] == 5 * 31


@pytest.mark.parametrize("bad", ["0", "-5", "nan", "inf"])
def test_time_limit_must_be_a_positive_number_of_minutes(tmp_path, data_dir, bad, capsys):
    with pytest.raises(SystemExit):
        run(tmp_path / "r", data_dir, "--time-limit", bad)
    assert "--time-limit takes a number of minutes > 0" in capsys.readouterr().err
    assert not (tmp_path / "r" / "model").exists()
