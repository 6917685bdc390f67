"""Several models in the app: bundled folders and Hub repo ids (through the loopback fake Hub
in tests/fake_hub.py), loaded lazily and at most once; a Hub model that cannot be had, or a
broken --model folder, leaves the app serving the bundled model with a sentence saying why.
The app runs on 127.0.0.1 and is called through gradio_client, as an API user would."""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import httpx
from gradio_client import Client
from gradio_client.exceptions import AppError
from huggingface_hub.utils import _http
from PIL import Image

from conftest import free_port, hub_at
from conftest import serving as conftest_serving
from fake_hub import FakeHub
from ui import models as models_module
from vaegan.explorer import Explorer
from ui.models import ModelLoading, Models, open_models
from ui.page import create_demo
from vaegan.hub import is_hub_spec
from vaegan.hub import ModelLoadError, load_model

REPO = "org/tiny"


# ---- helpers ---------------------------------------------------------------------------------
@contextmanager
def serving(models: Models):
    """The app for these models on a free loopback port; on exit every load has ended (so no
    background thread outlives the test's Hub settings) and the server is closed."""
    try:
        with conftest_serving(create_demo(models)) as url:
            yield url
    finally:
        models.close(timeout=60)


def client(url: str, tmp_path: Path) -> Client:
    return Client(url, verbose=False, download_files=str(tmp_path), analytics_enabled=False)


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.copy())


def status_text(url: str) -> str:
    """The rendered value of the status line (elem_id "status") as the page gets it."""
    config = httpx.get(url + "config", timeout=10).json()
    [value] = [c["props"]["value"] for c in config["components"]
               if c.get("props", {}).get("elem_id") == "status"]
    return value


def sample_with(c: Client, model: str | None, seed: int = 3, timeout: float = 60):
    """/sample with this model, asking again while the app says it is still loading."""
    args = (seed, 1.0, 4) if model is None else (seed, 1.0, 4, model)
    end = time.monotonic() + timeout
    while True:
        try:
            return c.predict(*args, api_name="/sample")
        except AppError as e:
            if "still loading" not in str(e) or time.monotonic() > end:
                raise
            time.sleep(0.2)


@pytest.fixture
def hub(tmp_path):
    fake = FakeHub()
    with fake.serving(), hub_at(fake.url, tmp_path / "hf-cache"):
        yield fake


@pytest.fixture
def bundled(tmp_path, tiny_folder, monkeypatch):
    """ui.models.WEIGHTS -> tmp weights/ holding the tiny model as the bundled default, a second
    model folder, and a folder that is not a model; ui.models.DEFAULT_MODEL relative to the cwd."""
    weights = tmp_path / "weights"
    shutil.copytree(tiny_folder, weights / "fashion-mnist")
    shutil.copytree(tiny_folder, weights / "b-copy")
    (weights / "notes").mkdir()
    (weights / "notes" / "config.json").write_text("{}")  # no model.safetensors: not listed
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(models_module, "WEIGHTS", weights)
    monkeypatch.setattr(models_module, "DEFAULT_MODEL", os.path.relpath(weights / "fashion-mnist"))
    monkeypatch.delenv("VAEGAN_MODEL", raising=False)
    monkeypatch.delenv("VAEGAN_MODELS", raising=False)
    return weights


@pytest.fixture(scope="module")
def want(tiny_folder, tmp_path_factory, tiny_repo):
    """What the bundled model and the Hub repo's model give for /sample(3, 1.0, 4)."""
    repo = tmp_path_factory.mktemp("repo-copy")
    for name, data in tiny_repo.items():
        (repo / name).write_bytes(data)
    out = {}
    for key, folder in (("bundled", tiny_folder), ("hub", repo)):
        ex = Explorer(load_model(str(folder)))
        out[key] = np.asarray(ex.sample(3, 1.0, 4).image)
        ex.close()
    assert not np.array_equal(out["bundled"], out["hub"])
    return out


