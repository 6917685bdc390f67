"""Every reliance of the app on Gradio or Starlette internals, in one place.

Each fix names the Gradio version it was written against (GRADIO_VERSION) and the internal it
uses; tests/test_gradio_fixes.py checks each internal's shape and fails loudly, naming the
fix, when an upgrade changes it. Nothing else in the app touches Gradio's private parts.
"""
from __future__ import annotations

import functools
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import gradio as gr
from gradio import processing_utils, state_holder
from starlette.responses import PlainTextResponse

GRADIO_VERSION = "6.31.0"  # what every fix below was written and tested against


# ---- 1. cached output files appear whole ------------------------------------------------------
# Internal: gradio.processing_utils.save_pil_to_cache(img, cache_dir, name, format), looked up
# as a module attribute by gradio.image_utils and gr.Gallery when they write a PIL output.
_GRADIOS_SAVE_PIL_TO_CACHE = processing_utils.save_pil_to_cache
def _save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """Gradio's save_pil_to_cache, except that the file appears whole. Gradio names a cached
    output by the hash of its bytes and rewrites it in place, so two requests that make the
    same picture at once (the same seed, the same upload) could serve it while it was being
    rewritten: clients got 0 bytes under load (benchmarks/load.py)."""
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(path)


# ---- 4. a new session does not copy every component's config ---------------------------------
# Internal: gradio.state_holder.SessionState.__init__(self, blocks) reads blocks.default_config
# and, for every id in blocks.blocks, builds config_values (a copy of each component's config,
# kept for /gradio_api/deep_link, i.e. gr.DeepLinkButton, which this app does not use); its
# __setitem__, _update_config and _update_value_in_config (called from Blocks.postprocess_data
# and preprocess_data on every event) add or refresh an entry for every component an event
# touches, so without this a session grows by a config copy per touched component.
class _NoBlocks:
    """What SessionState.__init__ reads of a Blocks, with no component configs to copy."""

    def __init__(self, blocks) -> None:
        self.default_config, self.blocks = blocks.default_config, {}


def _lean_session_init(self, blocks) -> None:
    """Measured with this page (102 components): 162 KiB and about 20 ms for every new
    visitor's session, kept as long as the session is (benchmarks/load.py, soak)."""
    _GRADIOS_SESSION_INIT(self, _NoBlocks(blocks))
    self.config_values = _NoConfigValues()


class _NoConfigValues(dict):
    """config_values that keeps nothing: deep links are not used here (see above)."""

    def __setitem__(self, key, value) -> None:
        pass


def _keep_no_config(self, key, value=None) -> None:
    """SessionState._update_config / _update_value_in_config: nothing to keep (see above)."""


_GRADIOS_SESSION_INIT = state_holder.SessionState.__init__


def install() -> None:
    """Apply the process-wide fixes (idempotent)."""
    processing_utils.save_pil_to_cache = _save_pil_to_cache
    state_holder.SessionState.__init__ = _lean_session_init
    state_holder.SessionState._update_config = _keep_no_config
    state_holder.SessionState._update_value_in_config = _keep_no_config
    state_holder.SessionState.__setitem__ = _setitem_keeping_checks


# ---- 2. a component's own check of its input --------------------------------------------------
# Internal: Blocks.preprocess_data calls `block.preprocess(payload)` on the component instance,
# so an instance attribute replaces the class's method for that one component. (A subclass
# would be public API, but Gradio then writes a .pyi stub next to the module that defines it.)
def check_input(box: gr.components.Component, on_error: Callable) -> None:
    """Run box's own preprocess; when it raises, on_error(payload, error, value) raises the
    project's sentence instead, or the error itself when it is not one it knows (error is
    None when preprocess returned a non-finite float, which Gradio's Slider lets through)."""
    if getattr(box, "_checked", False):
        return
    preprocess = box.preprocess

    def checked(payload):
        try:
            value = preprocess(payload)
        except Exception as e:  # noqa: BLE001 (on_error re-raises what it does not know)
            return on_error(payload, e, None)
        if isinstance(value, float) and not math.isfinite(value):
            return on_error(payload, None, value)
        return value
    box.preprocess, box._checked, box._on_error = checked, True, on_error


# Internal: when a handler returns a component with new properties (gr.Radio(choices=...) on a
# model switch), Blocks.postprocess_data stores `block.__class__(**constructor_args | update)`
# for that session with SessionState.__setitem__, and the session's later events preprocess with
# that new instance: without this, it has lost check_input's wrapper (found with a colour
# model's extra basis: the page then showed Gradio's own "not in the list of choices").
_GRADIOS_SETITEM = state_holder.SessionState.__setitem__


