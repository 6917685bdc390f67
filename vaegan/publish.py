"""Publish a weights folder to the Hugging Face Hub, with a model card.

    python -m vaegan.publish weights/fashion-mnist --repo you/vaegan-fashion-mnist [--private]
    python -m vaegan.publish weights/fashion-mnist --repo you/vaegan-fashion-mnist --dry-run

The folder is loaded first, strictly, exactly as the app would load it (vaegan.hub.load_model),
so a broken folder is never uploaded. What goes up is staged in a folder of its own:
config.json, model.safetensors, explorer.safetensors, training.json, metrics.json,
prior.json and metrics_prior-standard.json (a fitted sampling prior and the N(0, I) figures),
baseline.json (the baseline the card compares with),
samples.png and reconstructions.png where present (samples.png is drawn from the model when
missing), and README.md, the model card built by vaegan.card. Nothing else: no checkpoint,
no pickle. --dry-run writes that folder and uploads nothing. The token comes from HF_TOKEN
or `hf auth login`.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from huggingface_hub import HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.utils import validate_repo_id

from .card import build_model_card
from .hub import CONFIG_FILE, EXPLORER_FILE, ModelLoadError, load_model
from .model import SAFETENSORS_FILE, VAEGAN

JSON_FILES = ("training.json", "metrics.json", "prior.json", "metrics_prior-standard.json", "baseline.json")
IMAGES = ("samples.png", "reconstructions.png")
# every file publish manages, in upload order; README.md is the generated card
FILES = (CONFIG_FILE, SAFETENSORS_FILE, EXPLORER_FILE, *JSON_FILES, *IMAGES, "README.md")


class PublishError(RuntimeError):
    """The folder cannot be published; the message says which file and why."""


def check_repo_id(repo_id: str) -> str:
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise PublishError(f"--repo {repo_id!r}: not a valid Hub repo id ({e})") from None
    if repo_id.count("/") != 1:
        raise PublishError(f"--repo {repo_id!r}: expected 'user-or-org/name'")
    return repo_id


@torch.inference_mode()
def write_samples(model: VAEGAN, path: Path, seed: int = 0) -> None:
    """An 8x8 grid of samples from the prior (same seed, same grid)."""
    from torchvision.utils import save_image
    save_image(model.sample(64, torch.Generator().manual_seed(seed)).cpu(), path, nrow=8, padding=1)


def stage(folder: str | Path, dest: str | Path, repo_id: str) -> list[Path]:
    """Validate `folder` and write exactly what would be uploaded into `dest` (new or empty).

    Returns the staged files. Raises ModelLoadError or PublishError naming the bad file.
    """
    folder, dest = Path(folder), Path(dest)
    check_repo_id(repo_id)
    if not folder.is_dir():
        raise PublishError(f"{folder}: not a folder (publish takes a local weights folder)")
    loaded = load_model(str(folder))  # strict: config keys, weight keys and shapes, explorer file
    for name in JSON_FILES:
        if (folder / name).exists():
            try:
                json.loads((folder / name).read_text())
            except (ValueError, UnicodeDecodeError) as e:
                raise PublishError(f"{folder / name}: not valid JSON ({e})") from None
    if dest.exists() and any(dest.iterdir()):
        raise PublishError(f"{dest}: not empty; give a new or empty folder")
    dest.mkdir(parents=True, exist_ok=True)
    for name in FILES[:-1]:
        if (folder / name).exists():
            shutil.copyfile(folder / name, dest / name)
    if not (dest / "samples.png").exists():
        write_samples(loaded.model, dest / "samples.png")
    build_model_card(dest, repo_id, source=str(folder)).save(dest / "README.md")
    return [dest / name for name in FILES if (dest / name).exists()]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def print_listing(folder: Path, files: list[Path], out=None) -> None:
    """Each staged file with its size, then what in `folder` is left out."""
    out = out or sys.stdout
    staged = {p.name for p in files}
    notes = {"README.md": "  (model card, generated)", "samples.png": ""}
    if not (folder / "samples.png").exists():
        notes["samples.png"] = "  (drawn from the model, seed 0)"
    for p in files:
        print(f"  {_size(p.stat().st_size):>9}  {p.name}{notes.get(p.name, '')}", file=out)
    skipped = sorted(p.name for p in folder.iterdir() if p.name not in staged)
    if skipped:
        print(f"  not uploaded: {', '.join(skipped)}", file=out)


def upload(staged: Path, repo_id: str, private: bool = False, revision: str | None = None,
           commit_message: str | None = None, api: HfApi | None = None):
    """create_repo(exist_ok=True) + upload_folder; returns huggingface_hub's CommitInfo.

    Managed files that are not staged this time (say, an old explorer.safetensors) are
    deleted from the repo, so the revision never mixes files of two models.
    """
    api = api or HfApi()
    api.create_repo(repo_id, repo_type="model", private=private or None, exist_ok=True)
    if revision and revision != constants.DEFAULT_REVISION:
        api.create_branch(repo_id, repo_type="model", branch=revision, exist_ok=True)
    return api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(staged),
                             revision=revision, commit_message=commit_message or
                             f"Upload VAEGAN weights ({', '.join(p.name for p in sorted(staged.iterdir()))})",
                             delete_patterns=list(FILES))


def main(argv: list[str] | None = None, api: HfApi | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vaegan.publish", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="weights folder: config.json + model.safetensors (+ extras)")
    p.add_argument("--repo", required=True, help="Hub model repo id, user-or-org/name")
    p.add_argument("--private", action="store_true",
                   help="create the repo private (an existing repo keeps its visibility)")
    p.add_argument("--revision", default=None, help="branch to commit to (created if new; default main)")
    p.add_argument("--commit-message", default=None)
    p.add_argument("--dry-run", action="store_true", help="stage the upload folder and upload nothing")
    p.add_argument("--dry-run-dir", default=None,
                   help="where --dry-run writes the folder (new or empty; default: a new temp folder)")
    args = p.parse_args(argv)
    folder = Path(args.folder)
    try:
        check_repo_id(args.repo)
        if not args.dry_run and api is None and get_token() is None:
            raise PublishError("no Hugging Face token: set HF_TOKEN (a token with write access) "
                               "or run `hf auth login`; or try --dry-run")
        if args.dry_run:
            dest = Path(args.dry_run_dir) if args.dry_run_dir else \
                Path(tempfile.mkdtemp(prefix=f"vaegan-publish-{folder.name}-"))
            files = stage(folder, dest, args.repo)
            print(f"dry run, nothing uploaded. {constants.ENDPOINT}/{args.repo} would get "
                  f"the {len(files)} files in {dest}:")
            print_listing(folder, files)
            return 0
        with tempfile.TemporaryDirectory(prefix="vaegan-publish-") as tmp:
            files = stage(folder, tmp, args.repo)
            print(f"uploading {len(files)} files to {constants.ENDPOINT}/{args.repo}:")
            print_listing(folder, files)
            info = upload(Path(tmp), args.repo, args.private, args.revision, args.commit_message, api)
    except (ModelLoadError, PublishError) as e:
        print(f"error: {e}; nothing uploaded", file=sys.stderr)
        return 2
    except HfHubHTTPError as e:
        status = e.response.status_code
        why = {401: "the token was rejected (set HF_TOKEN or run `hf auth login`)",
               403: "the token has no write access to it"}.get(status, str(e).splitlines()[0])
        print(f"error: {args.repo}: the Hub answered HTTP {status}: {why}", file=sys.stderr)
        return 2
    print(f"committed {info.oid}: {info.commit_url}")
    print(f'load it with load_model("{args.repo}") or, pinned, load_model("{args.repo}@{info.oid}")')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
