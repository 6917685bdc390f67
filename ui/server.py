"""The one place the app is launched: the queue's limits, safe defaults (no share, no extra
paths, no SSR, bounded uploads and bodies), the page's look, the live routes and the MCP
server."""
from __future__ import annotations

import os

import gradio as gr

from starlette.middleware import Middleware

from . import live
from .components import CSS, THEME, name_the_arguments
from .fair import FairShare, guard
from .gradio_fixes import (json_inputs_take_any_json, limit_body, public_parameter_names,
                           returns_every_output)

MAX_FILE_SIZE = "10mb"
DELETE_CACHE = (1800, 3600)  # every 30 min, delete cached files older than an hour
# Queue (README, "Load"): each queued event runs at most CONCURRENCY requests at once (one
# torch thread each, so about one per core); at most QUEUE_SIZE requests wait, and the one
# after that is told "queue is full" at once instead of waiting without bound.
CONCURRENCY = int(os.environ.get("VAEGAN_CONCURRENCY", "2"))
QUEUE_SIZE = int(os.environ.get("VAEGAN_QUEUE_SIZE", "64"))
# Gradio keeps each visitor's session (its gr.State values, the components its events changed)
# until SESSIONS more recently active sessions push it out (Gradio's default: 10,000). A visitor
# whose session went keeps the page; what it loses is the Sample grid's codes (a click on the
# grid then asks to sample again) and an unfinished model switch.
SESSIONS = int(os.environ.get("VAEGAN_SESSIONS", "1000"))
# A request body other than a file upload (which MAX_FILE_SIZE bounds) is a few hundred bytes
# of JSON; anything over this is refused (413) before it is read, let alone parsed.
MAX_BODY = 256 * 1024


# The public endpoints are also MCP tools (Gradio's MCP server, the gradio[mcp] extra): an
# agent connects at /gradio_api/mcp/ (streamable HTTP; SSE at /gradio_api/mcp/sse), where each
# tool is named after its handler (on a Space, prefixed with the Space's name) and described by
# the handler's docstring (README, "MCP"). VAEGAN_MCP=0 (read at launch) turns it off; an
# explicit launch(..., mcp_server=...) wins over the variable.
def mcp_wanted() -> bool:
    return os.environ.get("VAEGAN_MCP", "1").strip().lower() not in {"0", "false", "no", "off"}


def launch(blocks: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, **kw):
    """Launch a create_demo() app on host:port; blocks unless prevent_thread_lock=True.
    Raises OSError when the port is taken."""
    block = not kw.pop("prevent_thread_lock", False)
    kw.setdefault("mcp_server", mcp_wanted())
    if kw["mcp_server"] is not False:  # (None: Gradio's own GRADIO_MCP_SERVER decides)
        json_inputs_take_any_json(blocks)
    share = blocks.vaegan_fair_share = FairShare()
    middleware = [Middleware(limit_body, max_bytes=MAX_BODY),
                  Middleware(guard, share=share, costs=live.COSTS)]
    blocks.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)
    name_the_arguments(blocks, public_parameter_names(blocks))
    result = blocks.launch(server_name=host, server_port=port, theme=THEME, css=CSS, ssr_mode=False,
                           max_file_size=MAX_FILE_SIZE, share=False, show_error=False,
                           head=live.HEAD, prevent_thread_lock=True, app_kwargs={"middleware": middleware},
                           state_session_capacity=SESSIONS, **kw)
    returns_every_output(blocks)
    page = getattr(blocks, "vaegan_page", None)
    if page is not None:
        live.add_routes(blocks, page.models)
    if block:
        blocks.block_thread()
    return result
