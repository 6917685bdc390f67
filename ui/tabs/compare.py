"""Compare: two models of the Model list side by side, on the same picture (reconstructions,
error maps, MSE/SSIM, a before/after slider), the same seed, and the same two pictures
interpolated, each in its own latent space. What the GAN half of VAE/GAN buys shows here."""
from __future__ import annotations

import gradio as gr

from vaegan import refine
from vaegan.explorer import MAX_SEED, Explorer

from ..components import friendly, image, upload
from ..tab import Tab
from .reconstruct import refined_line

PRIVATE = {"api_visibility": "private"}
SIDES = ("A", "B")


class CompareTab(Tab):
    id, title = "compare", "Compare"
    intro = ("Two models on the same input: by default the VAE/GAN and the plain VAE trained the "
             "same way, so you can see what the discriminator's learned similarity adds.")

    def layout(self, ex: Explorer) -> None:
        specs = self.page.models.specs
        with gr.Row():
            self.models = [gr.Dropdown(specs, value=v, label=f"Model {s}", elem_id=f"compare-model-{s.lower()}")
                           for s, v in zip(SIDES, self._defaults())]
        with gr.Row():
            with gr.Column(scale=1, min_width=240):
                self.upload = upload("Your picture")
                self.examples = gr.Gallery([(im, n) for im, n in ex.examples], label="Examples",
                                           columns=5, height=150, allow_preview=False, format="png",
                                           elem_classes="pixelated", visible=bool(ex.examples))
                self.seed = gr.Number(0, label="Or a seed", precision=0, minimum=0, maximum=MAX_SEED)
                with gr.Row():
                    self.recon_btn = gr.Button("Reconstruct the picture", variant="primary")
                    self.sample_btn = gr.Button("Sample the seed")
            with gr.Column(scale=3):
                self.pictures, self.errors, self.metrics, self.sliders = [], [], [], []
                with gr.Row():
                    for s in SIDES:
                        with gr.Column(min_width=200):
                            self.pictures.append(image(f"Model {s}", height=300, elem_id=f"compare-{s.lower()}"))
                            self.metrics.append(gr.Markdown(elem_id=f"compare-metrics-{s.lower()}"))
                with gr.Row():
                    for s in SIDES:
                        self.errors.append(image(f"Model {s}: absolute error", height=220))
                        self.sliders.append(gr.ImageSlider(label=f"Model {s}: input | reconstruction",
                                                           type="pil", format="png", height=220,
                                                           elem_classes="pixelated", interactive=False))
        with gr.Accordion("The same two pictures, interpolated by each model", open=False):
            with gr.Row():
                self.ends = [gr.Dropdown([(n, i) for i, (_, n) in enumerate(ex.examples)], value=i,
                                         label=f"Picture {s}") for s, i in (("1", 0), ("2", 7))]
                self.interp_btn = gr.Button("Interpolate with both")
            self.strips = [image(f"Model {s}", height=200) for s in SIDES]

    def _defaults(self) -> list[str]:
        """The default model and, for B, the first listed plain VAE (else the next model)."""
        specs, a = self.page.models.specs, self.page.models.default.spec
        vae = [s for s in specs[1:] if s.endswith("-vae")]
        return [a, (vae or specs[1:] or [a])[0]]

    def wire(self) -> None:
        self.examples.select(self.pick_example, None, self.upload, **PRIVATE)
        gr.on([self.recon_btn.click, self.upload.upload], self.compare,
              [self.upload, self.seed, *self.models],
              [*self.pictures, *self.metrics, *self.errors, *self.sliders], api_name="compare")
        gr.on([self.sample_btn.click, self.seed.submit], self.compare_samples,
              [self.seed, *self.models], [*self.pictures, *self.metrics, *self.errors, *self.sliders],
              **PRIVATE)
        self.interp_btn.click(self.compare_paths, [*self.ends, *self.models], self.strips, **PRIVATE)

    def pick_example(self, evt: gr.SelectData):
        return self.page.models.default.example(evt.index)

    @friendly
    def compare(self, image=None, seed=0, model_a=None, model_b=None) -> dict:
        """The same input through two models of the Model list: a picture's reconstructions (each code refined by 50 steps, as Reconstruct's default), errors and MSE/SSIM (and each encoder's own), or without a picture each model's first sample of a seed.

        Args:
            image: the picture (PNG, JPEG, WebP, BMP or GIF); none: compare samples of seed instead
            seed: used when there is no picture, a whole number from 0 to 4294967295
            model_a: the first model, a name from the Model list
            model_b: the second model, a name from the Model list
        """
        if image is None:
            return self.compare_samples(seed, model_a, model_b)
        out = {}
        for i, model in enumerate((model_a, model_b)):
            r = self.page.explorer(model).reconstruct(image, refine.STEPS)  # as Reconstruct shows
            out |= {self.pictures[i]: r.reconstruction, self.errors[i]: r.error,
                    self.metrics[i]: f"`{model}` · " + refined_line(r),
                    self.sliders[i]: (r.input, r.reconstruction)}
        return out

    @friendly
    def compare_samples(self, seed, model_a, model_b) -> dict:
        out = {}
        for i, model in enumerate((model_a, model_b)):
            m = self.page.explorer(model)
            out |= {self.pictures[i]: m.decode([], "kl", m.seed_latent(seed).tolist()),
                    self.metrics[i]: f"`{model}` · seed {seed}: a random code from its prior",
                    self.errors[i]: None, self.sliders[i]: None}
        return out

    @friendly
    def compare_paths(self, first, second, model_a, model_b) -> dict:
        ex = self.page.models.default
        a, b = ex.example(first), ex.example(second)
        return {strip: self.page.explorer(model).interpolate(a, b, 10, "slerp").strip
                for strip, model in zip(self.strips, (model_a, model_b))}

    def model_outputs(self) -> list:
        return []  # the two models are picked here, whatever the page shows