# ---- the list of models ----------------------------------------------------------------------
def test_the_list_holds_bundled_folders_then_flag_then_env_and_asks_no_network(bundled, hub, monkeypatch):
    monkeypatch.setenv("VAEGAN_MODELS", f" {REPO}@v1, org/missing,,")
    models = open_models(extra=["org/other", REPO + "@v1"])
    try:
        assert models.specs == ["weights/fashion-mnist", "weights/b-copy", "org/other",
                                f"{REPO}@v1", "org/missing"]
        assert models.default.spec == "weights/fashion-mnist" and models.preferred is None
        create_demo(models)
        assert hub.requests == []  # nothing at startup touched the (fake) Hub
    finally:
        models.close()


def test_a_hub_model_given_as_the_model_opens_later_never_at_startup(bundled, hub, tiny_repo):
    hub.commit(REPO, tiny_repo)
    models = open_models(REPO)
    try:
        assert models.default.spec == "weights/fashion-mnist"  # the page is built on this
        assert models.preferred == REPO and models.specs[:2] == ["weights/fashion-mnist", REPO]
        create_demo(models)
        assert hub.requests == [] and not models.ready(REPO)
        models.preload()
        models.wait(60)
        assert models.ready(REPO) and ("GET", f"/{REPO}/resolve/main/config.json") in hub.requests
    finally:
        models.close()


def test_importing_the_app_with_hub_models_configured_asks_no_network(hub, tiny_repo, tmp_path):
    """The module-level demo (what Spaces and the `gradio` command import), in a fresh process
    whose huggingface_hub reads HF_ENDPOINT at import."""
    hub.commit(REPO, tiny_repo)
    root = Path(models_module.__file__).parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "VAEGAN"))}
    env.update(HF_ENDPOINT=hub.url, HF_HUB_CACHE=str(tmp_path / "hf"), PYTHONPATH=str(root),
               VAEGAN_MODEL=REPO, VAEGAN_MODELS="org/a, org/b@v1", GRADIO_ANALYTICS_ENABLED="False")
    script = "import app; m = app.MODELS; print(m.specs, m.preferred, m.ready(m.preferred))"
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("] ")[1].split() == [REPO, "False"]
    specs = ast.literal_eval(out.stdout.split("] ")[0] + "]")
    # the bundled model, the Hub --model, the other folders under weights/, then VAEGAN_MODELS
    assert specs[1] == REPO and specs[-2:] == ["org/a", "org/b@v1"]
    assert len(specs) == 4 + len([d for d in (root / "weights").iterdir() if d.is_dir()]) - 1
    assert hub.requests == []


def test_is_hub_spec_asks_no_network(bundled):
    assert is_hub_spec("org/name") and is_hub_spec("org/name@v1")
    assert not is_hub_spec("weights/typo")  # weights/ is a folder here: a missing local folder
    assert not is_hub_spec("weights/fashion-mnist") and not is_hub_spec("./x/y")
    assert not is_hub_spec("just-a-name")


# ---- loading once, thread-safe, failures remembered --------------------------------------------
def test_each_model_loads_at_most_once_under_concurrent_requests(explorer):
    calls, gate = [], threading.Event()

    def slow_loader(spec):
        calls.append(spec)
        gate.wait(10)
        return explorer

    models = Models(explorer, ["org/a"], loader=slow_loader)
    got, threads = [], [threading.Thread(target=lambda: got.append(models.get("org/a")))
                        for _ in range(8)]
    for t in threads:
        t.start()
    with pytest.raises(ModelLoading, match="'org/a' is still loading"):
        models.get("org/a", timeout=0.05)
    gate.set()
    for t in threads:
        t.join(10)
    assert calls == ["org/a"] and len(got) == 8 and all(g is explorer for g in got)
    assert models.get("org/a", timeout=0) is explorer
    with pytest.raises(ValueError, match=r"model must be one of \[.*'org/a'\], got 'org/b'"):
        models.get("org/b")


