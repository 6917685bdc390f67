"""Explore: a decoded picture and sliders that move its code along latent directions. While
a slider moves, frames come from the live route (ui/live.py); on release the public `decode`
event puts the exact picture in place."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import gradio as gr
import torch

from vaegan import latent
from vaegan.explorer import MAX_SEED, N_SLIDERS, SLIDER_LIMIT, SLIDER_STEP, YOURS, Explorer

from .. import links, live, plots
from ..components import basis_choices, friendly, image, read_json_file, slider_states
from ..directions import DirectionBuilder
from ..tab import Tab

PRIVATE = {"api_visibility": "private"}
MAX_CODE_FILE = 64 * 1024  # bytes of a code file read at all
MINIMAP_LABEL = "Where it sits: x, on the PC1/PC2 plane through the starting point +"


class ExploreTab(Tab):
    id, title = "explore", "Explore"
    intro = "Each slider pushes the code in one direction; watch the picture change as you drag."

    def __init__(self, page) -> None:
        super().__init__(page)
        self.yours = DirectionBuilder(self)

    def layout(self, ex: Explorer) -> None:
        first_basis = ex.basis(next(iter(ex.bases)))
        start = ex.seed_latent(0).tolist()
        with gr.Row(elem_id="explore-main"):  # on phones: picture, sliders, the rest (CSS)
            with gr.Column(scale=2, min_width=320, elem_id="explore-left"):
                self.image = image("Decoded picture", value=ex.decode([], first_basis.key, start),
                                   elem_id="explore-image")
                self.where = gr.Markdown("Starting point: seed 0", elem_id="origin-label")
                self.meter = gr.Markdown(ex.realism(start).text(), elem_id="explore-realism")
                self.origin = gr.JSON(start, visible=False)  # the starting point's z
                # the model's version in track URLs (ui/live.py; "" = no tracks for this model)
                self.track_version = gr.Textbox(live.track_version(ex), visible=False)
                self.reset_btn = gr.Button("Reset sliders to the starting point", variant="primary",
                                           elem_id="reset")
                with gr.Row(equal_height=True):
                    self.origin_seed = gr.Number(0, label="Seed", precision=0, minimum=0,
                                                 maximum=MAX_SEED, min_width=90)
                    with gr.Column(min_width=160):
                        self.seed_btn = gr.Button("Start at this seed", size="md")
                        self.zero_btn = gr.Button("Start at z = 0", size="md")
                with gr.Row():
                    self.link_btn = gr.Button("Copy link", size="sm", elem_id="copy-link")
                    self.save_btn = gr.Button("Download code", size="sm", elem_id="save-code")
                    self.load_btn = gr.UploadButton("Load code", size="sm", file_types=[".json"],
                                                    elem_id="load-code")
                self.share_query = gr.Textbox(visible=False)  # "?model=...": see ui/links.py
                self.share_url = gr.Textbox(label="Link to this picture (copied)", visible=False,
                                            buttons=["copy"], elem_id="share-url")
                self.code_file = gr.File(label="The code", visible=False)
            with gr.Column(scale=3, elem_id="explore-right"):
                self.basis = gr.Radio(self._choices(ex), value=first_basis.key, label="Directions",
                                      elem_id="basis")
                self.basis_info = gr.Markdown(first_basis.info, elem_id="basis-info")
                self.sliders = []
                states = slider_states(first_basis.labels)
                for i in range(0, N_SLIDERS, 2):  # two per row, the first ones matter most
                    with gr.Row():
                        for j in (i, i + 1):
                            self.sliders.append(gr.Slider(-SLIDER_LIMIT, SLIDER_LIMIT,
                                                          step=SLIDER_STEP, min_width=200,
                                                          elem_id=f"slider-{j + 1}", **states[j]))
                self.minimap = gr.Image(self._minimap(ex, start, start), label=MINIMAP_LABEL,
                                        type="pil", format="png", interactive=False, height=280,
                                        elem_id="explore-minimap", visible=ex.map.available,
                                        buttons=["fullscreen"])
                self.yours.layout(ex)

    def wire(self) -> None:
        model, sliders = self.page.model, self.sliders
        # while a slider moves, the page draws frames from the live routes (no queue, no server
        # event); on release the public `decode` event puts the exact picture in the image
        state = [self.basis, self.origin, model, self.track_version, self.yours.mine, *sliders]
        gr.on([s.input for s in sliders], None, state, None, js=live.SLIDER_JS,
              trigger_mode="multiple", queue=False, **PRIVATE)
        gr.on(None, None, state, None, js=live.CONTEXT_JS, trigger_mode="multiple", queue=False,
              **PRIVATE)  # at load and on every change: a grab can ask for its track at once
        gr.on([s.release for s in sliders], self.decode, [self.basis, self.origin], self.image,
              inputs_kwargs={**{f"slider_{i + 1}": s for i, s in enumerate(sliders)},
                             "directions": self.yours.mine, "model": model},
              api_name="decode", trigger_mode="always_last", show_progress="hidden")
        self.basis.input(self.set_basis, [self.basis, self.origin, self.yours.mine, model],
                         [*self.basis_outputs(), self.yours.box], **PRIVATE)
        self.reset_btn.click(self.reset, [self.origin, model], [*sliders, self.image],
                             **PRIVATE)
        self.zero_btn.click(self.start_at_zero, [model], self.open_outputs(), **PRIVATE)
        self.seed_btn.click(self.start_at_seed, [self.origin_seed, model],
                            self.open_outputs(), **PRIVATE)
        # whenever the exact picture changes (a release, a reset, a new starting point): its
        # realism and its place on the mini-map
        self.image.change(self.where_now, [self.basis, self.origin, self.yours.mine, *sliders, model],
                          [self.meter, self.minimap], trigger_mode="always_last",
                          show_progress="hidden", **PRIVATE)
        view = [self.basis, self.origin, self.yours.mine, *sliders, model]
        self.link_btn.click(self.make_link, view, [self.share_query, self.share_url],
                            **PRIVATE).then(None, self.share_query, self.share_url, js=links.COPY_JS,
                                            **PRIVATE)
        self.save_btn.click(self.save_code, view, self.code_file, **PRIVATE)
        self.load_btn.upload(self.load_code, [self.load_btn, model],
                             self.open_outputs(), **PRIVATE)
        self.yours.wire()

    # ---- handlers --------------------------------------------------------------------------
    @friendly
    def decode(self, basis, origin, model=None, directions=None, **values):
        """The picture at origin + basis @ sliders (sliders: slider_1 ... slider_12, each -3 to 3).

        Args:
            basis: the directions: "kl" (most informative dimensions), "pca" (principal directions), "class" (class attribute vectors), "attribute" (a model's own, e.g. the emoji model's skin tone) or "yours" (the vectors in directions)
            origin: the starting code, a list of latent_dim numbers (32 for the bundled models); null: all zeros
            model: a name from the Model list; left out: the app's default model
            directions: for basis "yours" only: a list of 1-12 vectors of latent_dim numbers, or of {"name", "vector"} as the direction tool returns
        """
        m = self.page.explorer(model)
        values = [values[f"slider_{i + 1}"] for i in range(N_SLIDERS)]
        return {self.image: m.decode(values, self.basis_of(m, basis, directions), origin)}

    @staticmethod
    def basis_of(m: Explorer, basis, mine):
        """A basis key, or for "yours" the visitor's own directions as a Basis."""
        if basis != YOURS:
            return basis
        if not mine:
            raise ValueError("you have no directions of your own yet: make one under "
                             "'Your own directions' (two groups of pictures)")
        return m.custom_basis(mine)

    @staticmethod
    def _choices(m: Explorer) -> list:
        return [*basis_choices(m), ("Yours", YOURS)]

    def basis_outputs(self) -> list:
        return [self.basis, *self.sliders, self.basis_info, self.image]

    def basis_update(self, m: Explorer, basis, mine, origin) -> dict:
        """The sliders zeroed and relabelled for `basis`, and the picture (the origin's)."""
        b = m.basis(self.basis_of(m, basis, mine))
        return {self.basis: basis, **self._sliders_for(m, b), self.image: m.decode([], b, origin)}

    @friendly
    def set_basis(self, basis, origin, mine, model) -> dict:
        """Relabel and zero the sliders for another set of directions; decode once. "Yours"
        before any direction is made: the first basis, and the builder opens."""
        m = self.page.explorer(model)
        if basis == YOURS and not mine:
            gr.Info("You have no directions of your own yet: make one below, from two groups "
                    "of pictures.")
            return {**self.basis_update(m, next(iter(m.bases)), mine, origin),
                    self.yours.box: gr.Accordion(open=True)}
        return self.basis_update(m, basis, mine, origin)

    @friendly
    def reset(self, origin, model) -> dict:
        """All sliders to 0 and one decode, from one handler (at 0 every basis gives the origin)."""
        return {**{s: 0.0 for s in self.sliders},
                self.image: self._origin_picture(self.page.explorer(model), origin)}

    @staticmethod
    def _origin_picture(m: Explorer, origin):
        """The picture with every slider at 0 (the same for every basis: origin + B @ 0)."""
        return m.decode([], next(iter(m.bases)), origin)

    def open_at(self, z, where: str, model) -> dict:
        """Open the Explore tab at a new starting point z (what the other tabs call); the
        sliders go to 0, where every basis shows z itself."""
        return {self.page.tab_box: gr.Tabs(selected=self.id), self.origin: z,
                self.where: f"Starting point: {where}", **{s: 0.0 for s in self.sliders},
                self.image: self._origin_picture(self.page.explorer(model), z)}

    def open_outputs(self) -> list:
        return [self.page.tab_box, self.origin, self.where, *self.sliders, self.image]

    @friendly
    def start_at_seed(self, seed, model) -> dict:
        return self.open_at(self.page.explorer(model).seed_latent(seed).tolist(), f"seed {seed}",
                            model)

    @friendly
    def start_at_zero(self, model) -> dict:
        return self.open_at(self.page.explorer(model).zero_latent().tolist(),
                            "the origin (all zeros)", model)

    @friendly
    def where_now(self, basis, origin, mine, *values_and_model) -> dict:
        """The realism meter and the mini-map of the code the sliders point at."""
        *values, model = values_and_model
        m = self.page.explorer(model)
        if (basis != YOURS and basis not in m.bases) or (
                origin is not None and len(origin) != m.config.latent_dim):
            # the picture changed with a model switch, and the page read the basis or the
            # starting point before the switch's new values landed (the other model's: the
            # emoji model's skin tone, a 32-number code for a 64-number model): the switch
            # itself drew this model's meter and mini-map
            return {self.meter: gr.skip()}
        z = m.latent(values, self.basis_of(m, basis, mine), origin)
        return {self.meter: m.realism(z.tolist()).text(), self.minimap: self._minimap(m, origin, z)}

    @staticmethod
    def _minimap(m: Explorer, origin, z):
        """The map's plane of PC1 and PC2 through the starting point, the code marked (or None
        for a model without a map)."""
        if not m.map.available or "pca" not in m.bases:
            return None
        view = m.map_view("plane", origin)
        at = latent.coordinates(torch.as_tensor(z, dtype=torch.float32), view.origin, view.directions)
        return plots.map_picture(view, mark=tuple(at.tolist()), size=plots.MINI_SIZE, legend=False)[0]

    # ---- links and codes ---------------------------------------------------------------------
    @friendly
    def make_link(self, basis, origin, mine, *values_and_model) -> dict:
        """The query string of this view (the page's js then makes it a URL and copies it)."""
        *values, model = values_and_model
        m = self.page.explorer(model)
        link = links.explore_link(m, basis, origin, values, mine)
        return {self.share_query: links.query(m, link), self.share_url: gr.Textbox(visible=True)}

    def link_outputs(self) -> list:
        return [self.page.tab_box, *self.basis_outputs(), self.origin, self.where]

    def open_link(self, m: Explorer, link) -> dict:
        states = slider_states(m.basis(link.basis).labels)
        for i, v in enumerate(link.values):
            states[i]["value"] = v
        return {self.page.tab_box: gr.Tabs(selected=self.id),
                self.basis: gr.Radio(self._choices(m), value=link.basis),
                **{s: gr.Slider(**st) for s, st in zip(self.sliders, states)},
                self.basis_info: m.basis(link.basis).info, self.origin: link.z,
                self.where: "Starting point: the one in the link",
                self.image: m.decode(link.values, link.basis, link.z)}

    @friendly
    def save_code(self, basis, origin, mine, *values_and_model):
        """The code the sliders point at, as a JSON file ({"model", "z"})."""
        *values, model = values_and_model
        m = self.page.explorer(model)
        z = m.latent(values, self.basis_of(m, basis, mine), origin)
        path = Path(tempfile.mkdtemp(prefix="vaegan-code-")) / "code.json"
        path.write_text(json.dumps({"format": CODE_FORMAT, "model": m.spec, "z": z.tolist()}))
        return gr.File(str(path), visible=True)

    @friendly
    def load_code(self, file, model) -> dict:
        m = self.page.explorer(model)
        z, saved_from = read_code_file(file, m)
        where = "a loaded code" + (f" (saved from {saved_from})" if saved_from != m.spec else "")
        return self.open_at(z, where, model)

    # ---- another model ---------------------------------------------------------------------
    def _sliders_for(self, m: Explorer, basis) -> dict:
        b = m.basis(basis)
        return {**{s: gr.Slider(**st) for s, st in zip(self.sliders, slider_states(b.labels))},
                self.basis_info: b.info}

    def model_inputs(self) -> list:
        return [self.origin_seed]

    def model_outputs(self) -> list:
        return [self.basis, self.basis_info, *self.sliders, self.image, self.origin, self.where,
                self.track_version, self.meter, self.minimap, *self.yours.outputs()]

    def show(self, m: Explorer, values: dict) -> dict:
        key, seed = next(iter(m.bases)), values.get(self.origin_seed, 0)
        z = m.seed_latent(seed).tolist()
        return {self.basis: gr.Radio(self._choices(m), value=key), **self._sliders_for(m, key),
                **self.yours.show(m),
                self.image: m.decode([], key, z), self.origin: z,
                self.where: f"Starting point: seed {seed}",
                self.track_version: live.track_version(m), self.meter: m.realism(z).text(),
                self.minimap: gr.Image(self._minimap(m, z, z), visible=m.map.available)}


CODE_FORMAT = "vaegan-code/1"


def read_code_file(file, m: Explorer) -> tuple[list[float], str]:
    """A downloaded code file -> (z, the model it was saved from), checked against model m."""
    data = read_json_file(file, CODE_FORMAT, "code file", MAX_CODE_FILE)
    return m.origin(data.get("z"), "z").tolist(), str(data.get("model", ""))[:200]
