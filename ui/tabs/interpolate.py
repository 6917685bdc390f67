"""Interpolate: walk from one code to another; the frames and an animated GIF."""
from __future__ import annotations

import gradio as gr
import torch

from vaegan.explorer import MAX_SEED, STEPS_RANGE, Explorer

from .. import plots
from ..components import friendly, image, upload
from ..tab import Tab

PRIVATE = {"api_visibility": "private"}


class InterpolateTab(Tab):
    id, title = "interpolate", "Interpolate"
    intro = ("Walk in a straight line (or along a sphere) from one code to another and watch one "
             "picture morph into the other.")

    def layout(self, ex: Explorer) -> None:
        self.ends = []  # (kind, seed, picture) for A, then for B
        with gr.Row():
            for name, seed in (("A", 1), ("B", 2)):
                with gr.Column(min_width=260):
                    self.ends += [gr.Radio(["Seed", "Picture"], value="Seed", label=f"Endpoint {name}"),
                                  gr.Number(seed, label=f"Seed {name}", precision=0, minimum=0,
                                            maximum=MAX_SEED),
                                  upload(f"Picture {name}", visible=False)]
            with gr.Column(min_width=260):
                self.steps = gr.Slider(*STEPS_RANGE, value=10, step=1, label="Steps")
                self.method = gr.Radio([("Spherical (slerp)", "slerp"), ("Linear (lerp)", "lerp")],
                                       value="slerp", label="Path")
                self.button = gr.Button("Interpolate", variant="primary")
        with gr.Row():
            self.gif = gr.Image(label="Animation (GIF)", type="filepath", interactive=False, height=380,
                                elem_classes="pixelated", buttons=["download"], scale=1)
            self.strip = image("Frames, in reading order", scale=2)
        self.meter = gr.Image(label="How real each frame looks: the discriminator's P(real) and the "
                                    "code's log-density under the prior", type="pil", format="png",
                              interactive=False, height=240, elem_id="path-realism")
        self.path = gr.State(None)  # the frames' codes (a State: not part of the public API)

    def wire(self) -> None:
        for kind, seed_box, picture in (self.ends[:3], self.ends[3:]):  # seed box or picture box
            kind.input(lambda k: (gr.Number(visible=k == "Seed"), gr.Image(visible=k == "Picture")),
                       kind, [seed_box, picture], queue=False, **PRIVATE)
        self.button.click(self.interpolate, [*self.ends, self.steps, self.method, self.page.model],
                          [self.strip, self.gif, self.path], api_name="interpolate").then(
            self.path_realism, [self.path, self.page.model], self.meter, api_visibility="private")

    @friendly
    def interpolate(self, a_kind, a_seed, a_image, b_kind, b_seed, b_image, steps, method, model):
        """Frames from endpoint A to endpoint B and an animated GIF. Each endpoint is a seed
        (a_kind/b_kind "Seed": a random code, 0 to 2**32-1) or a picture ("Picture": its code);
        steps: 2-64 frames; method: "slerp" (spherical) or "lerp" (straight line); model: a
        name from the Model list."""
        r = self.page.explorer(model).interpolate(a_image if a_kind == "Picture" else a_seed,
                                                  b_image if b_kind == "Picture" else b_seed,
                                                  steps, method)
        return {self.strip: r.strip, self.gif: str(r.gif), self.path: r.z.tolist()}

    def path_realism(self, path, model) -> dict:
        """The realism meter of every frame, as a small plot."""
        if not path:
            return {}
        meters = self.page.explorer(model).map.realism(torch.tensor(path))
        return {self.meter: plots.realism_plot([r.real_probability for r in meters],
                                               [r.log_density for r in meters])}

    def model_outputs(self) -> list:
        return [self.strip, self.gif, self.path, self.meter]

    def show(self, m: Explorer, values: dict) -> dict:
        return dict.fromkeys(self.model_outputs())
