"""Bad API input, sent the way API users and pages send it: every public endpoint answers
out-of-range values, NaN and infinities, counts and steps over their limits, unknown basis,
method or model names and oversized starting points with a sentence naming the argument and
what is allowed, and keeps serving."""
import json

import httpx
import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

from ui import server
from ui.page import create_demo
import gradio as gr
from conftest import serving
from vaegan.explorer import N_SLIDERS

SEEDS = "between 0 and 4294967295"


@pytest.fixture(scope="module")
def served(explorer_tiny):
    demo = create_demo(explorer_tiny)
    with serving(demo) as url:
        yield demo, url


@pytest.fixture(scope="module")
def client(served, tmp_path_factory):
    return Client(served[1], verbose=False, download_files=str(tmp_path_factory.mktemp("dl")),
                  analytics_enabled=False)


SEED_ONLY = ("Seed", 1, None, "Seed", 2, None)  # interpolate's endpoints A and B


@pytest.mark.parametrize("api_name, args, kwargs, message", [
    ("/sample", (-1, 1.0, 4), {}, rf"^Seed must be a whole number {SEEDS}, got -1$"),
    ("/sample", (2**40, 1.0, 4), {}, rf"^Seed must be a whole number {SEEDS}, got 1099511627776$"),
    ("/sample", (0, 5.0, 4), {}, r"^Temperature must be a number between 0 and 2, got 5\.0$"),
    ("/sample", (0, -0.1, 4), {}, r"^Temperature must be a number between 0 and 2, got -0\.1$"),
    ("/sample", (0, 1.0, 65), {}, r"^Count must be a whole number between 1 and 64, got 65$"),
    ("/sample", (0, 1.0, 10**9), {}, r"^Count must be a whole number between 1 and 64, got 1000000000$"),
    ("/sample", (0, 1.0, 0), {}, r"^Count must be a whole number between 1 and 64, got 0$"),
    ("/sample", (0, 1.0, 2.5), {}, r"^Count must be a whole number between 1 and 64, got 2\.5$"),
    ("/sample", (0, 1.0, 4, "org/unlisted"), {}, r"^Model must be one of \[.*\], got 'org/unlisted'$"),
    ("/decode", ("nope", None), {}, r"^Basis must be one of \['kl', 'pca', 'class', 'yours'\], got 'nope'$"),
    ("/decode", ("kl", None), {"slider_1": 4.0}, r"^Slider_1 must be a number between -3 and 3, got 4\.0$"),
    ("/decode", ("kl", None), {"slider_12": -1e308}, r"^Slider_12 must be a number between -3 and 3"),
    ("/decode", ("kl", None), {"model": "../../etc"}, r"^Model must be one of .*got '\.\./\.\./etc'$"),
    ("/decode", ("kl", [0.0] * 10_000), {}, r"^Origin must have 8 numbers, got 10000$"),
    ("/decode", ("kl", [[0.0] * 8] * 8), {}, r"^Origin must have 8 numbers, got 64$"),
    ("/decode", ("kl", [1e9] * 8), {}, r"^Origin values must be finite and between -100 and 100$"),
    ("/decode", ("kl", "zeros"), {}, r"^Origin must be a list of 8 numbers$"),
    ("/decode", ("kl", {"z": 1}), {}, r"^Origin must be a list of 8 numbers$"),
    ("/interpolate", (*SEED_ONLY, 1000, "slerp"), {}, r"^Steps must be a whole number between 2 and 64, got 1000$"),
    ("/interpolate", (*SEED_ONLY, 1, "slerp"), {}, r"^Steps must be a whole number between 2 and 64, got 1$"),
    ("/interpolate", (*SEED_ONLY, 8, "cubic"), {}, r"^Method must be one of \['slerp', 'lerp'\], got 'cubic'$"),
    ("/interpolate", ("Both", 1, None, "Seed", 2, None, 8, "lerp"), {},
     r"^A_kind must be one of \['Seed', 'Picture'\], got 'Both'$"),
    ("/interpolate", ("Seed", -5, None, "Seed", 2, None, 8, "lerp"), {}, rf"^A_seed must be a whole number {SEEDS}"),
    ("/interpolate", (*SEED_ONLY, 8, "lerp", "nope/nope"), {}, r"^Model must be one of .*got 'nope/nope'$"),
    ("/reconstruct", (None,), {}, r"^Image: no picture given; upload a PNG"),
    ("/reconstruct", (None, 50, "org/unlisted"), {}, r"^Model must be one of"),
])
def test_bad_arguments_get_a_sentence_naming_them(client, api_name, args, kwargs, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, **kwargs, api_name=api_name)


