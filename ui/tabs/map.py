"""Map: where the test pictures sit in the latent space, a click decodes any place of it, and
an atlas paints a whole slice. Also the public /realism endpoint (the realism meter)."""
from __future__ import annotations

from collections import OrderedDict

import gradio as gr

from vaegan.explorer import N_SLIDERS, Explorer
from vaegan.latent_map import ATLAS_N, EXTENT, PROJECTIONS

import torch

from vaegan import latent

from .. import links, plots
from ..components import basis_choices, friendly, image
from ..tab import Tab

PRIVATE = {"api_visibility": "private"}
HINT = "Click the map: the picture at that place appears here, with how real it looks."
FIELDS_KEPT = 16  # realism backgrounds remembered (each costs a 48 x 48 decode)


class MapTab(Tab):
    id, title = "map", "Map"
    intro = ("Every dot is a test picture, placed by its code. Click anywhere to decode that "
             "place; shade the map by how real the discriminator finds each place; paint a "
             "whole slice as an atlas below.")

    def layout(self, ex: Explorer) -> None:
        self._fields: OrderedDict = OrderedDict()
        with gr.Row():
            with gr.Column(scale=3):
                self.picture = gr.Image(label="Latent map (click a place)", type="pil", format="png",
                                        interactive=False, elem_id="map-image", height=560,
                                        buttons=["download", "fullscreen"])
                self.note = gr.Markdown(elem_id="map-note")
                with gr.Row():
                    self.projection = gr.Radio([(t, k) for k, t in PROJECTIONS.items()], value="plane",
                                               label="Projection", scale=2)
                    self.shaded = gr.Checkbox(False, label="Shade by realism (planes only)", scale=1)
                with gr.Row():
                    self.basis = gr.Dropdown(basis_choices(ex), value=self._first_basis(ex),
                                             label="Directions from", min_width=200)
                    self.first = gr.Number(1, label="Direction across", precision=0, minimum=1,
                                           maximum=N_SLIDERS, min_width=120)
                    self.second = gr.Number(2, label="Direction up", precision=0, minimum=1,
                                            maximum=N_SLIDERS, min_width=120)
            with gr.Column(scale=2, min_width=280):
                self.picked = image("The picked place, decoded", height=300, elem_id="map-picked")
                self.meter = gr.Markdown(HINT, elem_id="map-realism")
                with gr.Row():
                    self.open_btn = gr.Button("Open in Explore", variant="primary", elem_id="map-open")
                    self.link_btn = gr.Button("Copy link", elem_id="map-link")
                self.share_query = gr.Textbox(visible=False)
                self.share_url = gr.Textbox(label="Link to this map (copied)", visible=False,
                                            buttons=["copy"], elem_id="map-share-url")
        with gr.Accordion("Atlas: a whole slice of the plane, decoded", open=True):
            with gr.Row():
                self.extent = gr.Slider(*EXTENT, value=3.0, step=0.25, label="Extent (each way)")
                self.n = gr.Slider(*ATLAS_N, value=16, step=1, label="Pictures per side")
                self.atlas_btn = gr.Button("Paint the atlas", variant="primary")
            self.atlas_image = image("Atlas: direction across left to right, direction up bottom to top",
                                     height=660, elem_id="atlas-image")
        self.frame = gr.State(None)  # the shown map's plots.Frame, as a dict
        self.code = gr.State(None)  # the picked code

    @staticmethod
    def _first_basis(ex: Explorer) -> str:
        return "pca" if "pca" in ex.bases else next(iter(ex.bases))

    def settings(self) -> list:
        explore = self.page.tabs["explore"]
        return [self.projection, self.basis, self.first, self.second, self.shaded, explore.origin,
                self.page.model]

    def wire(self) -> None:
        explore, model = self.page.tabs["explore"], self.page.model
        draw = {"fn": self.draw, "inputs": [*self.settings(), self.code],
                "outputs": [self.picture, self.frame, self.note], **PRIVATE}
        self.box.select(**draw)
        gr.on([self.projection.input, self.basis.input, self.first.submit, self.second.submit,
               self.shaded.input], **draw)
        self.picture.select(self.pick, [self.frame, *self.settings()],
                            [self.picked, self.meter, self.code, self.picture], **PRIVATE)
        self.open_btn.click(self.open_in_explore, [self.code, model],
                            explore.open_outputs(), **PRIVATE)
        self.link_btn.click(self.make_link, [*self.settings(), self.code],
                            [self.share_query, self.share_url], **PRIVATE).then(
            None, self.share_query, self.share_url, js=links.COPY_JS, **PRIVATE)
        self.atlas_btn.click(self.atlas, [self.basis, self.first, self.second, explore.origin,
                                          self.extent, self.n, model], self.atlas_image,
                             api_name="atlas")
        gr.api(self.realism, api_name="realism")

    # ---- the map -----------------------------------------------------------------------------
    def _view(self, m: Explorer, projection, basis, first, second, origin):
        return m.map_view(projection, origin, basis, first, second)

    def _field(self, m: Explorer, view, shaded: bool):
        """The realism background of a plane (remembered: the same plane costs one decode)."""
        if not shaded or view.directions is None:
            return None
        half = plots.limits(view)[1]
        key = (m.spec, tuple(view.origin.tolist()), tuple(view.directions.flatten().tolist()), half)
        if key not in self._fields:
            self._fields[key] = m.map.realism_field(view.origin, view.directions, half)
            while len(self._fields) > FIELDS_KEPT:
                self._fields.popitem(last=False)
        return self._fields[key]

    @friendly
    def draw(self, projection, basis, first, second, shaded, origin, model, code=None) -> dict:
        """The map; the picked code marked when it lies on the plane drawn."""
        m = self.page.explorer(model)
        if not m.map.available:
            return {self.picture: None, self.frame: None,
                    self.note: "⚠️ This model has no map yet: build its explorer assets with "
                               "`python -m vaegan.explorer build WEIGHTS_DIR`."}
        view = self._view(m, projection, basis, first, second, origin)
        return self._drawn(m, view, shaded, self._mark(view, code))

    @staticmethod
    def _mark(view, code):
        """Where a code sits on a plane view, when it lies on it (else None)."""
        if code is None or view.directions is None:
            return None
        z = torch.as_tensor(code, dtype=torch.float32)
        at = latent.coordinates(z, view.origin, view.directions)
        back = view.origin + view.directions @ at
        return tuple(at.tolist()) if (z - back).norm() <= 1e-3 * (1 + z.norm()) else None

    def _drawn(self, m: Explorer, view, shaded, mark=None) -> dict:
        field = self._field(m, view, shaded)
        picture, frame = plots.map_picture(view, field, mark)
        note = ("A click on the t-SNE map decodes the mean of the 8 nearest pictures' codes "
                "(weighted by nearness): t-SNE has no inverse." if view.directions is None else
                "The plane goes through Explore's starting point (the +); a click decodes exactly "
                "that place of the plane.")
        if shaded and field is None and view.directions is not None:
            note += " This model has no discriminator, so there is no realism shading."
        return {self.picture: picture, self.frame: frame.as_dict(), self.note: note}

    @friendly
    def pick(self, frame, projection, basis, first, second, shaded, origin, model,
             evt: gr.SelectData) -> dict:
        """A click on the map: decode the code at that place, with its realism."""
        if not frame or not evt.index:
            return {self.picked: gr.skip()}
        place = plots.Frame(**frame).to_data(*evt.index[:2])
        if place is None:  # on the axes' labels or the legend
            return {self.picked: gr.skip()}
        m = self.page.explorer(model)
        view = self._view(m, projection, basis, first, second, origin)
        z = m.map_code(view, *place)
        return {self.picked: m.decode([], "kl", z.tolist()), self.meter: m.realism(z).text(),
                self.code: z.tolist(), self.picture: self._drawn(m, view, shaded, place)[self.picture]}

    @friendly
    def make_link(self, projection, basis, first, second, shaded, origin, model, code) -> dict:
        m = self.page.explorer(model)
        link = links.Link(m.spec, "map", basis, m.origin(origin).tolist(), projection=projection,
                          first=first, second=second, shaded=shaded, pick=code or None)
        return {self.share_query: links.query(m, link), self.share_url: gr.Textbox(visible=True)}

    def link_outputs(self) -> list:
        explore = self.page.tabs["explore"]
        return [self.page.tab_box, self.projection, self.basis, self.first, self.second,
                self.shaded, explore.origin, self.picture, self.frame, self.note, self.picked,
                self.meter, self.code]

    def open_link(self, m: Explorer, link) -> dict:
        if not m.map.available:
            raise ValueError(f"{m.spec} has no map to open")
        view = self._view(m, link.projection, link.basis, link.first, link.second, link.z)
        mark, out = self._mark(view, link.pick), {}
        if link.pick is not None:
            out = {self.picked: m.decode([], "kl", link.pick), self.meter: m.realism(link.pick).text(),
                   self.code: link.pick}
        return {self.page.tab_box: gr.Tabs(selected=self.id), self.projection: link.projection,
                self.basis: link.basis, self.first: link.first, self.second: link.second,
                self.shaded: link.shaded, self.page.tabs["explore"].origin: link.z,
                **self._drawn(m, view, link.shaded, mark), **out}

    def open_in_explore(self, code, model) -> dict:
        if not code:
            raise gr.Error("Click the map first, then open that place in Explore.")
        return self.page.tabs["explore"].open_at(code, "a place picked on the map", model)

    # ---- public endpoints ----------------------------------------------------------------------
    @friendly
    def atlas(self, basis, direction_1, direction_2, origin, extent, n, model):
        """An n x n grid of pictures decoded over the square slice origin + a u + b v of the latent space.

        Args:
            basis: the directions u and v come from: "kl", "pca", "class" or "attribute" (where the model has it, e.g. skin tone)
            direction_1: u, a whole number from 1 to 12 (1: the basis's first direction)
            direction_2: v, a whole number from 1 to 12
            origin: the centre code, a list of latent_dim numbers; null: all zeros
            extent: a and b run from -extent to extent, 0.25 to 6
            n: pictures per side, a whole number from 2 to 24
            model: a name from the Model list; left out: the app's default model
        """
        m = self.page.explorer(model)
        return {self.atlas_image: m.atlas(origin, basis, direction_1, direction_2, extent, n)}

    @friendly
    def realism(self, z: list[float], model: str | None = None) -> dict:
        """How real a code's picture looks: the discriminator's probability that it is real and the code's log-density under the sampling prior, each with its percentile among the test pictures.

        Args:
            z: the code, a list of latent_dim numbers (32 for the bundled models)
            model: a name from the Model list; left out: the app's default model
        """
        r = self.page.explorer(model).realism(z)
        return {"real_probability": r.real_probability, "real_percentile": r.real_percentile,
                "log_density": r.log_density, "density_percentile": r.density_percentile,
                "text": r.text()}

    # ---- another model ------------------------------------------------------------------------
    def model_outputs(self) -> list:
        return [self.picture, self.frame, self.note, self.basis, self.picked, self.meter, self.code,
                self.atlas_image]

    def show(self, m: Explorer, values: dict) -> dict:
        return {self.picture: None, self.frame: None, self.note: "",
                self.basis: gr.Dropdown(basis_choices(m), value=self._first_basis(m)),
                self.picked: None, self.meter: HINT, self.code: None, self.atlas_image: None}
