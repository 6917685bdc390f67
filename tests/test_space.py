"""Hosted as a Hugging Face Space: `python app.py` with no arguments and the platform's
environment binds where the platform looks, answers, loads a Hub model without holding up
the first page, and a bad port ends the process with one sentence. Plus the front matter
and pre-requirements.txt that a Space is built from."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from huggingface_hub.repocard import metadata_load
from huggingface_hub.utils import validate_repo_id
from PIL import Image

import app
from conftest import free_port
from fake_hub import FakeHub
from vaegan.explorer import load_explorer

ROOT = Path(app.__file__).resolve().parent
SPACE_PYTHONS = {"3.10", "3.11", "3.12", "3.13"}


def space_env(port: int, tmp_path: Path, **extra: str) -> dict[str, str]:
    """What a Space sets (and no HF_HUB_OFFLINE); the Hub is a closed port on 127.0.0.1 unless
    extra says otherwise, so nothing can leave the machine."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGING", "VAEGAN", "GRADIO_SERVER", "SPACE_"))}
    env.update(GRADIO_SERVER_NAME="0.0.0.0", GRADIO_SERVER_PORT=str(port),
               SPACE_ID="test/vaegan-explorer", SPACE_HOST="test-vaegan-explorer.hf.space",
               HF_ENDPOINT=f"http://127.0.0.1:{free_port()}", HF_HUB_CACHE=str(tmp_path / "hf"),
               GRADIO_TEMP_DIR=str(tmp_path / "gradio"), GRADIO_ANALYTICS_ENABLED="False")
    env.update(extra)
    return env


@contextmanager
def started_as_a_space(env: dict[str, str], log: Path, wait: bool = True):
    """`python app.py` from the repo root, no arguments; yields the process once its first
    page answers on 127.0.0.2 (only a server bound to all interfaces answers there)."""
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + 180
        while wait:
            assert proc.poll() is None, f"app.py exited with {proc.returncode}: {log.read_text()}"
            try:
                if httpx.get(f"http://127.0.0.2:{env['GRADIO_SERVER_PORT']}/", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < end, "no answer on 127.0.0.2 within 180 s: " + log.read_text()
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.copy())


# ---- the process, started the way Spaces start it ----------------------------------------------
def test_started_as_a_space_it_answers_on_every_interface_and_samples(tmp_path):
    port = free_port()
    log = tmp_path / "app.log"
    with started_as_a_space(space_env(port, tmp_path), log):
        url = f"http://127.0.0.2:{port}/"
        c = Client(url, verbose=False, download_files=str(tmp_path), analytics_enabled=False)
        got = pixels(c.predict(3, 1.0, 4, api_name="/sample"))
        r = httpx.get(url + "vaegan/live.js", timeout=10)  # the page script, from this server
        assert r.status_code == 200 and "vaeganLive" in r.text
    bundled = load_explorer("weights/fashion-mnist") if Path("weights").is_dir() else \
        load_explorer(str(ROOT / "weights" / "fashion-mnist"))
    assert np.array_equal(got, np.asarray(bundled.sample(3, 1.0, 4).image))
    assert "Traceback" not in log.read_text()


def test_a_hub_model_set_as_a_space_variable_never_holds_up_the_first_page(tmp_path, tiny_repo):
    """VAEGAN_MODEL=org/name: the page answers (on the bundled model) while the download is
    stalled; once the Hub answers, the model is there, from the fake Hub on 127.0.0.1."""
    hub = FakeHub()
    hub.commit("org/tiny", tiny_repo)
    with hub.serving():
        hub.gate.clear()  # every Hub answer waits: a download that takes its time
        port = free_port()
        env = space_env(port, tmp_path, HF_ENDPOINT=hub.url, VAEGAN_MODEL="org/tiny")
        try:
            with started_as_a_space(env, tmp_path / "app.log"):
                url = f"http://127.0.0.2:{port}/"
                config = httpx.get(url + "config", timeout=10).json()
                [status] = [c["props"]["value"] for c in config["components"]
                            if c.get("props", {}).get("elem_id") == "status"]
                assert "weights/fashion-mnist" in status  # the bundled model, at once
                end = time.monotonic() + 30
                while not hub.requests:  # the load starts right after launch, in the background
                    assert time.monotonic() < end, "the app did not start the Hub download"
                    time.sleep(0.05)
                c = Client(url, verbose=False, download_files=str(tmp_path), analytics_enabled=False)
                with pytest.raises(AppError, match="'org/tiny' is still loading"):
                    c.predict(3, 1.0, 4, "org/tiny", api_name="/sample")
                hub.gate.set()
                end = time.monotonic() + 60
                while True:
                    try:
                        got = pixels(c.predict(3, 1.0, 4, "org/tiny", api_name="/sample"))
                        break
                    except AppError as e:
                        assert "still loading" in str(e) and time.monotonic() < end, str(e)
                        time.sleep(0.2)
        finally:
            hub.gate.set()
    repo = tmp_path / "repo"
    repo.mkdir()
    for name, data in tiny_repo.items():
        (repo / name).write_bytes(data)
    assert np.array_equal(got, np.asarray(load_explorer(str(repo)).sample(3, 1.0, 4).image))
    assert ("GET", "/org/tiny/resolve/main/config.json") in hub.requests


