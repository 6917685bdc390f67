"""Resolve a model spec to a ready model: a local folder ("weights/fashion-mnist") or a
Hugging Face Hub repo id with an optional revision ("org/name", "org/name@v1",
"org/name@<40-hex commit>"). Files come through huggingface_hub's hf_hub_download, so they
land in the standard cache and load again with HF_HUB_OFFLINE=1. Only safetensors are
accepted; a pickle (pytorch_model.bin, *.pt) is never downloaded or opened.

Every failure is a ModelLoadError whose message names the model, the file and the reason
in one sentence, so the app can show it as is.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import constants, get_token, hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, HFValidationError,
                                    LocalEntryNotFoundError, RemoteEntryNotFoundError,
                                    RepositoryNotFoundError, RevisionNotFoundError)
from huggingface_hub.file_download import _CACHED_NO_EXIST
from huggingface_hub.utils import validate_repo_id
import torch

from .files import UnreadableFile, read_safetensors
from .model import SAFETENSORS_FILE, VAEGAN, VAEGANConfig

CONFIG_FILE = "config.json"
EXPLORER_FILE = "explorer.safetensors"
# weights formats that are refused by name: they are pickles (arbitrary code on load)
PICKLE_FILES = ("pytorch_model.bin", "model.pt", "model.pth", "model.ckpt")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SPECTRAL_WEIGHT = ".parametrizations.weight.original"
COMMIT = re.compile(r"^[0-9a-fA-F]{40}$")
HUB_HINT = "a Hub repo id like 'org/name' or 'org/name@<branch|tag|40-hex commit>'"


class ModelLoadError(RuntimeError):
    """A model could not be had; the message says which and why, in one sentence."""


@dataclass
class LoadedModel:
    model: VAEGAN
    spec: str  # what the user asked for
    folder: Path  # local folder (or cache snapshot) holding the files
    explorer_file: Path | None  # precomputed directions/statistics, when shipped
    repo_id: str | None = None  # Hub repo id; None for a local folder
    commit: str | None = None  # the 40-hex commit the Hub files came from; None for a local folder


def is_commit(revision: str | None) -> bool:
    """True for a full 40-hex commit hash (the only immutable kind of revision)."""
    return revision is not None and bool(COMMIT.match(revision))


def parse_spec(spec: str) -> tuple[str, str | None]:
    """'org/name@rev' -> ('org/name', 'rev'); 'org/name' -> ('org/name', None).

    rev may be a branch ("main", "refs/pr/1"), a tag ("v1") or a 40-hex commit (lower-cased).
    Raises ModelLoadError for a malformed repo id or an empty revision.
    """
    repo_id, at, revision = spec.strip().partition("@")
    if at and not revision:
        raise ModelLoadError(f"{spec!r}: empty revision after '@'; expected {HUB_HINT}")
    if repo_id.count("/") != 1:
        raise ModelLoadError(f"{spec!r}: neither a local weights folder nor {HUB_HINT}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise ModelLoadError(f"{spec!r}: not a valid Hub repo id ({e})") from None
    if is_commit(revision):
        revision = revision.lower()
    return repo_id, (revision or None)


def _where(repo_id: str, revision: str | None) -> str:
    return f"{repo_id}@{revision}" if revision else repo_id


def _access_error(repo_id: str, status: int | None, server_message: str | None = None) -> ModelLoadError:
    """The sentence for 401/403/not-found, depending on whether a token is set."""
    token = get_token()
    if status == 401 and server_message and "credentials" in server_message.lower():
        return ModelLoadError(f"{repo_id}: the Hub rejected the token in HF_TOKEN (invalid credentials)")
    if status == 403:
        return ModelLoadError(f"{repo_id}: the token in use is not allowed to read this repository "
                              "(HTTP 403); use a token with read access to it")
    if token is None:
        return ModelLoadError(f"{repo_id}: repository not found on the Hub, or it is private and no "
                              "token is set (set HF_TOKEN or run `hf auth login`)")
    return ModelLoadError(f"{repo_id}: repository not found on the Hub, or the token in use "
                          "cannot read it")


def _pickle_note(repo_id: str, revision: str | None) -> str:
    """' (the repository has pytorch_model.bin, a pickle, which is refused)' when it has one."""
    for name in PICKLE_FILES:
        try:
            hf_hub_download(repo_id, name, revision=revision, dry_run=True)
        except Exception:  # any answer but "it is there" means: nothing to add
            continue
        return f"; it has {name}, a pickle, which is refused"
    return ""


def _download(repo_id: str, revision: str | None, filename: str, required: bool = True,
              where: str | None = None) -> Path | None:
    """hf_hub_download with the project's errors; None for a missing optional file.
    `where` names the model in messages (default repo_id@revision)."""
    where = where or _where(repo_id, revision)
    if not required and is_commit(revision):
        # a commit never changes: a file cached as missing stays missing (no request needed)
        if try_to_load_from_cache(repo_id, filename, revision=revision) is _CACHED_NO_EXIST:
            return None
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, library_name="vaegan"))
    except GatedRepoError:  # (a RepositoryNotFoundError: check it first)
        raise ModelLoadError(f"{repo_id}: gated repository; accept its terms on the Hub and "
                             "set HF_TOKEN") from None
    except RepositoryNotFoundError as e:
        raise _access_error(repo_id, e.response.status_code,
                            e.response.headers.get("X-Error-Message")) from None
    except RevisionNotFoundError:
        hint = ("" if is_commit(revision) else
                " (use a branch, a tag or the full 40-character commit hash)")
        raise ModelLoadError(f"{repo_id}: revision {revision!r} not found{hint}") from None
    except RemoteEntryNotFoundError:
        if not required:
            return None
        if filename == SAFETENSORS_FILE:
            reason = f"only safetensors weights are accepted{_pickle_note(repo_id, revision)}"
        else:
            reason = f"a VAEGAN repository holds {CONFIG_FILE} and {SAFETENSORS_FILE}"
        raise ModelLoadError(f"{where}: no {filename} in the repository ({reason})") from None
    except LocalEntryNotFoundError as e:
        # the Hub could not be asked (offline, unreachable, or it refused): not in the cache either
        cause = e.__cause__
        if isinstance(cause, HfHubHTTPError) and cause.response.status_code in (401, 403):
            raise _access_error(repo_id, cause.response.status_code,
                                cause.response.headers.get("X-Error-Message")) from None
        if not required:
            return None
        if constants.is_offline_mode():
            raise ModelLoadError(f"{where}: {filename} is not in the local cache "
                                 f"({constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE=1 forbids downloading "
                                 "it; load it once online first") from None
        if isinstance(cause, HfHubHTTPError):
            raise ModelLoadError(f"{where}: the Hub answered HTTP {cause.response.status_code} for "
                                 f"{filename} and it is not in the local cache") from None
        raise ModelLoadError(f"{where}: cannot reach the Hub at {constants.ENDPOINT} (offline?) and "
                             f"{filename} is not in the local cache ({constants.HF_HUB_CACHE})") from None
    except HfHubHTTPError as e:
        status = e.response.status_code
        if status in (401, 403):
            raise _access_error(repo_id, status, e.response.headers.get("X-Error-Message")) from None
        raise ModelLoadError(f"{where}: the Hub answered HTTP {status} for {filename}") from None
    except OSError as e:  # network failure mid-download, disk full, read-only cache ...
        raise ModelLoadError(f"{where}: could not download {filename} ({type(e).__name__}: {e})") from None


def check_safetensors(path: Path) -> dict[str, tuple[int, ...]]:
    """The file's tensor shapes; ModelLoadError naming the file unless it is readable."""
    try:
        return read_safetensors(path, header_only=True).shapes
    except UnreadableFile as e:
        raise ModelLoadError(str(e)) from None


