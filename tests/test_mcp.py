"""The app as an MCP server (issue 19): launched as the app launches it (ui/server.py, on
127.0.0.1 only), its public endpoints are MCP tools, and an agent using the `mcp` Python
client over HTTP lists them, reads what their arguments mean, and gets pictures back.

Timeouts are generous: on a loaded 2-core machine one tool call (the MCP server calls the
app's own queue through a loopback gradio_client) can take seconds."""
from __future__ import annotations

import asyncio
import base64
import io
import re
from datetime import timedelta

import httpx
import jsonschema
import numpy as np
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamablehttp_client
from PIL import Image

from conftest import serving
from ui import server
from ui.page import create_demo
from vaegan.explorer import MAX_COUNT, MAX_SEED

# streamablehttp_client: deprecated in mcp 1.2x for streamable_http_client, which mcp 1.21
# (the oldest that gradio[mcp] 6.31 allows) lacks; both are there up to mcp 2 (gradio's bound)
pytestmark = pytest.mark.filterwarnings(
    "ignore:Use `streamable_http_client` instead:DeprecationWarning")

PUBLIC = {"sample", "decode", "reconstruct", "interpolate", "compare", "atlas", "realism"}
CALL_S = 300  # one tool call, at most (a cold loopback client and a starved CPU included)
TEST_S = 900  # one test's whole conversation, at most