@pytest.mark.parametrize("port, sentence", [
    ("abc", "GRADIO_SERVER_PORT must be a port number between 1 and 65535, got 'abc'"),
    ("70000", "GRADIO_SERVER_PORT must be a port number between 1 and 65535, got '70000'"),
])
def test_a_bad_port_ends_the_process_with_one_sentence(tmp_path, port, sentence):
    env = space_env(1, tmp_path, GRADIO_SERVER_PORT=port)
    out = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1 and out.stderr.strip() == sentence, out.stderr


def test_a_taken_port_ends_the_process_with_one_sentence(tmp_path):
    with socket.socket() as held:
        held.bind(("0.0.0.0", 0))
        held.listen()
        port = held.getsockname()[1]
        out = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=space_env(port, tmp_path),
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert out.stderr.strip() == (f"GRADIO_SERVER_PORT={port}: the port is already in use on "
                                  "0.0.0.0; stop the other server or choose another port "
                                  "(--port or GRADIO_SERVER_PORT)")


# ---- where it listens ------------------------------------------------------------------------------
def test_host_and_port_come_from_flags_then_the_platform_then_the_local_default(monkeypatch):
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    assert app.server_address() == ("127.0.0.1", 7860)  # locally: loopback only
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7861")
    assert app.server_address() == ("0.0.0.0", 7861)
    assert app.server_address("127.0.0.3", "8000") == ("127.0.0.3", 8000)  # flags win
    with pytest.raises(ValueError, match=r"^--port must be a port number between 1 and 65535, got '0'$"):
        app.server_address(None, "0")
    args = app.parse_args([])
    assert args.host is None and args.port is None  # so that the environment decides


# ---- what a Space is built from --------------------------------------------------------------------
def pin(requirements: Path, package: str) -> str:
    """The version `package` (with or without extras, e.g. gradio[mcp]) is pinned to."""
    [version] = [m[1] for ln in requirements.read_text().splitlines()
                 if (m := re.match(rf"{re.escape(package)}(?:\[[^\]]*\])?==(\S+)", ln))]
    return version


def test_the_front_matter_is_complete_and_matches_the_requirements():
    meta = metadata_load(ROOT / "README.md")
    assert meta["sdk"] == "gradio"
    assert meta["sdk_version"] == pin(ROOT / "requirements.txt", "gradio")
    assert str(meta["python_version"]) in SPACE_PYTHONS
    assert (ROOT / meta["app_file"]).is_file() and meta["app_file"] == "app.py"
    assert meta["license"] == "mit" and (ROOT / "LICENSE").is_file()
    assert 0 < len(meta["short_description"]) <= 60  # the Hub refuses longer ones
    assert meta["suggested_hardware"] == "cpu-basic"
    timeout = re.fullmatch(r"(\d+)([mh])", str(meta["startup_duration_timeout"]))
    assert timeout and 5 <= int(timeout[1]) * (60 if timeout[2] == "h" else 1) <= 120
    assert meta["models"] and all(validate_repo_id(m) is None for m in meta["models"])


def test_pre_requirements_give_a_cpu_torch_that_satisfies_the_pins():
    pre, req = ROOT / "pre-requirements.txt", ROOT / "requirements.txt"
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pre.read_text().splitlines()
    for package in ("torch", "torchvision"):
        assert pin(pre, package) == pin(req, package) + "+cpu"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pre-requirements" not in ci  # CI and the README's commands do not depend on it
