"""The page: a title, the model's status line and Model list, and the tabs of ui/tabs/.

Which model a page shows is that page's own: the hidden `model` box, which every handler
takes as its last input (the public endpoints' optional `model` parameter, the default
model when left out). Picking another model replaces everything that came from the old one,
in one response built from each tab's show().
"""
from __future__ import annotations

import gradio as gr

from vaegan.explorer import Explorer
from vaegan.hub import ModelLoadError

from . import links
from .gradio_fixes import install
from .models import LOAD_WAIT_S, Models
from .server import DELETE_CACHE
from .tab import Tab
from .tabs import TABS

TITLE = "VAE-GAN Latent Explorer"
INTRO = ("A VAE/GAN<span class='not-on-phones'> (Larsen et al. 2016)</span> squeezes each "
         "picture into a short list of numbers, its *latent code*, and paints pictures back "
         "from such codes. Here you can see what those numbers mean.")  # (phones: ui/components.py)


class Page:
    """The shared parts of the page, and the tabs by id (page.tabs["explore"])."""

    def __init__(self, models: Models) -> None:
        self.models = models
        self.tabs: dict[str, Tab] = {cls.id: cls(self) for cls in TABS}

    def explorer(self, model: str | None) -> Explorer:
        """A listed model; API calls wait a little for one that is still loading."""
        return self.models.get(model, LOAD_WAIT_S)

    def build(self) -> gr.Blocks:
        ex = self.models.default
        with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=DELETE_CACHE) as demo:
            gr.Markdown(f"# {TITLE}\n{INTRO}", elem_id="header")
            with gr.Row(equal_height=True, elem_id="status-row"):  # the list wraps below when narrow
                self.status = gr.Markdown(ex.status, elem_id="status")
                self.picker = gr.Dropdown(self.models.specs, value=ex.spec, label="Model", scale=0,
                                          min_width=280, visible=len(self.models.specs) > 1,
                                          elem_id="model-picker",
                                          info="A Hub model may take a moment the first time")
            self.model = gr.Textbox(ex.spec, visible=False, label="Model")  # what this page shows
            self.link = gr.Textbox("", visible=False)  # the page's query string (ui/links.py)
            with gr.Tabs(selected=next(iter(self.tabs))) as self.tab_box:
                for tab in self.tabs.values():
                    with gr.Tab(tab.title, id=tab.id, elem_id=f"tab-{tab.id}") as tab.box:
                        if tab.intro:
                            gr.Markdown(tab.intro, elem_classes="explain")
                        tab.layout(ex)
            for tab in self.tabs.values():
                tab.wire()
            self._wire_model_switch(demo)
        demo.vaegan_page = self  # launch() serves the live routes for self.models
        return demo

    # ---- switching models ------------------------------------------------------------------
    def _wire_model_switch(self, demo: gr.Blocks) -> None:
        inputs = {self.picker, self.model}.union(*(t.model_inputs() for t in self.tabs.values()))
        outputs = [self.model, self.picker, self.status,
                   *(c for t in self.tabs.values() for c in t.model_outputs())]
        private = {"api_visibility": "private", "concurrency_limit": None}
        self.picker.input(self.switch, inputs, outputs, show_progress_on=[self.status, self.picker],
                          **private)
        if self.models.preferred:  # a Hub --model: each new page opens on it once it has loaded
            demo.load(self.open_preferred, inputs | {self.link}, outputs, show_progress="hidden",
                      **private)
        # a link: the page's query string, read in the browser (no request when there is none),
        # then opened by the server
        demo.load(None, None, self.link, js=links.READ_JS, **private)
        link_outputs = list(dict.fromkeys(
            [*outputs, *(c for t in self.tabs.values() for c in t.link_outputs())]))
        self.link.change(self.open_link, inputs | {self.link}, link_outputs, **private)

    def show(self, m: Explorer, values: dict) -> dict:
        """Every model-dependent output for a page that now shows m."""
        out = {self.model: m.spec, self.picker: m.spec, self.status: m.status}
        for tab in self.tabs.values():
            out.update(tab.show(m, values))
        return out

    def switch(self, values: dict, choice: str | None = None, timeout: float | None = None) -> dict:
        """Show the model picked in the list (or `choice`): waits for its load (this event has
        no concurrency limit, so nobody else waits), or keeps the current one and says why not."""
        choice = values[self.picker] if choice is None else choice
        current = values.get(self.model)
        now = self.models.get(current, 0) if self.models.ready(current) else self.models.default
        try:
            new = self.models.get(choice, timeout)
        except (ModelLoadError, ValueError) as e:  # not listed, still loading, or failed
            return {self.picker: now.spec, self.status: Models.failure(choice, e, now)}
        try:
            return self.show(new, values)
        except (ValueError, gr.Error):  # e.g. an emptied seed box: start from the defaults
            return self.show(new, {})

    def open_preferred(self, values: dict) -> dict:
        if values.get(self.link):  # a link names its own model
            return {self.status: gr.skip()}
        return self.switch(values, self.models.preferred, timeout=0)

    def open_link(self, values: dict) -> dict:
        """Show the view a link holds (ui/links.py), switching models if it names another; a
        link that cannot be opened leaves the page as it is and says why, in one sentence."""
        try:
            link = links.read(values.get(self.link), self.models.specs, self.explorer)
            if link is None:  # (an empty dict is not "nothing" to Gradio: it wants every output)
                return {self.status: gr.skip()}
            m = self.explorer(link.model)
            out = self.show(m, values) if link.model != values.get(self.model) else {}
            return {**out, **self.tabs[link.tab].open_link(m, link)}
        except (ValueError, ModelLoadError) as e:
            message = str(e).rstrip(".")
            gr.Warning(f"This link could not be opened: {message}. Here is the usual first view "
                       "instead.", duration=None)
            return {self.status: gr.skip()}


def create_demo(models: Models | Explorer) -> gr.Blocks:
    """The whole UI for a list of models (or one Explorer); the default model's initial
    pictures are computed here, once."""
    install()
    return Page(models if isinstance(models, Models) else Models(models)).build()