def check_shapes(config: VAEGANConfig, weights: Path, source: Path) -> None:
    """Before any memory is allocated for the model: build it on the meta device and compare
    its tensor shapes with those in the safetensors header, so that a config.json asking for
    huge (or negative) layers fails with the file named instead of allocating them. Raises
    ModelLoadError."""
    plain = dataclasses.replace(config, disc_norm="none")  # spectral norm's init on the meta
    try:                                                    # device would import torch._dynamo
        with torch.device("meta"):
            own = {k: tuple(v.shape) for k, v in VAEGAN(plain).state_dict().items()}
    except (ValueError, TypeError, RuntimeError) as e:  # e.g. a negative width
        raise ModelLoadError(f"{source}: invalid config ({e})") from None
    theirs = {k.replace(SPECTRAL_WEIGHT, ".weight"): shape  # (spectral-norm layers keep their
              for k, shape in check_safetensors(weights).items()}  # weight as ...original)
    absent = [k for k in own if k not in theirs]  # caught here, before they are allocated
    if absent and all(k.startswith("latent_prior.") for k in absent):
        raise ModelLoadError(f"{weights}: config.json asks for a {config.prior_components}-component "
                             f"sampling prior but the file has no {', '.join(absent)}; fit one with "
                             "`python -m vaegan.prior` or set prior_components to 0")
    if absent:
        raise ModelLoadError(f"{weights}: weights do not match config.json: missing keys "
                             f"{sorted(absent)[:5]}{' ...' if len(absent) > 5 else ''}")
    wrong = [f"{k}: file {theirs[k]} vs config {own[k]}" for k in own if k in theirs and theirs[k] != own[k]]
    if wrong:
        raise ModelLoadError(f"{weights}: weights do not match config.json: wrong shapes "
                             + "; ".join(wrong[:5]))