def test_gradio_client_refuses_to_send_nan_or_infinity(client):
    for value in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
            client.predict(0, value, 4, api_name="/sample")


def _raw_call(url: str, api_name: str, body: str) -> tuple[str, str]:
    """POST a hand-written JSON body (NaN and Infinity are not JSON, but Python's parser on the
    server reads them) to /gradio_api/call/<name>; -> (last event, its data)."""
    with httpx.Client(base_url=url, timeout=60) as http:
        r = http.post(f"gradio_api/call/{api_name}", content=body,
                      headers={"content-type": "application/json"})
        r.raise_for_status()
        events = http.get(f"gradio_api/call/{api_name}/{r.json()['event_id']}").text
    lines = [line for line in events.splitlines() if line.startswith(("event:", "data:"))]
    return lines[-2].split(":", 1)[1].strip(), lines[-1].split(":", 1)[1].strip()


@pytest.mark.parametrize("api_name, data, message", [
    ("sample", "[NaN, 1.0, 4]", rf"Seed must be a whole number {SEEDS}, got nan"),
    ("sample", "[Infinity, 1.0, 4]", rf"Seed must be a whole number {SEEDS}, got inf"),
    ("sample", "[0, NaN, 4]", "Temperature must be a number between 0 and 2, got nan"),
    ("sample", "[0, -Infinity, 4]", "Temperature must be a number between 0 and 2, got -inf"),
    ("sample", "[0, 1.0, NaN]", "Count must be a whole number between 1 and 64, got nan"),
    ("decode", '["kl", null, NaN' + ", 0" * (N_SLIDERS - 1) + ", null]", "Slider_1 must be a number between -3 and 3, got nan"),
    ("decode", '["kl", [NaN, 0, 0, 0, 0, 0, 0, 0]' + ", 0" * N_SLIDERS + ", null]",
     "Origin values must be finite and between -100 and 100"),
    ("decode", '["kl", [Infinity, 0, 0, 0, 0, 0, 0, 0]' + ", 0" * N_SLIDERS + ", null]", "Origin values must be finite"),
    ("interpolate", '["Seed", 1, null, "Seed", 2, null, Infinity, "slerp"]',
     "Steps must be a whole number between 2 and 64, got inf"),
])
def test_nan_and_infinity_sent_as_raw_json_get_a_sentence(served, api_name, data, message):
    # (decode's last-but-one, directions, is null in `data`)
    event, payload = _raw_call(served[1], api_name, '{"data": %s, null]}' % data[:-1])  # model: default
    assert event == "error", payload
    assert json.loads(payload) == message or message in payload, payload