def test_a_failed_load_is_remembered_then_retried(explorer, monkeypatch):
    calls = []

    def failing(spec):
        calls.append(spec)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        raise ModelLoadError(f"{spec}: repository not found on the Hub")

    models = Models(explorer, ["org/gone"], loader=failing)
    for _ in range(2):
        with pytest.raises(ModelLoadError, match="^org/gone: repository not found on the Hub$"):
            models.get("org/gone")
    assert calls == ["org/gone"]  # remembered, not asked again
    monkeypatch.setattr(models_module, "RETRY_S", 0.0)
    time.sleep(0.01)
    with pytest.raises(ModelLoadError, match="^org/gone: repository not found"):
        models.get("org/gone")
    time.sleep(0.01)
    with pytest.raises(ModelLoadError, match=r"^org/gone: loading failed \(RuntimeError: disk on fire\)$"):
        models.get("org/gone")
    assert len(calls) == 3
    assert models.get() is explorer and models.get("") is explorer  # the default


# ---- the app with Hub models -------------------------------------------------------------------
def test_a_hub_model_is_loaded_when_first_asked_for_and_served(bundled, hub, tiny_repo, want, tmp_path):
    sha = hub.commit(REPO, tiny_repo, tags=["v1"])
    models = open_models(extra=[f"{REPO}@v1"])
    with serving(models) as url:
        c = client(url, tmp_path)
        assert hub.requests == []
        assert np.array_equal(pixels(sample_with(c, None)), want["bundled"])  # the default
        assert np.array_equal(pixels(sample_with(c, f"{REPO}@v1")), want["hub"])
        assert ("GET", f"/{REPO}/resolve/v1/config.json") in hub.requests
        assert ("GET", f"/{REPO}/resolve/{sha}/explorer.safetensors") in hub.requests
        hub.requests.clear()  # loaded once: later calls, any endpoint, ask the Hub nothing
        assert np.array_equal(pixels(sample_with(c, f"{REPO}@v1")), want["hub"])
        image = c.predict("class", None, slider_1=1.0, model=f"{REPO}@v1", api_name="/decode")
        assert pixels(image).shape == (336, 336)  # its explorer assets came along (class basis)
        assert hub.requests == []
        assert np.array_equal(pixels(sample_with(c, None)), want["bundled"])  # default untouched
        with pytest.raises(AppError, match=r"Model must be one of \[.*\], got 'org/nope'"):
            c.predict(0, 1.0, 4, "org/nope", api_name="/sample")


@pytest.fixture
def stalled_retries(monkeypatch):
    """huggingface_hub's back-off sleeps wait for this event instead of 1+2+4+8+8 s."""
    go_on = threading.Event()
    monkeypatch.setattr(_http, "time", SimpleNamespace(sleep=lambda s: go_on.wait(30)))
    yield go_on
    go_on.set()


def test_an_unreachable_hub_blocks_nobody_and_its_error_is_shown(bundled, tmp_path, want, stalled_retries):
    closed = f"http://127.0.0.1:{free_port()}"
    with hub_at(closed, tmp_path / "hf-cache"):
        models = open_models(extra=[REPO])
        with serving(models) as url:
            c = client(url, tmp_path)
            t0 = time.monotonic()
            with pytest.raises(AppError, match=f"Model '{REPO}' is still loading; try again"):
                c.predict(3, 1.0, 4, REPO, api_name="/sample")
            assert time.monotonic() - t0 < models_module.LOAD_WAIT_S + 5
            # while the Hub retries, the bundled model answers at once, to this and other clients
            for other in (c, client(url, tmp_path)):
                t0 = time.monotonic()
                assert np.array_equal(pixels(other.predict(3, 1.0, 4, api_name="/sample")), want["bundled"])
                assert time.monotonic() - t0 < 5
            assert not models.ready(REPO)
            stalled_retries.set()  # let the retries run out
            models.wait(60)
            message = (f"{REPO}: cannot reach the Hub at {closed} (offline?) and config.json is not "
                       "in the local cache")
            with pytest.raises(AppError) as e:
                c.predict(3, 1.0, 4, REPO, api_name="/sample")
            assert message in str(e.value) and "Traceback" not in str(e.value)
            assert np.array_equal(pixels(c.predict(3, 1.0, 4, api_name="/sample")), want["bundled"])