def is_hub_spec(spec: str) -> bool:
    """The one place that decides whether a spec names a Hub repo ('org/name[@rev]') or a
    local folder, without asking the network: a path that exists, starts with '.', '/' or
    '~', or whose first part is a local folder ("weights/typo") is local."""
    if spec.startswith((".", "/", "~")) or Path(spec).expanduser().exists():
        return False
    try:
        repo_id, _ = parse_spec(spec)
    except ModelLoadError:
        return False
    return not Path(repo_id.split("/")[0]).is_dir()


def _local_files(folder: Path) -> dict[str, Path | None]:
    files = {"config": folder / CONFIG_FILE, "weights": folder / SAFETENSORS_FILE}
    if not files["config"].exists():
        raise ModelLoadError(f"{files['config']}: missing (a weights folder holds {CONFIG_FILE} "
                             f"and {SAFETENSORS_FILE})")
    if not files["weights"].exists():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        note = f"; {', '.join(pickles)} {'is a pickle' if len(pickles) == 1 else 'are pickles'}, refused" \
            if pickles else ""
        raise ModelLoadError(f"{files['weights']}: missing (only safetensors weights are "
                             f"accepted{note})")
    explorer = folder / EXPLORER_FILE
    files["explorer"] = explorer if explorer.exists() else None
    return files


def _hub_files(repo_id: str, revision: str | None) -> tuple[dict[str, Path | None], str | None]:
    """Download config first, then the rest pinned to the commit config came from, so all
    files belong to one commit even if the branch moves in between."""
    config = _download(repo_id, revision, CONFIG_FILE)
    commit = config.parent.name if is_commit(config.parent.name) else revision
    where = _where(repo_id, revision)  # what the user asked for, not the pinned commit
    files = {"config": config,
             "weights": _download(repo_id, commit, SAFETENSORS_FILE, where=where),
             "explorer": _download(repo_id, commit, EXPLORER_FILE, required=False, where=where)}
    return files, (commit if is_commit(commit) else None)


def load_model(spec: str, device: str = "cpu") -> LoadedModel:
    """Folder or Hub repo id -> LoadedModel; raises ModelLoadError with a clear sentence."""
    path = Path(spec).expanduser()
    repo_id = commit = None
    if is_hub_spec(spec):
        repo_id, revision = parse_spec(spec)
        files, commit = _hub_files(repo_id, revision)
    elif path.is_dir():
        files = _local_files(path)
    elif path.exists():
        raise ModelLoadError(f"{spec}: a file, not a weights folder (config.json + {SAFETENSORS_FILE})")
    elif spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelLoadError(f"{spec}: no such weights folder")
    else:  # "just-a-name" gets parse_spec's sentence; "weights/typo" is a missing folder
        parse_spec(spec)
        raise ModelLoadError(f"{spec}: no such weights folder")
    try:
        data = json.loads(Path(files["config"]).read_text())
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        config = VAEGANConfig.from_dict(data, source=str(files["config"]))
    except (ValueError, TypeError) as e:
        raise ModelLoadError(f"{files['config']}: invalid config ({e})") from None
    check_shapes(config, Path(files["weights"]), Path(files["config"]))
    model = VAEGAN(config)  # (no bigger than the weights file: its shapes were checked)
    try:
        model.load_weights(files["weights"], strict=True)
    except ValueError as e:
        raise ModelLoadError(str(e)) from None
    if files["explorer"] is not None:
        check_safetensors(files["explorer"])
    folder = path if repo_id is None else Path(files["weights"]).parent
    return LoadedModel(model.to(device).eval(), spec, folder, files["explorer"], repo_id, commit)
