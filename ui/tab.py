"""What a tab is: its layout, its events and handlers, and what it shows when the page
switches to another model. A new tab is a module under ui/tabs/ plus a line in its TABS."""
from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from vaegan.explorer import Explorer

if TYPE_CHECKING:
    from .page import Page


class Tab:
    id: str = ""  # the gr.Tab id (also what gr.Tabs(selected=...) takes)
    title: str = ""
    intro: str = ""  # the sentence under the tab's title

    def __init__(self, page: Page) -> None:
        self.page = page
        self.box: gr.Tab | None = None  # the gr.Tab, set by the page while it lays the tab out

    def layout(self, ex: Explorer) -> None:
        """Create the components (inside the gr.Tab), showing model ex's first pictures."""
        raise NotImplementedError

    def wire(self) -> None:
        """Attach the events; every tab's components exist when this runs."""

    def model_inputs(self) -> list[gr.components.Component]:
        """The components whose values show() reads (e.g. the seed box)."""
        return []

    def model_outputs(self) -> list[gr.components.Component]:
        """Everything show() may return."""
        return []

    def link_outputs(self) -> list[gr.components.Component]:
        """Everything open_link() may return."""
        return []

    def open_link(self, m: Explorer, link) -> dict:
        """{component: value} that shows a ui/links.Link made on this tab (model m, already
        shown). May raise ValueError."""
        return {}

    def show(self, m: Explorer, values: dict) -> dict:
        """{component: value} for a page that now shows model m; values holds model_inputs()'s
        values, or nothing (then: the defaults). May raise ValueError for bad values."""
        return {}