@pytest.fixture(scope="module")
def served(explorer_tiny):
    """The tiny model's app with the MCP server on (the default), its tools named as off a Space."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("VAEGAN_MCP", raising=False)
        mp.delenv("SYSTEM", raising=False)  # on a Space ("spaces"), tool names start with its name
        mp.delenv("GRADIO_MCP_SERVER", raising=False)
        demo = create_demo(explorer_tiny)
        with serving(demo) as url:
            mp.undo()
            yield demo, url


def talk(url: str, conversation, transport: str = "http"):
    """Run `await conversation(session)` in an initialized MCP client session with the app at
    url (streamable HTTP at /gradio_api/mcp/, or SSE at /gradio_api/mcp/sse); its result."""
    async def run():
        if transport == "http":
            connection = streamablehttp_client(url + "gradio_api/mcp/", timeout=60,
                                               sse_read_timeout=CALL_S)
        else:
            connection = sse_client(url + "gradio_api/mcp/sse", timeout=60, sse_read_timeout=CALL_S)
        async with connection as (read, write, *_):
            async with ClientSession(read, write,
                                     read_timeout_seconds=timedelta(seconds=CALL_S)) as session:
                await session.initialize()
                return await conversation(session)
    return asyncio.run(asyncio.wait_for(run(), TEST_S))


def tools_of(url: str, transport: str = "http") -> dict:
    async def listed(session):
        return {t.name: t for t in (await session.list_tools()).tools}
    return talk(url, listed, transport)


def pictures(result) -> list[Image.Image]:
    """The image content items of a tool result, decoded."""
    out = []
    for item in result.content:
        if item.type == "image":
            assert item.mimeType == "image/png", item.mimeType
            with Image.open(io.BytesIO(base64.b64decode(item.data))) as im:
                assert im.format == "PNG"
                im.load()
                out.append(im.copy())
    return out


def texts(result) -> list[str]:
    return [item.text for item in result.content if item.type == "text"]


# ---- what an agent sees ----------------------------------------------------------------------
def test_the_tools_are_the_public_endpoints_named_after_them(served):
    demo, url = served
    tools = tools_of(url)
    public = {fn.api_name for fn in demo.fns.values()
              if fn.api_name and fn.api_visibility == "public"}
    assert PUBLIC <= public
    # one tool per public endpoint, under the endpoint's own name, but /direction, whose
    # pictures come in galleries (Gradio's MCP server passes them as bare strings: see
    # ui/gradio_fixes.not_an_mcp_tool)
    assert set(tools) == public - {"direction"} == PUBLIC
    private = {getattr(fn.fn, "__name__", None) for fn in demo.fns.values()
               if fn.fn is not None and fn.api_visibility == "private"} - public - {None}
    assert private and not private & set(tools), "a private handler is offered as a tool"
    for tool in tools.values():
        assert len(tool.description) > 40, tool.name  # the handler's docstring, not nothing
        # valid JSON Schema (Gradio 6.31 writes {"type": {}} for a gr.JSON input, which the
        # mcp package refuses to validate calls against; ui/gradio_fixes.py fixes it)
        jsonschema.Draft202012Validator.check_schema(tool.inputSchema)
    sample = tools["sample"].inputSchema
    assert set(sample["properties"]) == {"seed", "temperature", "count", "model"}
    decode = tools["decode"].inputSchema["properties"]
    assert {"basis", "origin", "slider_1", "slider_12", "model"} <= set(decode)
    assert "-3" in decode["slider_1"]["description"] and "3" in decode["slider_12"]["description"]


def test_the_sse_transport_lists_the_same_tools_and_a_browser_gets_a_page(served):
    url = served[1]
    assert set(tools_of(url, transport="sse")) == set(tools_of(url))
    page = httpx.get(url + "gradio_api/mcp/", timeout=60)  # (README, "MCP": client settings)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert url + "gradio_api/mcp/" in page.text


def test_on_a_space_the_tool_names_start_with_the_spaces_name(served, monkeypatch):
    """What the README says a Space's tools are called (Gradio prefixes the Space's name)."""
    from gradio.mcp import GradioMCPServer
    monkeypatch.setenv("SYSTEM", "spaces")  # (what a Space sets, with SPACE_ID)
    monkeypatch.setenv("SPACE_ID", "someone/vaegan-explorer")
    names = set(GradioMCPServer(served[0]).tool_to_endpoint)  # (listed ones: not_an_mcp_tool)
    assert names - {"vaegan_explorer_direction"} == {f"vaegan_explorer_{name}"
                                                     for name in tools_of(served[1])}


# Depends on each public handler's docstring ending in an "Args:" section with one line
# `name: what it means and its range` per argument: Gradio puts those into the tool's schema.
def test_every_argument_is_described_with_its_range(served):
    tools = tools_of(served[1])
    for tool in tools.values():
        for name, prop in tool.inputSchema["properties"].items():
            assert prop.get("description"), f"{tool.name}({name}=...) has no description"
    sample = tools["sample"].inputSchema["properties"]
    seed, count = sample["seed"]["description"], sample["count"]["description"]
    assert re.search(r"\b0\b", seed) and any(
        top in seed for top in (str(MAX_SEED), f"{MAX_SEED:,}", "2**32-1", "2**32 - 1",
                                "2^32-1", "2^32 - 1")), seed
    assert re.search(r"\b1\b", count) and re.search(rf"\b{MAX_COUNT}\b", count), count
    temperature = sample["temperature"]["description"]
    assert re.search(r"\b0\b", temperature) and re.search(r"\b2\b", temperature), temperature


# ---- calling tools -------------------------------------------------------------------------
def test_sample_and_decode_return_the_apps_pictures(served, explorer_tiny):
    url = served[1]
    origin = explorer_tiny.seed_latent(5).tolist()
    progress = []

    async def calls(session):
        plain = await session.call_tool("sample", {"seed": 3, "temperature": 1.0, "count": 9})

        async def note(done, total, message):
            progress.append(message)
        # a client that asks for progress gets there by another path through Gradio
        followed = await session.call_tool("sample", {"seed": 3, "temperature": 1.0, "count": 9},
                                           progress_callback=note)
        decoded = await session.call_tool("decode", {"basis": "pca", "origin": origin,
                                                     "slider_1": 2.5, "slider_3": -1.0})
        zero = await session.call_tool("decode", {"basis": "pca"})  # the rest: the page's defaults
        return plain, followed, decoded, zero
    plain, followed, decoded, zero = talk(url, calls)

    expected = np.asarray(explorer_tiny.sample(3, 1.0, 9).image)
    for result in (plain, followed):
        assert not result.isError, texts(result)
        [grid] = pictures(result)
        assert grid.size == (expected.shape[1], expected.shape[0])
        assert np.array_equal(np.asarray(grid), expected)  # the same pictures, lossless
    assert progress, "no progress notifications"

    assert not decoded.isError, texts(decoded)
    [picture] = pictures(decoded)
    want = explorer_tiny.decode([2.5, 0.0, -1.0], "pca", origin)
    assert picture.size == want.size == (336, 336)  # the app's decode size (28 x 12)
    assert np.array_equal(np.asarray(picture), np.asarray(want))
    # beside the picture, its URL on the app (the same PNG)
    [link] = [t for t in texts(decoded) if t.startswith("Image URL: ")]
    link = link.removeprefix("Image URL: ")
    assert link.startswith(url) and link.endswith(".png")
    answer = httpx.get(link, timeout=60)
    assert answer.status_code == 200
    with Image.open(io.BytesIO(answer.content)) as im:
        assert np.array_equal(np.asarray(im), np.asarray(want))
    assert not zero.isError and pictures(zero)[0].size == want.size


def test_a_bad_argument_is_an_error_result_with_the_apps_sentence(served, explorer_tiny):
    async def calls(session):
        too_many = await session.call_tool("sample", {"seed": 1, "count": 1000})
        far = await session.call_tool("decode", {"basis": "pca", "slider_1": 9})
        short = await session.call_tool("realism", {"z": [0.5]})
        after = await session.call_tool("sample", {"seed": 1, "count": 4})  # and it still works
        return too_many, far, short, after
    too_many, far, short, after = talk(served[1], calls)
    assert too_many.isError and not pictures(too_many)
    assert any(f"Count must be a whole number between 1 and {MAX_COUNT}, got 1000" in t
               for t in texts(too_many)), texts(too_many)
    assert far.isError and any("Slider_1 must be a number between -3 and 3, got 9" in t
                               for t in texts(far)), texts(far)
    latent = explorer_tiny.config.latent_dim
    assert short.isError and any(f"must have {latent} numbers, got 1" in t
                                 for t in texts(short)), texts(short)
    assert not after.isError and len(pictures(after)) == 1


# ---- off -----------------------------------------------------------------------------------
def test_vaegan_mcp_0_turns_it_off(explorer_tiny, monkeypatch):
    monkeypatch.setenv("VAEGAN_MCP", "0")
    monkeypatch.delenv("GRADIO_MCP_SERVER", raising=False)
    assert not server.mcp_wanted()
    demo = create_demo(explorer_tiny)
    with serving(demo) as url:
        assert not demo.mcp_server and demo.mcp_server_obj is None
        answer = httpx.post(url + "gradio_api/mcp/", timeout=60, json={
            "jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"})
        assert answer.status_code == 404
        assert httpx.get(url, timeout=60).status_code == 200  # the app itself is there
    for off in ("0", "false", "off", " No "):
        monkeypatch.setenv("VAEGAN_MCP", off)
        assert not server.mcp_wanted()
    for on in ("1", "true", ""):
        monkeypatch.setenv("VAEGAN_MCP", on)
        assert server.mcp_wanted()
    monkeypatch.delenv("VAEGAN_MCP")
    assert server.mcp_wanted()
