"""Sample: a grid of pictures from random codes; a click opens one in Explore."""
from __future__ import annotations

import gradio as gr

from vaegan.explorer import MAX_COUNT, MAX_SEED, TEMPERATURE_RANGE, Explorer

from ..components import friendly, image
from ..tab import Tab

PRIVATE = {"api_visibility": "private"}


class SampleTab(Tab):
    id, title = "sample", "Sample"
    intro = "Pick random codes and let the model paint them. Same seed, same pictures. Click a picture to explore it."

    def layout(self, ex: Explorer) -> None:
        first = ex.sample(0, 1.0, 16)
        with gr.Row():
            with gr.Column(scale=1, min_width=240):
                with gr.Row():
                    self.seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED,
                                          scale=3)
                    self.dice = gr.Button("Random", scale=1, min_width=90)
                self.temperature = gr.Slider(*TEMPERATURE_RANGE, value=1.0, step=0.05,
                                             label="Temperature", info="Spread of the random codes: "
                                             "low = typical, high = unusual")
                self.count = gr.Slider(1, MAX_COUNT, value=16, step=1, label="How many")
                self.button = gr.Button("Sample", variant="primary")
            with gr.Column(scale=3):
                self.grid = image("Samples (click one to explore it)", height=660, value=first.image,
                                  elem_id="sample-grid")
        # the codes behind the grid; None (a new page, or a session Gradio has let go): the
        # grid the boxes draw
        self.codes = gr.State(None)

    def wire(self) -> None:
        page, explore = self.page, self.page.tabs["explore"]
        self.dice.click(None, None, self.seed, js=f"() => Math.floor(Math.random() * {MAX_SEED + 1})")
        gr.on([self.button.click, self.seed.submit], self.sample,
              [self.seed, self.temperature, self.count, page.model], [self.grid, self.codes],
              api_name="sample")
        self.grid.select(self.pick, [self.codes, self.seed, self.temperature, self.count,
                                     page.model], explore.open_outputs(), **PRIVATE)

    @friendly
    def sample(self, seed, temperature, count, model):
        """A grid of pictures decoded from random codes; the same seed gives the same pictures.

        Args:
            seed: which random codes: a whole number from 0 to 4294967295 (2**32-1)
            temperature: the codes' spread, 0 to 2 (1: the sampling prior as fitted; lower: more typical, higher: more unusual)
            count: how many pictures, a whole number from 1 to 64
            model: a name from the Model list; left out: the app's default model
        Returns:
            a PNG grid of the pictures
        """
        g = self.page.explorer(model).sample(seed, temperature, count)
        return {self.grid: g.image, self.codes: g.z.tolist()}

    @friendly
    def pick(self, codes, seed, temperature, count, model, evt: gr.SelectData) -> dict:
        """A click on the grid opens that picture's code in Explore (a click between pictures: nothing)."""
        m = self.page.explorer(model)
        codes = codes or m.sample(seed, temperature, count).z.tolist()
        i = m.grid_cell(evt.index[0], evt.index[1], len(codes))
        if i is None:
            return {self.page.tab_box: gr.skip()}
        return self.page.tabs["explore"].open_at(codes[i], f"sample {i + 1} of the Sample tab",
                                                 model)

    def model_inputs(self) -> list:
        return [self.seed, self.temperature, self.count]

    def model_outputs(self) -> list:
        return [self.grid, self.codes]

    def show(self, m: Explorer, values: dict) -> dict:
        g = m.sample(values.get(self.seed, 0), values.get(self.temperature, 1.0),
                     values.get(self.count, 16))
        return {self.grid: g.image, self.codes: g.z.tolist()}
