"""Explore: a decoded picture and sliders that move its code along latent directions. While
a slider moves, frames come from the live route (ui/live.py); on release the public `decode`
event puts the exact picture in place."""
from __future__ import annotations

import gradio as gr
import torch

from vaegan import latent
from vaegan.explorer import MAX_SEED, N_SLIDERS, SLIDER_LIMIT, SLIDER_STEP, Explorer

from .. import live, plots
from ..components import basis_choices, friendly, image, slider_states
from ..tab import Tab

PRIVATE = {"api_visibility": "private"}
MINIMAP_LABEL = "Where it sits: x, on the PC1/PC2 plane through the starting point +"


class ExploreTab(Tab):
    id, title = "explore", "Explore"
    intro = "Each slider pushes the code in one direction; watch the picture change as you drag."

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
            with gr.Column(scale=3, elem_id="explore-right"):
                self.basis = gr.Radio(basis_choices(ex), value=first_basis.key, label="Directions",
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

    def wire(self) -> None:
        model, sliders = self.page.model, self.sliders
        # while a slider moves, the page draws frames from the live routes (no queue, no server
        # event); on release the public `decode` event puts the exact picture in the image
        state = [self.basis, self.origin, model, self.track_version, *sliders]
        gr.on([s.input for s in sliders], None, state, None, js=live.SLIDER_JS,
              trigger_mode="multiple", queue=False, **PRIVATE)
        gr.on(None, None, state, None, js=live.CONTEXT_JS, trigger_mode="multiple", queue=False,
              **PRIVATE)  # at load and on every change: a grab can ask for its track at once
        gr.on([s.release for s in sliders], self.decode, [self.basis, self.origin], self.image,
              inputs_kwargs={**{f"slider_{i + 1}": s for i, s in enumerate(sliders)}, "model": model},
              api_name="decode", trigger_mode="always_last", show_progress="hidden")
        self.basis.input(self.set_basis, [self.basis, self.origin, model],
                         [*sliders, self.basis_info, self.image], **PRIVATE)
        self.reset_btn.click(self.reset, [self.basis, self.origin, model], [*sliders, self.image],
                             **PRIVATE)
        self.zero_btn.click(self.start_at_zero, [self.basis, model], self.open_outputs(), **PRIVATE)
        self.seed_btn.click(self.start_at_seed, [self.origin_seed, self.basis, model],
                            self.open_outputs(), **PRIVATE)
        # whenever the exact picture changes (a release, a reset, a new starting point): its
        # realism and its place on the mini-map
        self.image.change(self.where_now, [self.basis, self.origin, *sliders, model],
                          [self.meter, self.minimap], trigger_mode="always_last",
                          show_progress="hidden", **PRIVATE)

    # ---- handlers --------------------------------------------------------------------------
    @friendly
    def decode(self, basis, origin, model=None, **values):
        """The picture at origin + basis @ sliders. basis: "kl" (most informative dimensions),
        "pca" (principal directions) or "class" (class attribute vectors); origin: the
        starting code (a list of latent_dim numbers; None: all zeros); slider_1 ... slider_12:
        how far to move along each direction, -3 to 3; model: a name from the Model list."""
        values = [values[f"slider_{i + 1}"] for i in range(N_SLIDERS)]
        return {self.image: self.page.explorer(model).decode(values, basis, origin)}

    @friendly
    def set_basis(self, basis, origin, model) -> dict:
        """Relabel and zero the sliders for another set of directions; decode once."""
        m = self.page.explorer(model)
        return {**self._sliders_for(m, basis), self.image: m.decode([], basis, origin)}

    @friendly
    def reset(self, basis, origin, model) -> dict:
        """All sliders to 0 and one decode, from one handler."""
        return {**{s: 0.0 for s in self.sliders}, self.image: self.page.explorer(model).decode([], basis, origin)}

    def open_at(self, z, where: str, basis, model) -> dict:
        """Open the Explore tab at a new starting point z (what the other tabs call)."""
        return {self.page.tab_box: gr.Tabs(selected=self.id), self.origin: z,
                self.where: f"Starting point: {where}", **{s: 0.0 for s in self.sliders},
                self.image: self.page.explorer(model).decode([], basis, z)}

    def open_outputs(self) -> list:
        return [self.page.tab_box, self.origin, self.where, *self.sliders, self.image]

    @friendly
    def start_at_seed(self, seed, basis, model) -> dict:
        return self.open_at(self.page.explorer(model).seed_latent(seed).tolist(), f"seed {seed}",
                            basis, model)

    @friendly
    def start_at_zero(self, basis, model) -> dict:
        return self.open_at(self.page.explorer(model).zero_latent().tolist(),
                            "the origin (all zeros)", basis, model)

    @friendly
    def where_now(self, basis, origin, *values_and_model) -> dict:
        """The realism meter and the mini-map of the code the sliders point at."""
        *values, model = values_and_model
        m = self.page.explorer(model)
        z = m.latent(values, basis, origin)
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

    # ---- another model ---------------------------------------------------------------------
    def _sliders_for(self, m: Explorer, basis: str) -> dict:
        b = m.basis(basis)
        return {**{s: gr.Slider(**st) for s, st in zip(self.sliders, slider_states(b.labels))},
                self.basis_info: b.info}

    def model_inputs(self) -> list:
        return [self.origin_seed]

    def model_outputs(self) -> list:
        return [self.basis, self.basis_info, *self.sliders, self.image, self.origin, self.where,
                self.track_version, self.meter, self.minimap]

    def show(self, m: Explorer, values: dict) -> dict:
        key, seed = next(iter(m.bases)), values.get(self.origin_seed, 0)
        z = m.seed_latent(seed).tolist()
        return {self.basis: gr.Radio(basis_choices(m), value=key), **self._sliders_for(m, key),
                self.image: m.decode([], key, z), self.origin: z,
                self.where: f"Starting point: seed {seed}",
                self.track_version: live.track_version(m), self.meter: m.realism(z).text(),
                self.minimap: gr.Image(self._minimap(m, z, z), visible=m.map.available)}
