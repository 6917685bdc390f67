"""Directions of your own, in the Explore tab: two groups of pictures ("these" and "those"),
the difference of their mean codes as a new slider in the "Yours" basis of this page only.
Pictures come from uploads, the camera, a drawing, the test-set examples or the picture the
sliders show now (so a Sample or Map pick, opened in Explore, can be added). The directions
live in the page (a hidden JSON box the live route also reads), can be downloaded as a small
JSON file and loaded again. Also the public /direction endpoint."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import gradio as gr

from vaegan.explorer import MAX_GROUP, N_SLIDERS, YOURS, Explorer

from .components import drawing, friendly, read_json_file, sketchpad
from .gradio_fixes import not_an_mcp_tool

PRIVATE = {"api_visibility": "private"}
SIDES = {"these": "These", "those": "Those"}
HELP = ("Put pictures that have something in **These** and pictures that lack it in **Those** "
        "(at least one each); the direction is the mean code of These minus the mean code of "
        "Those, and becomes a slider under **Yours**.")
MAX_FILE = 256 * 1024  # bytes of a directions file read at all
FORMAT = "vaegan-directions/1"


def _pictures(gallery) -> list:
    """A gallery's value -> its pictures' file paths."""
    return [item[0] if isinstance(item, (tuple, list)) else item for item in (gallery or [])]


class DirectionBuilder:
    """The "Your own directions" accordion of the Explore tab (explore: the ExploreTab)."""

    def __init__(self, explore) -> None:
        self.explore = explore
        self.page = explore.page

    def layout(self, ex: Explorer) -> None:
        self.mine = gr.JSON([], visible=False)  # [{"name", "model", "vector", ...}], <= N_SLIDERS
        with gr.Accordion("Your own directions", open=False, elem_id="yours") as self.box:
            gr.Markdown(HELP, elem_classes="explain")
            with gr.Row():
                self.groups = {side: gr.Gallery(label=f"{title} (0 pictures)", type="filepath",
                                                columns=6, height=170, format="png",
                                                sources=["upload", "clipboard", "webcam"],
                                                interactive=True, elem_classes="pixelated",
                                                elem_id=f"group-{side}", file_types=["image"],
                                                allow_preview=False)
                               for side, title in SIDES.items()}
            with gr.Row(equal_height=False):
                self.side = gr.Radio([(t, s) for s, t in SIDES.items()], value="these",
                                     label="Add to", min_width=160, scale=1)
                self.add_now = gr.Button("Add the picture shown above", scale=1, size="md",
                                         elem_id="add-current")
                self.example = gr.Dropdown(self._example_names(ex), label="Add a test-set example",
                                           value=None, scale=1, min_width=180,
                                           visible=bool(ex.examples))
            with gr.Accordion("Draw one", open=False):
                self.sketch = sketchpad("Draw one (dark or coloured on white)", elem_id="yours-sketch")
                self.add_drawing = gr.Button("Add the drawing", elem_id="add-drawing")
            with gr.Row(equal_height=True):
                self.name = gr.Textbox(label="Name of the direction", placeholder="e.g. sleeves",
                                       max_length=60, scale=2, elem_id="direction-name")
                self.make = gr.Button("Make the direction", variant="primary", scale=1,
                                      elem_id="make-direction")
            self.note = gr.Markdown(elem_id="yours-note")
            with gr.Row():
                self.save = gr.Button("Download your directions", size="sm")
                self.load = gr.UploadButton("Load directions (.json)", file_types=[".json"],
                                            size="sm")
                self.forget = gr.Button("Remove your directions", size="sm", variant="stop")
            self.file = gr.File(label="Your directions", visible=False)
            # the public /direction endpoint (its inputs: the groups, the name, the model)
            self.api_trigger = gr.Button(visible=False)
            self.result = gr.JSON(visible=False, label="direction")

    @staticmethod
    def _example_names(ex: Explorer) -> list[tuple[str, int]]:
        return [(name, i) for i, (_, name) in enumerate(ex.examples)]

    def wire(self) -> None:
        ex, model = self.explore, self.page.model
        for side, box in self.groups.items():  # (an upload into the gallery itself)
            box.upload(self._count_label(side), box, box, show_progress="hidden", **PRIVATE)
        both = [self.side, *self.groups.values()]
        self.add_now.click(self.add_current, [*both, ex.basis, ex.origin, self.mine, *ex.sliders,
                                              model], list(self.groups.values()), **PRIVATE)
        self.example.input(self.add_example, [*both, self.example, model],
                           [*self.groups.values(), self.example], **PRIVATE)
        self.add_drawing.click(self.add_sketch, [*both, self.sketch], list(self.groups.values()),
                               **PRIVATE)
        changed = [self.mine, self.note, *ex.basis_outputs()]
        self.make.click(self.make_direction, [*self.groups.values(), self.name, self.mine,
                                              ex.origin, model], changed, **PRIVATE)
        self.save.click(self.download, [self.mine, model], self.file, **PRIVATE)
        self.load.upload(self.upload, [self.load, self.mine, ex.origin, model], changed, **PRIVATE)
        self.forget.click(self.remove_all, [ex.origin, model], changed, **PRIVATE)
        # the public endpoint: two lists of pictures and a name -> the direction
        self.api_trigger.click(self.direction, None, self.result, api_name="direction",
                               inputs_kwargs={"these": self.groups["these"],
                                              "those": self.groups["those"], "name": self.name,
                                              "model": model})

    # ---- groups --------------------------------------------------------------------------
    @staticmethod
    def _label(side: str, n: int) -> str:
        return f"{SIDES[side]} ({n} picture{'s' if n != 1 else ''})"

    def _count_label(self, side: str):
        def relabel(gallery):
            return gr.Gallery(label=self._label(side, len(gallery or [])))
        return relabel

    def _added(self, side, these, those, pictures: list) -> dict:
        groups = {"these": list(these or []), "those": list(those or [])}
        if len(groups[side]) + len(pictures) > MAX_GROUP:
            raise gr.Error(f"{SIDES[side]} holds at most {MAX_GROUP} pictures; remove some first")
        groups[side] += [(p, None) for p in pictures]
        return {self.groups[s]: gr.Gallery(g, label=self._label(s, len(g)))
                for s, g in groups.items()}

    def _file(self, image) -> str:
        path = Path(tempfile.mkdtemp(prefix="vaegan-yours-")) / "picture.png"
        image.save(path)
        return str(path)

    @friendly
    def add_current(self, side, these, those, basis, origin, mine, *values_and_model) -> dict:
        *values, model = values_and_model
        m = self.page.explorer(model)
        picture = m.decode(values, self.explore.basis_of(m, basis, mine), origin, scale=1)
        return self._added(side, these, those, [self._file(picture)])

    @friendly
    def add_example(self, side, these, those, index, model) -> dict:
        if index is None:
            return {self.example: gr.skip()}
        picture = self.page.explorer(model).example(index)
        return {**self._added(side, these, those, [self._file(picture)]), self.example: None}

    @friendly
    def add_sketch(self, side, these, those, sketch) -> dict:
        return self._added(side, these, those, [self._file(drawing(sketch))])

    # ---- directions ------------------------------------------------------------------------
    def _changed(self, m: Explorer, mine: list, origin, note: str) -> dict:
        """The page after the visitor's directions changed: the Yours basis shown (or, with
        none left, the first basis), sliders at 0."""
        basis = YOURS if mine else next(iter(m.bases))
        return {self.mine: mine, self.note: note,
                **self.explore.basis_update(m, basis, mine, origin)}

    @friendly
    def make_direction(self, these, those, name, mine, origin, model) -> dict:
        m, mine = self.page.explorer(model), list(mine or [])
        if len(mine) >= N_SLIDERS:
            raise gr.Error(f"You have {N_SLIDERS} directions, as many as there are sliders; "
                           "remove them or download them first")
        d = m.direction(_pictures(these), _pictures(those), name or f"direction {len(mine) + 1}")
        mine.append(d)
        return self._changed(m, mine, origin, f"Made **{d['name']}** from {d['these']} and {d['those']} "
                                      f"pictures (length {d['norm']:.2f}): it is slider "
                                      f"{len(mine)} under Yours.")

    def download(self, mine, model):
        if not mine:
            raise gr.Error("You have no directions yet: make one first")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(tempfile.mkdtemp(prefix="vaegan-yours-")) / f"directions-{stamp}.json"
        path.write_text(json.dumps({"format": FORMAT, "model": self.page.explorer(model).spec,
                                    "directions": mine}, indent=1))
        return gr.File(str(path), visible=True)

    @friendly
    def upload(self, file, mine, origin, model) -> dict:
        m = self.page.explorer(model)
        loaded = read_directions(file, m)
        mine = (list(mine or []) + loaded)
        if len(mine) > N_SLIDERS:
            raise gr.Error(f"That makes {len(mine)} directions; there are {N_SLIDERS} sliders. "
                           "Remove yours first")
        return self._changed(m, mine, origin, f"Loaded {len(loaded)} direction"
                                      f"{'s' if len(loaded) != 1 else ''}: "
                                      + ", ".join(d["name"] for d in loaded) + ".")

    @friendly
    def remove_all(self, origin, model) -> dict:
        return self._changed(self.page.explorer(model), [], origin, "Your directions are removed.")

    @not_an_mcp_tool  # (its pictures come in galleries: see ui/gradio_fixes.py)
    @friendly
    def direction(self, these, those, name="", model=None) -> dict:
        """A direction of your own: the mean code of the pictures in these minus the mean code of those.

        Args:
            these: 1 to 64 pictures of one thing each (a garment, an emoji) (PNG, JPEG, WebP, BMP or GIF)
            those: 1 to 64 pictures to subtract
            name: what to call it, at most 60 characters
            model: a name from the Model list; left out: the app's default model
        """
        m = self.page.explorer(model)
        return {self.result: m.direction(_pictures(these), _pictures(those), name)}

    # ---- another model ---------------------------------------------------------------------
    def outputs(self) -> list:
        return [self.mine, self.note, *self.groups.values(), self.example]

    def show(self, m: Explorer) -> dict:
        return {self.mine: [], self.note: "", **{g: None for g in self.groups.values()},
                self.example: gr.Dropdown(self._example_names(m), value=None,
                                          visible=bool(m.examples))}


def read_directions(file, m: Explorer) -> list[dict]:
    """A downloaded directions file -> its directions, checked against model m (one sentence
    when it is not such a file, is for a model with codes of another length, or is too long)."""
    data = read_json_file(file, FORMAT, "directions file", MAX_FILE)
    directions = data.get("directions")
    basis = m.custom_basis(directions)  # checks the count and every vector
    return [{"name": name, "model": str(data.get("model", "")), "vector": v.tolist(),
             "norm": float(v.norm()), **{side: _count(d, side) for side in SIDES}}
            for name, v, d in zip(basis.labels, basis.matrix.T, directions)]


def _count(d, side: str) -> int:
    n = d.get(side, 0) if isinstance(d, dict) else 0
    return n if isinstance(n, int) and 0 <= n <= MAX_GROUP else 0