@pytest.mark.parametrize("repo, message", [
    ("org/missing", "org/missing: repository not found on the Hub, or it is private and no token "
                    "is set (set HF_TOKEN or run `hf auth login`)"),
    ("org/private", "org/private: repository not found on the Hub, or it is private and no token"),
    ("org/tiny@v9", "org/tiny: revision 'v9' not found (use a branch, a tag or the full "
                    "40-character commit hash)"),
    ("org/corrupt", "model.safetensors: not a readable safetensors file"),
])
def test_a_hub_model_that_cannot_be_had_gets_its_sentence(bundled, hub, tiny_repo, want, tmp_path,
                                                           repo, message):
    hub.commit(REPO, tiny_repo)
    hub.commit("org/private", tiny_repo, private_token="hf_secret")
    hub.commit("org/corrupt", {**tiny_repo, "model.safetensors": tiny_repo["model.safetensors"][:100]})
    models = open_models(extra=[repo])
    with serving(models) as url:
        c = client(url, tmp_path)
        with pytest.raises(AppError) as e:
            sample_with(c, repo)
        assert message in str(e.value) and "Traceback" not in str(e.value)
        assert np.array_equal(pixels(c.predict(3, 1.0, 4, api_name="/sample")), want["bundled"])
        with pytest.raises(ModelLoadError) as err:
            models.get(repo, 0)
        shown = Models.failure(repo, err.value, models.default)  # what the UI's status line says
        assert shown.startswith(f"⚠️ Could not load `{repo}`: ") and message in shown
        assert "Still showing `weights/fashion-mnist`." in shown


# ---- a broken --model folder --------------------------------------------------------------------
def _break(folder: Path, how: str) -> str:
    """Damage a copy of a weights folder; returns what the message must say (the app names
    the folder relative to the working directory)."""
    folder = Path(os.path.relpath(folder))
    weights, config = folder / "model.safetensors", folder / "config.json"
    if how == "truncated":
        weights.write_bytes(weights.read_bytes()[:200])
        return f"{weights}: not a readable safetensors file"
    cfg = config.read_text()
    if how == "unknown key":
        config.write_text(cfg.replace("{", '{"colour": "blue", ', 1))
        return f"{config}: invalid config ({config}: does not match VAEGANConfig: unknown keys ['colour']"
    if how == "missing key":
        data = json.loads(cfg)
        del data["latent_dim"]
        config.write_text(json.dumps(data))
        return "missing keys ['latent_dim']"
    data = json.loads(cfg)
    data["latent_dim"] = 5  # weights are for 8
    config.write_text(json.dumps(data))
    return f"{weights}: weights do not match config.json: wrong shapes"


@pytest.mark.parametrize("how", ["truncated", "unknown key", "missing key", "wrong shapes"])
def test_a_broken_model_folder_falls_back_to_the_bundled_model(bundled, tiny_folder, tmp_path, how):
    broken = tmp_path / "mine"
    shutil.copytree(tiny_folder, broken)
    named = _break(broken, how)
    models = open_models(str(broken))
    try:
        assert models.default.spec == "weights/fashion-mnist"
        status = models.default.status
        assert f"Could not load `{os.path.relpath(broken)}`: " in status and named in status
        assert "Showing `weights/fashion-mnist` instead." in status
    finally:
        models.close()


def test_the_app_started_on_a_broken_folder_serves_the_bundled_model_and_says_so(
        bundled, tiny_folder, tmp_path, want):
    broken = tmp_path / "mine"
    shutil.copytree(tiny_folder, broken)
    named = _break(broken, "truncated")
    with serving(open_models(str(broken))) as url:
        status = status_text(url)
        assert "Could not load `mine`" in status and named in status and "Traceback" not in status
        c = client(url, tmp_path)
        assert np.array_equal(pixels(c.predict(3, 1.0, 4, api_name="/sample")), want["bundled"])


def test_a_broken_folder_and_no_bundled_model_gives_the_random_model_with_both_notices(
        tiny_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(models_module, "WEIGHTS", tmp_path / "no-weights")
    monkeypatch.setattr(models_module, "DEFAULT_MODEL", str(tmp_path / "no-weights" / "fashion-mnist"))
    broken = tmp_path / "mine"
    shutil.copytree(tiny_folder, broken)
    named = _break(broken, "unknown key")
    models = open_models(str(broken))
    try:
        assert models.specs == ["random fashion-mnist model"]
        status = models.default.status
        assert named in status and "randomly initialised" in status
    finally:
        models.close()
