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
    def interpolate(self, a_kind, a_seed, a_image=None, b_kind="Seed", b_seed=2, b_image=None,
                    steps=10, method="slerp", model=None):
        """Frames from endpoint A to endpoint B, and an animated GIF of them.

        Args:
            a_kind: what A is: "Seed" (a random code) or "Picture" (the code of a_image)
            a_seed: A's seed when a_kind is "Seed", a whole number from 0 to 4294967295
            a_image: A's picture when a_kind is "Picture" (PNG, JPEG, WebP, BMP or GIF)
            b_kind: what B is: "Seed" or "Picture"
            b_seed: B's seed when b_kind is "Seed", a whole number from 0 to 4294967295
            b_image: B's picture when b_kind is "Picture"
            steps: how many frames, a whole number from 2 to 64
            method: "slerp" (along a great circle) or "lerp" (a straight line)
            model: a name from the Model list; left out: the app's default model
        """
        r = self.page.explorer(model).interpolate(a_image if a_kind == "Picture" else a_seed,
                                                  b_image if b_kind == "Picture" else b_seed,
                                                  steps, method)
        return {self.strip: r.strip, self.gif: str(r.gif), self.path: r.z.tolist()}

    def path_realism(self, path, model) -> dict:
        """The realism meter of every frame, as a small plot."""
        if not path:  # (an empty dict is not "nothing" to Gradio: it wants every output then)
            return {self.meter: gr.skip()}
        meters = self.page.explorer(model).map.realism(torch.tensor(path))
        return {self.meter: plots.realism_plot([r.real_probability for r in meters],
                                               [r.log_density for r in meters])}

    def model_outputs(self) -> list:
        return [self.strip, self.gif, self.path, self.meter]

    def show(self, m: Explorer, values: dict) -> dict:
        return dict.fromkeys(self.model_outputs())
