"""Loading by Hub repo id and publishing, against a loopback fake of the Hub (tests/fake_hub.py).

No internet: huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE once, at
import, into huggingface_hub.constants, so the fixture points those at 127.0.0.1 and tmp_path.
"""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard, constants
from PIL import Image
from safetensors.torch import save, save_file

from fake_hub import FakeHub
from vaegan import publish
from vaegan.hub import ModelLoadError, is_commit, load_model, parse_spec
from vaegan.model import PRESETS, VAEGAN

TINY = PRESETS["tiny"]
REPO = "org/tiny"


def tiny_model(seed: int) -> VAEGAN:
    torch.manual_seed(seed)
    return VAEGAN(TINY).eval()


def model_files(seed: int, tmp_path) -> dict[str, bytes]:
    """config.json + model.safetensors of a tiny model, as the bytes a repo would hold."""
    folder = tmp_path / f"src{seed}"
    tiny_model(seed).save_pretrained(folder)
    return {name: (folder / name).read_bytes() for name in ("config.json", "model.safetensors")}


def decode(model: VAEGAN) -> torch.Tensor:
    with torch.inference_mode():
        return model.decode(torch.randn(3, TINY.latent_dim, generator=torch.Generator().manual_seed(7)))


def use_endpoint(monkeypatch, url: str) -> None:
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A running FakeHub, with huggingface_hub pointed at it, a cache in tmp_path and no token."""
    fake = FakeHub()
    with fake.serving():
        use_endpoint(monkeypatch, fake.url)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
        for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
            monkeypatch.delenv(var, raising=False)
        yield fake


def go_offline(monkeypatch, hub: FakeHub) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub.requests.clear()


# ---- spec parsing --------------------------------------------------------------------------
def test_parse_spec_revisions():
    sha = "0123456789abcdef0123456789ABCDEF01234567"
    assert parse_spec("org/name") == ("org/name", None)
    assert parse_spec("org/name@v1.0") == ("org/name", "v1.0")
    assert parse_spec("org/name@refs/pr/3") == ("org/name", "refs/pr/3")
    assert parse_spec(f"org/name@{sha}") == ("org/name", sha.lower())
    assert is_commit(sha) and not is_commit("abc1234") and not is_commit(None)
    with pytest.raises(ModelLoadError, match="empty revision"):
        parse_spec("org/name@")
    with pytest.raises(ModelLoadError, match="not a valid Hub repo id"):
        parse_spec("org/na--me")


def test_bad_specs_say_what_was_expected(tmp_path):
    with pytest.raises(ModelLoadError, match="no such weights folder"):
        load_model(str(tmp_path / "missing" / "folder"))
    with pytest.raises(ModelLoadError, match="neither a local weights folder nor a Hub repo id"):
        load_model("just-a-name")
    (tmp_path / "file.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="a file, not a weights folder"):
        load_model(str(tmp_path / "file.json"))


# ---- download, cache, offline --------------------------------------------------------------
def test_download_by_repo_id_then_offline_from_cache(hub, tmp_path, monkeypatch):
    files = model_files(0, tmp_path)
    explorer = save({"directions": torch.eye(TINY.latent_dim)})
    sha = hub.commit(REPO, {**files, "explorer.safetensors": explorer})
    want = decode(tiny_model(0))

    loaded = load_model(REPO)
    assert torch.equal(decode(loaded.model), want)
    assert (loaded.repo_id, loaded.commit, loaded.spec) == (REPO, sha, REPO)
    assert loaded.folder.parent.name == "snapshots" and loaded.folder.name == sha
    assert str(loaded.folder).startswith(str(tmp_path / "hf-cache"))
    assert loaded.explorer_file is not None and loaded.explorer_file.read_bytes() == explorer
    assert ("GET", f"/{REPO}/resolve/main/config.json") in hub.requests
    # the rest was pinned to the commit config.json came from
    assert ("GET", f"/{REPO}/resolve/{sha}/model.safetensors") in hub.requests
    # the mixin's from_pretrained goes through the same cache
    assert torch.equal(decode(VAEGAN.from_pretrained(REPO)), want)

    go_offline(monkeypatch, hub)
    again = load_model(REPO)
    assert hub.requests == []  # not a single request: everything came from the cache
    assert torch.equal(decode(again.model), want)
    assert again.commit == sha and again.explorer_file == loaded.explorer_file
    assert torch.equal(decode(load_model(f"{REPO}@{sha}").model), want)
    assert hub.requests == []


def test_hf_env_vars_in_fresh_processes_online_then_offline(tmp_path):
    """The real switches, read at import: HF_ENDPOINT + HF_HUB_CACHE, then HF_HUB_OFFLINE=1
    with the Hub gone."""
    fake = FakeHub()
    sha = fake.commit(REPO, model_files(0, tmp_path))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_HUB_CACHE=str(tmp_path / "hf-cache"), HF_TOKEN_PATH=str(tmp_path / "no-token"),
               HF_HUB_DISABLE_TELEMETRY="1", PYTHONPATH=str(Path(__file__).parents[1]))
    script = ("import sys; from vaegan.hub import load_model; l = load_model(sys.argv[1]); "
              "print(l.commit, float(l.model.decode(l.model.prior(2, None).zero_()).sum()))")

    def run(spec: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", script, spec], env={**env, **extra},
                              capture_output=True, text=True, timeout=120)

    with fake.serving():
        online = run(REPO, HF_ENDPOINT=fake.url)
        endpoint = fake.url
    assert online.returncode == 0, online.stderr
    assert online.stdout.split()[0] == sha
    offline = run(REPO, HF_ENDPOINT=endpoint, HF_HUB_OFFLINE="1")  # the fake Hub is down now
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout == online.stdout
    missing = run("org/other", HF_ENDPOINT=endpoint, HF_HUB_OFFLINE="1")
    assert "org/other: config.json is not in the local cache" in missing.stderr
    assert "HF_HUB_OFFLINE=1 forbids downloading it" in missing.stderr


def test_missing_optional_explorer_file_is_remembered(hub, tmp_path, monkeypatch):
    sha = hub.commit(REPO, model_files(0, tmp_path))
    assert load_model(REPO).explorer_file is None
    hub.requests.clear()
    assert load_model(f"{REPO}@{sha}").explorer_file is None
    assert hub.requests == []  # commit pinned + cached config/weights + cached "no explorer file"
    go_offline(monkeypatch, hub)
    assert load_model(REPO).explorer_file is None


def test_offline_without_cache_says_so(hub, tmp_path, monkeypatch):
    hub.commit(REPO, model_files(0, tmp_path))
    go_offline(monkeypatch, hub)
    with pytest.raises(ModelLoadError) as e:
        load_model(REPO)
    msg = str(e.value)
    assert REPO in msg and "config.json" in msg and "HF_HUB_OFFLINE=1" in msg and "cache" in msg
    assert hub.requests == []


def test_unreachable_hub_says_so(hub, monkeypatch):
    with socket.socket() as s:  # a port on which nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    use_endpoint(monkeypatch, f"http://127.0.0.1:{port}")
    monkeypatch.setattr(time, "sleep", lambda s: None)  # huggingface_hub retries with backoff
    with pytest.raises(ModelLoadError, match=rf"{REPO}: cannot reach the Hub at http://127.0.0.1:{port}"):
        load_model(REPO)


def test_pinned_revisions_get_their_own_weights(hub, tmp_path, monkeypatch):
    v1 = hub.commit(REPO, model_files(0, tmp_path), tags=["v1"])
    latest = hub.commit(REPO, model_files(1, tmp_path))
    dev = hub.commit(REPO, model_files(2, tmp_path), branch="dev")
    out = {seed: decode(tiny_model(seed)) for seed in (0, 1, 2)}
    assert not torch.equal(out[0], out[1])

    cases = {REPO: (1, latest), f"{REPO}@main": (1, latest), f"{REPO}@v1": (0, v1),
             f"{REPO}@{v1}": (0, v1), f"{REPO}@{v1.upper()}": (0, v1), f"{REPO}@dev": (2, dev)}
    for spec, (seed, sha) in cases.items():
        loaded = load_model(spec)
        assert torch.equal(decode(loaded.model), out[seed]), spec
        assert loaded.commit == sha, spec

    go_offline(monkeypatch, hub)
    for spec, (seed, sha) in cases.items():
        assert torch.equal(decode(load_model(spec).model), out[seed]), spec
    assert hub.requests == []


# ---- clear errors --------------------------------------------------------------------------
def test_missing_repo_revision_and_files(hub, tmp_path):
    files = model_files(0, tmp_path)
    hub.commit(REPO, files)
    hub.commit("org/no-weights", {"config.json": files["config.json"]})
    hub.commit("org/no-config", {"model.safetensors": files["model.safetensors"]})

    with pytest.raises(ModelLoadError) as e:
        load_model("org/nope")
    assert str(e.value) == ("org/nope: repository not found on the Hub, or it is private and no "
                            "token is set (set HF_TOKEN or run `hf auth login`)")
    with pytest.raises(ModelLoadError, match=r"org/tiny: revision 'nobranch' not found \(use a branch"):
        load_model(f"{REPO}@nobranch")
    with pytest.raises(ModelLoadError, match="org/tiny: revision '0{40}' not found$"):
        load_model(f"{REPO}@{'0' * 40}")
    with pytest.raises(ModelLoadError, match=r"org/no-weights: no model.safetensors in the repository "
                                             r"\(only safetensors weights are accepted\)"):
        load_model("org/no-weights")
    with pytest.raises(ModelLoadError, match="org/no-config: no config.json in the repository"):
        load_model("org/no-config")


def test_private_repo_needs_a_token(hub, tmp_path, monkeypatch):
    hub.commit(REPO, model_files(0, tmp_path), private_token="hf_right")
    with pytest.raises(ModelLoadError, match="or it is private and no token is set"):
        load_model(REPO)
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(ModelLoadError, match=r"org/tiny: the token in use is not allowed .*HTTP 403"):
        load_model(REPO)
    monkeypatch.setenv("HF_TOKEN", "hf_right")
    assert torch.equal(decode(load_model(REPO).model), decode(tiny_model(0)))


def test_corrupted_or_mismatched_safetensors_refused(hub, tmp_path):
    files = model_files(0, tmp_path)
    good = files["model.safetensors"]
    hub.commit("org/garbage", {**files, "model.safetensors": b"\x00" * 64})
    hub.commit("org/truncated", {**files, "model.safetensors": good[: len(good) // 2]})
    other = VAEGAN(TINY.__class__(latent_dim=4, widths=(4, 8), disc_widths=(4, 8)))
    hub.commit("org/mismatch", {**files, "model.safetensors": save(other.state_dict())})
    hub.commit("org/bad-explorer", {**files, "explorer.safetensors": b"not safetensors"})

    for repo in ("org/garbage", "org/truncated"):
        with pytest.raises(ModelLoadError, match=r"/model\.safetensors: not a readable safetensors file"):
            load_model(repo)
    with pytest.raises(ModelLoadError, match=r"model\.safetensors: weights do not match config\.json: "
                                             r"wrong shapes .*decoder\.fc\.0\.weight"):
        load_model("org/mismatch")
    with pytest.raises(ModelLoadError, match=r"/explorer\.safetensors: not a readable safetensors file"):
        load_model("org/bad-explorer")


def test_pickle_weights_are_refused_and_never_fetched(hub, tmp_path):
    files = model_files(0, tmp_path)
    buf = io.BytesIO()
    torch.save(tiny_model(0).state_dict(), buf)
    hub.commit("org/pickled", {"config.json": files["config.json"], "pytorch_model.bin": buf.getvalue()})
    with pytest.raises(ModelLoadError, match=r"org/pickled: no model\.safetensors in the "
                                             r"repository \(only safetensors weights are accepted; it "
                                             r"has pytorch_model\.bin, a pickle, which is refused\)"):
        load_model("org/pickled")
    assert not any(m == "GET" and p.endswith(".bin") for m, p in hub.requests)

    local = tmp_path / "local-pickle"
    local.mkdir()
    (local / "config.json").write_bytes(files["config.json"])
    (local / "pytorch_model.bin").write_bytes(buf.getvalue())
    with pytest.raises(ModelLoadError, match=r"model\.safetensors: missing \(only safetensors weights are "
                                             r"accepted; pytorch_model\.bin is a pickle, refused\)"):
        load_model(str(local))


# ---- publishing ----------------------------------------------------------------------------
def weights_folder(tmp_path, seed: int = 0):
    folder = tmp_path / "weights" / "tiny"
    tiny_model(seed).save_pretrained(folder)
    (folder / "training.json").write_text(json.dumps({
        "command": "python -m vaegan.train --preset tiny --epochs 1 --out runs/tiny", "epochs": 1,
        "steps": 10, "train_seconds": 120.0, "batch_size": 8, "lr": 2e-4, "seed": 0,
        "dataset": "fashion-mnist", "machine": "test", "threads": 1, "torch": torch.__version__}))
    (folder / "metrics.json").write_text(json.dumps({
        "n": 100, "seed": 0, "fid": 87.5, "recon_mse": 0.0123, "recon_ssim": 0.61, "sharpness_ratio": 0.4}))
    save_file({"directions": torch.eye(TINY.latent_dim)}, folder / "explorer.safetensors")
    (folder / "checkpoint.pt").write_bytes(b"optimizer state, a pickle, must not be uploaded")
    return folder


def test_publish_keeps_the_cards_baseline_comparison(hub, tmp_path, capsys):
    folder = weights_folder(tmp_path)
    base = tmp_path / "weights" / "vae"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({**TINY.to_dict(), "mode": "vae"}))
    (base / "metrics.json").write_text(json.dumps({"n": 100, "seed": 0, "fid": 175.0}))
    from vaegan.card import main as card_main
    assert card_main([str(folder), "--baseline", str(base)]) == 0
    dest = tmp_path / "staged"
    assert publish.main([str(folder), "--repo", "you/vaegan-tiny", "--dry-run", "--dry-run-dir", str(dest)]) == 0
    assert (dest / "baseline.json").read_text() == (folder / "baseline.json").read_text()
    card = (dest / "README.md").read_text()
    assert "## Against the plain-VAE baseline" in card
    assert "This model's FID is 50.0% of the plain-VAE baseline's." in card


def test_publish_dry_run_stages_a_loadable_folder_with_a_card(hub, tmp_path, capsys):
    folder = weights_folder(tmp_path)
    dest = tmp_path / "staged"
    assert publish.main([str(folder), "--repo", "you/vaegan-tiny", "--dry-run", "--dry-run-dir", str(dest)]) == 0
    out = capsys.readouterr().out
    assert str(dest) in out and "nothing uploaded" in out
    assert "not uploaded: checkpoint.pt\n" in out
    assert "  README.md  (model card, generated)" in out
    assert "  samples.png  (drawn from the model, seed 0)" in out
    staged = {"config.json", "model.safetensors", "explorer.safetensors", "training.json",
              "metrics.json", "samples.png", "README.md"}
    assert {p.name for p in dest.iterdir()} == staged
    for name in staged:  # listed with its size
        assert any(f"B  {name}" in line for line in out.splitlines()), name

    want = decode(tiny_model(0))
    assert torch.equal(decode(VAEGAN.from_pretrained(dest)), want)
    assert torch.equal(decode(load_model(str(dest)).model), want)
    assert Image.open(dest / "samples.png").size == (8 * 29 + 1, 8 * 29 + 1)  # 8x8 grid, padding 1

    card = ModelCard.load(dest / "README.md")
    d = card.data
    assert d.library_name == "vaegan" and d.license == "mit"
    assert {"vae-gan", "fashion-mnist", "pytorch_model_hub_mixin"} <= set(d.tags)
    assert d.datasets == ["zalando-datasets/fashion_mnist"]
    assert d.pipeline_tag == "unconditional-image-generation"
    assert {r.metric_type: r.metric_value for r in d.eval_results} == {
        "fid": 87.5, "mse": 0.0123, "ssim": 0.61, "sharpness_ratio": 0.4}
    assert "![Samples, codes from N(0, I)](samples.png)" in card.text
    assert "python -m vaegan.train --preset tiny --epochs 1 --out runs/tiny" in card.text
    assert f"python -m vaegan.evaluate {folder}" in card.text  # the source folder, not the staging one
    assert 'model = load_model("you/vaegan-tiny").model' in card.text

    # what was staged, once on the (fake) Hub, loads by repo id
    sha = hub.commit("you/vaegan-tiny", {p.name: p.read_bytes() for p in dest.iterdir()})
    loaded = load_model("you/vaegan-tiny")
    assert torch.equal(decode(loaded.model), want) and loaded.commit == sha
    assert loaded.explorer_file.read_bytes() == (folder / "explorer.safetensors").read_bytes()


def test_publish_refuses_a_broken_folder(tmp_path, capsys):
    folder = weights_folder(tmp_path)
    save_file({"encoder.head.weight": torch.zeros(2, 2)}, folder / "model.safetensors")
    dest = tmp_path / "staged"
    assert publish.main([str(folder), "--repo", "you/x", "--dry-run", "--dry-run-dir", str(dest)]) == 2
    err = capsys.readouterr().err
    assert f"{folder / 'model.safetensors'}: weights do not match config.json" in err
    assert "nothing uploaded" in err and not dest.exists()

    folder = weights_folder(tmp_path / "b")
    (folder / "metrics.json").write_text("{not json")
    assert publish.main([str(folder), "--repo", "you/x", "--dry-run", "--dry-run-dir", str(dest)]) == 2
    assert f"{folder / 'metrics.json'}: not valid JSON" in capsys.readouterr().err

    dest.mkdir()
    (dest / "old.txt").write_text("x")
    folder = weights_folder(tmp_path / "c")
    assert publish.main([str(folder), "--repo", "you/x", "--dry-run", "--dry-run-dir", str(dest)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert publish.main([str(folder), "--repo", "not a repo", "--dry-run"]) == 2
    assert "not a valid Hub repo id" in capsys.readouterr().err


class RecordingApi:
    """Stands in for HfApi: records the calls and what the staged folder held at upload time."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", repo_id, kw))

    def create_branch(self, repo_id, **kw):
        self.calls.append(("create_branch", repo_id, kw))

    def upload_folder(self, *, repo_id, folder_path, **kw):
        self.staged = sorted(p.name for p in Path(folder_path).iterdir())
        self.calls.append(("upload_folder", repo_id, kw))

        class Info:
            oid = "a" * 40
            commit_url = f"https://hub.example/{repo_id}/commit/{'a' * 40}"
        return Info()