def _setitem_keeping_checks(self, key, value) -> None:
    old = self.blocks_config.blocks.get(key)
    on_error = getattr(old, "_on_error", None)
    if on_error is not None and value is not old and isinstance(value, gr.components.Component):
        if isinstance(on_error, functools.partial) and on_error.args and on_error.args[0] is old:
            # a check bound to the component (ui.components._out_of_range): bind it to the new
            # one, whose choices or range its sentences must name
            on_error = functools.partial(on_error.func, value, *on_error.args[1:], **on_error.keywords)
        check_input(value, on_error)
    _GRADIOS_SETITEM(self, key, value)


# Internal: Blocks.fns {id: BlockFunction} with .api_name, .api_visibility, .inputs and
# .input_parameter_names (the names the API page and gradio_client show).
def public_parameter_names(blocks: gr.Blocks) -> dict[int, str]:
    """{component id: the public API parameter it is} over every public endpoint."""
    names: dict[int, str] = {}
    for fn in blocks.fns.values():
        if fn.api_name and fn.api_visibility != "private":
            for box, name in zip(fn.inputs, fn.input_parameter_names):
                names.setdefault(box._id, name or getattr(box, "label", None) or "value")
    return names


# ---- 3. the server: a body limit and routes of our own ----------------------------------------
# Internal: Blocks.launch(app_kwargs={"middleware": [...]}) hands the list to Starlette.
def limit_body(app, max_bytes: int):
    """ASGI middleware: a request body over max_bytes (file uploads excepted: Gradio checks
    them against max_file_size) gets 413 and a sentence, before any of it is read."""
    async def middleware(scope, receive, send):
        if scope["type"] == "http" and not scope["path"].endswith("/upload"):
            length = dict(scope["headers"]).get(b"content-length", b"0")
            if not length.isdigit() or int(length) > max_bytes:
                refusal = PlainTextResponse(f"Request too large: at most {max_bytes:,} bytes of "
                                            "JSON; send pictures as file uploads", status_code=413)
                return await refusal(scope, receive, send)
            received = 0

            async def bounded():  # a body sent in chunks, without a length, is cut off too
                nonlocal received
                message = await receive()
                received += len(message.get("body", b""))
                return {"type": "http.disconnect"} if received > max_bytes else message
            return await app(scope, bounded, send)
        return await app(scope, receive, send)
    return middleware


# Internal: Blocks.server_app, the FastAPI app that launch() creates (set during launch).
def add_get_route(blocks: gr.Blocks, path: str, endpoint: Callable) -> None:
    """Serve GET `path` from a launched app, outside the API schema and Gradio's queue."""
    blocks.server_app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)


# ---- 5. Gradio's MCP server (the gradio[mcp] extra; ui/server.py turns it on) ------------------
# Without these, decode, atlas, sample and direction fail as MCP tools (tests/test_mcp.py).
# a. Internal: a gr.JSON input's schema is component.api_info_as_input(), {"type": {}, ...},
#    which is not JSON Schema: the mcp package refuses every call of a tool that has one
#    ("{} is not valid under any of the given schemas"), and clients that check tool schemas
#    may refuse the tool list. Without "type" it means the same (any JSON value), gradio_client
#    still shows it as "str | float | bool | list | dict", and the docstring says what it is.
def json_inputs_take_any_json(blocks: gr.Blocks) -> None:
    for fn in blocks.fns.values():
        if fn.api_name and fn.api_visibility != "private":
            for box in fn.inputs:
                if isinstance(box, gr.JSON) and not getattr(box, "_any_json", False):
                    box.api_info_as_input = lambda: {"description": "any valid json"}
                    box._any_json = True


# b. Internal: GradioMCPServer._execute_tool_without_progress(job) returns [job.result()], but
#    the result of an event with several outputs (sample: the grid and its codes, a gr.State) is
#    a tuple of them, so a call without a progress token failed ("pop index out of range") or
#    came back as the tuple's text instead of a picture. Make it the list of outputs.
#    (Blocks.mcp_server_obj: the server, set by launch(mcp_server=True).)
def returns_every_output(blocks: gr.Blocks) -> None:
    server = getattr(blocks, "mcp_server_obj", None)
    if server is None or getattr(server, "_every_output", False):
        return
    gradios = server._execute_tool_without_progress

    async def every_output(job):
        data = await gradios(job)
        return list(data[0]) if len(data) == 1 and isinstance(data[0], tuple) else data
    server._execute_tool_without_progress, server._every_output = every_output, True


# c. Internal: GradioMCPServer lists as tools the public endpoints whose function has no
#    `_mcp_type` other than "tool" (gr.mcp.tool/resource/prompt set it), and turns only
#    top-level file arguments from URLs into files: pictures inside a gr.Gallery argument reach
#    the app as bare strings, which Gradio refuses. So an endpoint that takes galleries is kept
#    off the tool list (it stays in the API, for gradio_client).
def not_an_mcp_tool(fn: Callable) -> Callable:
    fn._mcp_type = "not a tool"
    return fn
