"""Training faults, with nothing lost: a real `python -m vaegan.train` killed with SIGKILL in
the middle of an epoch resumes from its last checkpoint (which is loadable at every moment of
the run); a disk that fills up while writing a checkpoint stops the run with a sentence and
leaves the previous checkpoint as it was; a full disk or an unwritable folder fails first."""
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import vaegan.train
from test_train import data_dir, run  # noqa: F401 (data_dir is a fixture)

ROOT = Path(__file__).resolve().parents[1]


def train_cmd(out: Path, data: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vaegan.train", "--preset", "tiny", "--data-dir", str(data),
            "--batch-size", "32", "--epochs", "40", "--ckpt-every", "5", "--log-every", "5",
            "--threads", "1", "--out", str(out), *extra]


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_sigkill_mid_epoch_then_resume_continues_from_the_checkpoint(tmp_path, data_dir):  # noqa: F811
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    ckpt = killed / "checkpoint.pt"
    proc = subprocess.Popen(train_cmd(killed, data_dir), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    loads, deadline = 0, time.monotonic() + 300
    try:
        while True:  # read the checkpoint as fast as we can while it is being rewritten
            assert proc.poll() is None, "training ended before it could be killed"
            assert time.monotonic() < deadline, "no mid-epoch checkpoint after step 10 in 300 s"
            if ckpt.exists():
                c = load(ckpt)  # never half-written: every read gives a whole checkpoint
                loads += 1
                if c["step"] >= 10 and 0 < c["batch_in_epoch"] < 31:
                    break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    c = load(ckpt)  # (the run may have written one more before the signal landed)
    at, epoch, batch = c["step"], c["epoch"], c["batch_in_epoch"]
    assert loads >= 1 and at >= 10 and at == epoch * 31 + batch

    target = at + 13
    res = subprocess.run(train_cmd(killed, data_dir, "--resume", "--max-steps", str(target)),
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert f"resumed from {ckpt} at step {at} (epoch {epoch}, batch {batch})" in res.stdout
    assert f"done: {target} steps" in res.stdout
    assert load(ckpt)["step"] == target
    assert not list(killed.glob(".ckpt-*"))  # a temp file of the killed write is removed
    # the interrupted run ends exactly where an uninterrupted one does
    assert run(straight, data_dir, "--epochs", "40", "--max-steps", str(target)) == 0
    a = load_file(straight / "model" / "model.safetensors")
    b = load_file(killed / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_disk_that_fills_while_writing_a_checkpoint_keeps_the_last_one(tmp_path, data_dir,  # noqa: F811
                                                                         monkeypatch, capsys):
    real_save, calls = torch.save, []

    def save(obj, f, *a, **kw):
        calls.append(obj["step"])
        if len(calls) <= 2:
            return real_save(obj, f, *a, **kw)
        f.write(b"PK\x03\x04 half a checkpoint")  # the disk fills part-way through
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(vaegan.train.torch, "save", save)
    assert run(tmp_path, data_dir, "--max-steps", "40") == 3  # returns: no traceback
    err = capsys.readouterr().err
    assert calls == [10, 20, 30]  # (test_train's run() checkpoints every 10 steps)
    assert "error: could not write the run's files at step 30: No space left on device" in err
    assert f"The last good checkpoint, {tmp_path / 'checkpoint.pt'} (step 20), is untouched" in err
    assert "Traceback" not in err
    monkeypatch.setattr(vaegan.train.torch, "save", real_save)
    c = load(tmp_path / "checkpoint.pt")
    assert c["step"] == 20 and set(c["optimizers"]) == {"encoder", "decoder", "discriminator"}
    assert not list(tmp_path.glob(".ckpt-*"))
    assert run(tmp_path, data_dir, "--max-steps", "40", "--resume") == 0  # and it resumes
    assert load(tmp_path / "checkpoint.pt")["step"] == 40


def test_a_full_disk_fails_before_training(tmp_path, data_dir, monkeypatch):  # noqa: F811
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(vaegan.train.shutil, "disk_usage", lambda p: usage(2**30, 2**30 - 10 * 2**20, 10 * 2**20))
    with pytest.raises(SystemExit, match=r"error: only 10 MiB free in .*; need at least 50 MiB"):
        run(tmp_path / "run", data_dir)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_an_unwritable_output_folder_fails_before_training_with_a_sentence(tmp_path, data_dir):  # noqa: F811
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    res = subprocess.run(train_cmd(blocker / "run", data_dir), cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 1
    assert f"error: cannot write to the output folder {blocker / 'run'}: " in res.stderr
    assert "Traceback" not in res.stderr and "epoch" not in res.stderr


# ---- weights folders that ask for too much ------------------------------------------------------
@pytest.mark.parametrize("key, value, message", [
    ("latent_dim", 50_000_000, r"model\.safetensors: weights do not match config\.json: wrong shapes "
                               r"encoder\.head\.weight: file \(16, \d+\) vs config \(100000000, \d+\)"),
    ("disc_widths", [-4, 8], r"config\.json: invalid config \(.*negative dimension -4"),
])
def test_a_config_asking_for_absurd_layers_fails_before_allocating_them(tiny_folder, tmp_path, key, value,
                                                                        message):
    """Shapes are compared with the safetensors header on the meta device first: a config.json
    with a 50-million-dimensional code names the file instead of allocating ~10 GB."""
    import json

    from vaegan.hub import ModelLoadError, load_model
    from ui.models import load_or_fallback
    folder = tmp_path / "absurd"
    shutil.copytree(tiny_folder, folder)
    config = json.loads((folder / "config.json").read_text())
    config[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=message):
        load_model(str(folder))
    ex = load_or_fallback(str(folder), str(tiny_folder))  # the app's start: the fallback, with a notice
    assert ex.spec == str(tiny_folder) and f"Could not load `{folder}`" in ex.status
    ex.close()


def test_weights_missing_a_layer_are_refused_before_the_model_is_built(tmp_path):
    """hub.check_shapes names absent keys from the safetensors header: a config.json asking for
    huge layers the file does not hold never gets them allocated."""
    import json

    from safetensors.torch import load_file, save_file

    from vaegan.hub import ModelLoadError, load_model
    from vaegan.model import PRESETS, VAEGAN
    torch.manual_seed(0)
    VAEGAN(PRESETS["tiny"]).save_pretrained(tmp_path / "w")
    path = tmp_path / "w" / "model.safetensors"
    state = load_file(path)
    save_file({k: v for k, v in state.items() if not k.startswith("encoder.head.")}, path)
    cfg = json.loads((tmp_path / "w" / "config.json").read_text())
    (tmp_path / "w" / "config.json").write_text(json.dumps({**cfg, "latent_dim": 50_000_000}))
    # building this model for real would need ~300 GB: only the header check answers with this
    with pytest.raises(ModelLoadError, match=r"model\.safetensors: weights do not match config\.json: "
                                             r"missing keys \['encoder\.head\.bias', 'encoder\.head\.weight'\]"):
        load_model(str(tmp_path / "w"))