def test_publish_creates_the_repo_and_uploads_the_staged_folder(tmp_path, capsys):
    folder = weights_folder(tmp_path)
    api = RecordingApi()
    rc = publish.main([str(folder), "--repo", "you/vaegan-tiny", "--private", "--revision", "v2",
                       "--commit-message", "first"], api=api)
    assert rc == 0
    (c1, r1, kw1), (c2, _, kw2), (c3, r3, kw3) = api.calls
    assert (c1, r1, kw1) == ("create_repo", "you/vaegan-tiny",
                             {"repo_type": "model", "private": True, "exist_ok": True})
    assert (c2, kw2["branch"], kw2["exist_ok"]) == ("create_branch", "v2", True)
    assert (c3, r3, kw3["revision"], kw3["commit_message"]) == ("upload_folder", "you/vaegan-tiny", "v2", "first")
    assert "explorer.safetensors" in kw3["delete_patterns"]  # a stale one would be removed
    assert api.staged == ["README.md", "config.json", "explorer.safetensors", "metrics.json",
                          "model.safetensors", "samples.png", "training.json"]
    out = capsys.readouterr().out
    assert f'load_model("you/vaegan-tiny@{"a" * 40}")' in out


def test_publish_without_token_refuses_before_any_upload(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    assert publish.main([str(weights_folder(tmp_path)), "--repo", "you/x"]) == 2
    assert "no Hugging Face token" in capsys.readouterr().err
