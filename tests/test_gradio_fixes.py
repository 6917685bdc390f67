"""Each reliance of ui/gradio_fixes.py on a Gradio or Starlette internal, checked for the shape
it was written against: an upgrade that changes one fails here, naming the fix to revisit."""
from __future__ import annotations

import inspect

import gradio as gr
import pytest
from gradio import blocks, image_utils, processing_utils

from ui import gradio_fixes
from ui.components import upload


def test_the_fixes_name_the_gradio_version_they_were_written_against():
    assert gr.__version__ == gradio_fixes.GRADIO_VERSION, (
        f"Gradio is {gr.__version__}; ui/gradio_fixes.py was written against "
        f"{gradio_fixes.GRADIO_VERSION}: re-check each fix and its test, then update GRADIO_VERSION")


def test_save_pil_to_cache_is_still_the_module_function_image_outputs_call():
    """Fix 1 replaces processing_utils.save_pil_to_cache: it must keep its signature, its
    helpers, and be looked up through the module when gr.Image writes a PIL output."""
    gradio_fixes.install()
    replaced = inspect.signature(inspect.unwrap(gradio_fixes._GRADIOS_SAVE_PIL_TO_CACHE))
    ours = inspect.signature(gradio_fixes._save_pil_to_cache)
    assert list(replaced.parameters) == list(ours.parameters) == ["img", "cache_dir", "name", "format"]
    assert callable(processing_utils.encode_pil_to_bytes) and callable(processing_utils.hash_bytes)
    assert "processing_utils.save_pil_to_cache(" in inspect.getsource(image_utils), \
        "gr.Image no longer calls processing_utils.save_pil_to_cache: fix 1 no longer applies"
    assert processing_utils.save_pil_to_cache is gradio_fixes._save_pil_to_cache


def test_blocks_still_call_each_components_own_preprocess():
    """Fix 2 sets preprocess on the component instance; Blocks must look it up there."""
    source = inspect.getsource(blocks.Blocks.preprocess_data)
    assert "block.preprocess" in source, \
        "Blocks.preprocess_data no longer calls block.preprocess: check_input no longer applies"
    box = gr.Number(minimum=0, maximum=5)
    seen = []
    gradio_fixes.check_input(box, lambda payload, error, value: seen.append((payload, error)))
    assert box.preprocess(3) == 3 and seen == []
    box.preprocess(9)
    assert seen and seen[0][0] == 9 and isinstance(seen[0][1], gr.Error)


def test_blocks_functions_still_carry_the_public_parameter_names(explorer_tiny):
    from ui.page import create_demo
    demo = create_demo(explorer_tiny)
    fields = {"api_name", "api_visibility", "inputs", "input_parameter_names"}
    fn = next(iter(demo.fns.values()))
    assert fields <= set(vars(fn)), f"BlockFunction lacks {fields - set(vars(fn))}"
    names = gradio_fixes.public_parameter_names(demo)
    sample = demo.vaegan_page.tabs["sample"]
    assert names[sample.count._id] == "count" and names[sample.seed._id] == "seed"
    assert sample.grid._id not in names  # an output, not a parameter


def test_launch_still_takes_middleware_and_exposes_the_server_app():
    params = inspect.signature(gr.Blocks.launch).parameters
    assert {"app_kwargs", "head", "ssr_mode", "max_file_size"} <= set(params)
    assert "self.server_app" in inspect.getsource(gr.Blocks.launch), \
        "Blocks.launch no longer sets server_app: add_get_route no longer applies"


def test_the_upload_box_keeps_gradios_checks_and_adds_our_sentence(tmp_path):
    from gradio.data_classes import ImageData
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"not a picture at all")
    box = upload("Picture")
    with pytest.raises(gr.Error, match=r"That file could not be read as a picture; upload a PNG"):
        box.preprocess(ImageData(path=str(bad), orig_name="notes.png"))


def test_a_session_keeps_no_copies_of_component_configs(explorer_tiny):
    """Fix 4: SessionState builds config_values from blocks.blocks (for deep links only) and
    adds or refreshes an entry whenever an event touches a component; here it keeps none."""
    import gradio.blocks
    from gradio.state_holder import SessionState

    from ui.page import create_demo
    demo = create_demo(explorer_tiny)  # installs the fixes
    original = inspect.getsource(gradio_fixes._GRADIOS_SESSION_INIT)
    assert "config_values" in original and "blocks.blocks" in original and "default_config" in original
    calls = inspect.getsource(gradio.blocks.Blocks)
    assert "state._update_value_in_config(" in calls and "state._update_config(" in calls
    session = SessionState(demo)
    assert session.config_values == {} and session.blocks_config is not demo.default_config
    grid = demo.vaegan_page.tabs["sample"].grid
    session._update_value_in_config(grid._id, "x")  # an event changed it: nothing is kept
    session._update_config(grid._id)
    session[grid._id] = grid  # a component replaced by an update: its config is not copied
    assert session.config_values == {} and list(session.components) == []
    assert session[grid._id] is grid


def test_the_mcp_servers_internals_are_still_there():
    """Fix 5 (a, b, c): what ui/gradio_fixes.py relies on in Gradio's MCP server."""
    from gradio.mcp import GradioMCPServer
    assert "type" in gr.JSON().api_info_as_input()  # (a: {"type": {}}, not JSON Schema)
    source = inspect.getsource(GradioMCPServer)
    assert "async def _execute_tool_without_progress(self, job" in source  # (b)
    assert 'block_fn.fn._mcp_type != "tool"' in source  # (c: how a function is kept off)
    assert "self.mcp_server_obj" in inspect.getsource(gr.Blocks.launch)


def test_a_components_check_survives_an_update_that_replaces_it_in_a_session(explorer_tiny):
    """Fix 2 in a session: an output updated with new properties (gr.Radio(choices=...)) is
    replaced, for that session, by `block.__class__(**constructor_args | update)` stored with
    SessionState.__setitem__; the new instance keeps our check."""
    import gradio.blocks
    from gradio.state_holder import SessionState

    from ui.page import create_demo
    assert "state[block._id] = block.__class__(**kwargs)" in inspect.getsource(gradio.blocks.Blocks)
    demo = create_demo(explorer_tiny)
    from ui.gradio_fixes import public_parameter_names
    from ui.server import name_the_arguments
    name_the_arguments(demo, public_parameter_names(demo))
    basis = demo.vaegan_page.tabs["explore"].basis
    session = SessionState(demo)
    replaced = gr.Radio(choices=[("Most informative dimensions", "kl")], render=False)
    session[basis._id] = replaced
    assert session[basis._id] is replaced and replaced._checked
    with pytest.raises(gr.Error, match=r"Basis must be one of \['kl'\], got 'nonsense'"):
        replaced.preprocess("nonsense")
    assert replaced.preprocess("attribute") == "attribute"  # another model's basis: the handler checks
