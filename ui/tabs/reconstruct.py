"""Reconstruct: show the model a picture, see what it makes of it, edit it in Explore."""
from __future__ import annotations

import gradio as gr

from vaegan import refine
from vaegan.explorer import Explorer, Reconstruction

from ..components import drawing, friendly, image, sketchpad, upload
from ..tab import Tab

PRIVATE = {"api_visibility": "private"}
HINT = "Upload a picture, take a photo, draw one or pick an example."


def metrics_line(mse: float, ssim: float) -> str:
    return f"**MSE** {mse:.4f} · **SSIM** {ssim:.3f}"


def refined_line(r: Reconstruction) -> str:
    """The metrics of a reconstruction and, when its code was refined, the encoder's own."""
    line = metrics_line(r.mse, r.ssim)
    if not r.steps:
        return line + " (the encoder's code)"
    return (f"{line} after {r.steps} refining steps · the encoder's code alone: "
            f"MSE {r.encoder_mse:.4f} · SSIM {r.encoder_ssim:.3f}")


class ReconstructTab(Tab):
    id, title = "reconstruct", "Reconstruct"
    intro = ("Show the model a picture: it turns it into a code and paints the code back. The "
             "difference shows what it could not keep.")

    def layout(self, ex: Explorer) -> None:
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                self.upload = upload("Your picture (one thing, as in the model's data)")
                self.steps = gr.Slider(
                    *refine.STEPS_RANGE, value=refine.STEPS, step=10, label="Refine the code",
                    info="Gradient steps that fit the code to your picture after the encoder's "
                         "one-pass guess (0: the encoder alone). More steps keep more detail.",
                    elem_id="recon-steps")
                self.button = gr.Button("Reconstruct", variant="primary")
                with gr.Accordion("Or draw one", open=False):
                    self.sketch = sketchpad("Draw one (dark or coloured on white)",
                                            elem_id="recon-sketch")
                    self.sketch_btn = gr.Button("Reconstruct the drawing", elem_id="recon-drawing")
            with gr.Column(scale=2):
                self.gallery = gr.Gallery(self._examples(ex), label="Or pick a test-set example",
                                          columns=5, height=300, allow_preview=False, format="png",
                                          elem_classes="pixelated", visible=bool(ex.examples))
                self.metrics = gr.Markdown(HINT, label="Metrics")
                self.edit_btn = gr.Button("Edit in Explore: start the sliders at this picture")
        with gr.Row():
            self.seen = image(self._seen_label(ex), elem_id="recon-input")
            self.recon = image("Its reconstruction", elem_id="recon-output")
            self.error = image("Absolute error (white = 1)", elem_id="recon-error")
        with gr.Accordion("Latent code", open=False):
            self.z = gr.JSON(label="z")

    @staticmethod
    def _seen_label(ex: Explorer) -> str:
        c = ex.config
        return (f"What the model sees ({c.image_size}x{c.image_size} "
                f"{'grey' if c.channels == 1 else 'colour'} input)")

    @staticmethod
    def _examples(ex: Explorer) -> list:
        return [(im, name) for im, name in ex.examples]

    def outputs(self) -> list:
        return [self.seen, self.recon, self.error, self.metrics, self.z]

    def wire(self) -> None:
        model, explore = self.page.model, self.page.tabs["explore"]
        gr.on([self.button.click, self.upload.upload], self.reconstruct,
              [self.upload, self.steps, model], self.outputs(), api_name="reconstruct")
        self.sketch_btn.click(self.reconstruct_drawing, [self.sketch, self.steps, model],
                              self.outputs(), **PRIVATE)
        self.gallery.select(self.pick_example, [self.steps, model], [self.upload, *self.outputs()],
                            **PRIVATE)
        self.edit_btn.click(self.edit_in_explore, [self.z, model],
                            explore.open_outputs(), **PRIVATE)

    @friendly
    def reconstruct(self, image, steps=refine.STEPS, model=None):
        """Encode a picture of one thing (a garment, an emoji), refine its code and decode it: the model's input at its own size, its reconstruction, the absolute error, MSE and SSIM (and the encoder's own, before refining), and the code.

        Args:
            image: the picture (PNG, JPEG, WebP, BMP or GIF, at most 16.7 million pixels)
            steps: gradient steps that fit the code to the picture after the encoder, a whole number from 0 (the encoder's posterior mean) to 200; default 50
            model: a name from the Model list; left out: the app's default model
        """
        return self._reconstruction(self.page.explorer(model), image, steps)

    @friendly
    def reconstruct_drawing(self, sketch, steps=refine.STEPS, model=None) -> dict:
        """The drawing, cropped to its strokes, reconstructed as an upload would be."""
        return self._reconstruction(self.page.explorer(model), drawing(sketch), steps)

    def _reconstruction(self, m: Explorer, picture, steps) -> dict:
        r = m.reconstruct(picture, steps)
        return {self.seen: r.input, self.recon: r.reconstruction, self.error: r.error,
                self.metrics: refined_line(r), self.z: r.z.tolist()}

    def pick_example(self, steps, model, evt: gr.SelectData) -> dict:
        picture = self.page.explorer(model).example(evt.index)
        return {self.upload: picture, **self.reconstruct(picture, steps, model)}

    def edit_in_explore(self, z, model) -> dict:
        if not z:
            raise gr.Error("Reconstruct a picture first, then edit it in Explore.")
        return self.page.tabs["explore"].open_at(z, "the reconstructed picture", model)

    def model_inputs(self) -> list:
        return [self.upload, self.steps]

    def model_outputs(self) -> list:
        return [self.gallery, *self.outputs()]

    def show(self, m: Explorer, values: dict) -> dict:
        picture = values.get(self.upload)
        shown = (dict.fromkeys([self.seen, self.recon, self.error, self.z]) | {self.metrics: HINT}
                 if picture is None else
                 self._reconstruction(m, picture, values.get(self.steps, refine.STEPS)))
        return {self.gallery: gr.Gallery(self._examples(m), visible=bool(m.examples)), **shown,
                self.seen: gr.Image(shown[self.seen], label=self._seen_label(m))}