def test_oversized_requests_are_refused_before_they_are_read(served, client):
    url = served[1]
    with pytest.raises(Exception, match=r"413|Request too large"):  # 2 MB of JSON
        client.predict("kl", [0.0] * 400_000, api_name="/decode")
    big = '{"data": ["kl", [%s]]}' % ", ".join(["0.0"] * 400_000)
    with httpx.Client(base_url=url, timeout=60) as http:
        r = http.post("gradio_api/call/decode", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert r.text == f"Request too large: at most {server.MAX_BODY:,} bytes of JSON; send pictures as file uploads"
        r = http.post("gradio_api/queue/join", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413

        def chunks():  # no Content-Length: the body is cut off once it passes the limit
            for _ in range(64):
                yield b" " * 65536
        try:
            r = http.post("gradio_api/call/decode", content=chunks(),
                          headers={"content-type": "application/json"})
            assert r.status_code >= 400
        except httpx.HTTPError:
            pass  # (or the server drops the connection)
        # a request of ordinary size still goes through the same middleware
        r = http.post("gradio_api/call/sample", json={"data": [1, 1.0, 4]})
        assert r.status_code == 200 and "event_id" in r.json()


def test_the_ui_path_checks_the_same_way(served, explorer_tiny):
    """What a page sends passes the same components and handlers: the components' checks name
    the argument, and the handlers' (Explorer's) sentences reach the page as gr.Error."""
    demo, _ = served
    fns = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}
    sample, decode, interpolate = fns["sample"], fns["decode"], fns["interpolate"]
    seed, temperature, count = sample.inputs[:3]
    with pytest.raises(gr.Error, match=r"Count must be a whole number between 1 and 64, got 65"):
        count.preprocess(65)
    with pytest.raises(gr.Error, match=r"Temperature must be a number between 0 and 2, got nan"):
        temperature.preprocess(float("nan"))
    with pytest.raises(gr.Error, match=rf"Seed must be a whole number {SEEDS}, got -inf"):
        seed.preprocess(float("-inf"))
    assert count.preprocess(64) == 64 and temperature.preprocess(0.5) == 0.5
    basis = decode.inputs[0]
    with pytest.raises(gr.Error, match=r"Basis must be one of \['kl', 'pca', 'class', 'yours'\], got 'up'"):
        basis.preprocess("up")
    steps = interpolate.inputs[6]
    with pytest.raises(gr.Error, match=r"Steps must be a whole number between 2 and 64, got 65"):
        steps.preprocess(65)
    # the handlers themselves, as a page's event calls them after preprocessing
    with pytest.raises(gr.Error, match=r"Count must be a whole number between 1 and 64, got 0"):
        sample.fn(0, 1.0, 0, None)
    with pytest.raises(gr.Error, match=r"Origin values must be finite"):
        decode.fn("kl", [float("nan")] * 8, None, **{f"slider_{i + 1}": 0.0 for i in range(N_SLIDERS)})
    with pytest.raises(gr.Error, match=r"Values\[0\] must be a number between -3 and 3, got inf"):
        decode.fn("kl", None, None, **{f"slider_{i + 1}": float("inf") for i in range(N_SLIDERS)})
    with pytest.raises(gr.Error, match=r"Model must be one of"):
        interpolate.fn("Seed", 1, None, "Seed", 2, None, 4, "lerp", "org/unlisted")


def test_after_all_that_the_app_still_answers(client, explorer_tiny):
    path = client.predict(3, 1.0, 4, api_name="/sample")
    with Image.open(path) as im:
        assert np.array_equal(np.asarray(im), np.asarray(explorer_tiny.sample(3, 1.0, 4).image))


@pytest.mark.parametrize("steps, message", [
    (500, r"^Steps must be a whole number between 0 and 200, got 500$"),
    (-10, r"^Steps must be a whole number between 0 and 200, got -10$"),
    (12.5, r"^Steps must be a whole number between 0 and 200, got 12\.5$"),
])
def test_reconstruct_refining_steps_out_of_range_get_a_sentence(client, tmp_path, steps, message):
    from gradio_client import handle_file
    path = tmp_path / "garment.png"
    Image.new("L", (28, 28), 40).save(path)
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(str(path)), steps, api_name="/reconstruct")
    # and the endpoint still answers with steps in range
    assert len(client.predict(handle_file(str(path)), 0, api_name="/reconstruct")) == 5
