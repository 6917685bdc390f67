"""The page's list of models: the bundled default, other weights folders and Hub repo ids,
each loaded at most once in a background thread, failures kept as one sentence.
open_models() builds the list the app starts with, without any network request."""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from pathlib import Path

from vaegan.explorer import Explorer, load_explorer
from vaegan.hub import CONFIG_FILE, ModelLoadError, is_hub_spec
from vaegan.model import SAFETENSORS_FILE

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_MODEL = os.path.relpath(WEIGHTS / "fashion-mnist")
LOAD_WAIT_S = 3.0  # how long an API call waits for a listed model that is still loading
RETRY_S = 60.0  # a model whose load failed is tried again when asked for after this long

log = logging.getLogger(__name__)


def load_or_fallback(spec: str, fallback: str) -> Explorer:
    """The app's starting model, never from the network: the local folder `spec`, or when it
    cannot be loaded, the `fallback` folder (or a random model when that is missing too) with
    a notice naming what failed and why. A broken fallback folder is an error."""
    if spec == fallback:
        return load_explorer(fallback, allow_random=True)
    try:
        if is_hub_spec(spec) or not Path(spec).expanduser().exists():
            raise ModelLoadError(f"{spec}: no such weights folder")  # and no Hub request for it
        return load_explorer(spec)
    except (ModelLoadError, ValueError) as e:
        ex = load_explorer(fallback, allow_random=True)
        ex.notice = " ".join(filter(None, [f"Could not load `{spec}`: {e}. Showing `{ex.spec}` "
                                           "instead.", ex.notice]))
        return ex


def weights_folders(root: str | Path, first: str | None = None) -> list[str]:
    """Every folder directly under root holding config.json and model.safetensors, as paths
    relative to the working directory, sorted, `first` (when among them) first."""
    root = Path(root)
    found = sorted(os.path.relpath(p) for p in root.iterdir()
                   if (p / CONFIG_FILE).is_file() and (p / SAFETENSORS_FILE).is_file()) \
        if root.is_dir() else []
    first = os.path.relpath(first) if first else None
    return sorted(found, key=lambda s: s != first)


def split_specs(text: str | None) -> list[str]:
    """'org/a, org/b@v1' -> ['org/a', 'org/b@v1'] (blank entries dropped)."""
    return [s.strip() for s in (text or "").split(",") if s.strip()]


class ModelLoading(ModelLoadError):
    """The model is listed and its load has started, but it is not ready yet."""


@dataclass
class _Load:
    future: Future  # -> the Explorer, or the sentence saying why it could not be loaded
    failed_at: float | None = None


class Models:
    """The models the app offers, by spec, the default one loaded and first.

    Every other model is loaded at most once, in a background thread started by the first
    request for it; later requests wait on that same load, so a slow Hub download or the
    Hub's retries (tens of seconds when it is unreachable) hold up nobody who asked for
    another model. A failed load is remembered (its ModelLoadError sentence) and tried again
    when asked for after RETRY_S seconds. Loaded Explorers are shared by all visitors.
    """

    def __init__(self, default: Explorer, specs: Iterable[str] = (), preferred: str | None = None,
                 loader: Callable[[str], Explorer] = load_explorer) -> None:
        self.default = default
        self.specs = list(dict.fromkeys([default.spec, *specs]))
        self.preferred = preferred if preferred != default.spec else None  # opened when ready
        if self.preferred and self.preferred not in self.specs:
            self.specs.insert(1, self.preferred)
        self._loader = loader
        self._lock = threading.Lock()
        done: Future = Future()
        done.set_result(default)
        self._loads: dict[str, _Load] = {default.spec: _Load(done)}

    def get(self, spec: str | None = None, timeout: float | None = None) -> Explorer:
        """The Explorer of a listed model (None or "": the default), loading it if needed and
        waiting at most `timeout` seconds (None: until the load ends). Raises ValueError for
        a model that is not listed, ModelLoading when it is not ready in time, and the load's
        ModelLoadError when it failed."""
        spec = spec or self.default.spec
        if spec not in self.specs:
            raise ValueError(f"model must be one of {self.specs}, got {spec!r}")
        try:
            result = self._start(spec).future.result(timeout)
        except FutureTimeout:
            raise ModelLoading(f"Model {spec!r} is still loading; try again in a few seconds") from None
        if isinstance(result, str):  # a fresh exception each time: no traceback piles up
            raise ModelLoadError(result)
        return result

    def ready(self, spec: str) -> bool:
        load = self._loads.get(spec)
        return load is not None and load.future.done() and isinstance(load.future.result(), Explorer)

    def preload(self) -> None:
        """Start loading every listed model in the background (returns at once)."""
        for spec in self.specs:
            self._start(spec)

    def wait(self, timeout: float | None = None) -> None:
        """Block until every load started so far has ended (for shutdown and tests)."""
        with self._lock:
            futures = [load.future for load in self._loads.values()]
        wait_futures(futures, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Wait for running loads, then remove the temp dirs of the models loaded here."""
        self.wait(timeout)
        for spec in self.specs[1:]:
            if self.ready(spec) and self._loads[spec].future.result() is not self.default:
                self._loads[spec].future.result().close()

    def _start(self, spec: str) -> _Load:
        with self._lock:
            load = self._loads.get(spec)
            if load is None or (load.failed_at is not None
                                and time.monotonic() - load.failed_at > RETRY_S):
                load = self._loads[spec] = _Load(Future())
                threading.Thread(target=self._run, args=(spec, load), name=f"load {spec}",
                                 daemon=True).start()
            return load

    def _run(self, spec: str, load: _Load) -> None:
        try:
            explorer = self._loader(spec)
        except Exception as e:  # noqa: BLE001 (every failure becomes one sentence in the UI)
            if isinstance(e, (ModelLoadError, ValueError)):  # ValueError: explorer assets
                error = str(e)
            else:
                log.exception("loading %s failed", spec)
                error = f"{spec}: loading failed ({type(e).__name__}: {e})"
            load.failed_at = time.monotonic()
            load.future.set_result(error)
        else:
            load.future.set_result(explorer)

    @staticmethod
    def failure(spec: str, error: Exception, showing: Explorer) -> str:
        """What the UI says when a model could not be had (yet), above the shown model's status."""
        if isinstance(error, ModelLoading):
            line = f"⏳ `{spec}` is still loading; pick it in the Model list in a moment."
        else:
            line = f"⚠️ Could not load `{spec}`: {error}. Still showing `{showing.spec}`."
        return f"{line}  \n{showing.status}"


def default_spec() -> str:
    """The model pages open on: $VAEGAN_MODEL, else the bundled folder."""
    return os.environ.get("VAEGAN_MODEL", DEFAULT_MODEL)


def open_models(model: str | None = None, extra: Iterable[str] = ()) -> Models:
    """The Model list, with no network request: `model` (default $VAEGAN_MODEL, else the
    bundled folder) first when it is a local folder that loads, else the bundled model with a
    notice; the other folders under weights/; then `extra` and $VAEGAN_MODELS. A Hub `model`
    is listed second and opened on each new page once it has loaded in the background."""
    model = model or default_spec()
    hub = model != DEFAULT_MODEL and is_hub_spec(model)  # (the bundled folder may be missing)
    if not hub and Path(model).expanduser().exists():
        model = os.path.relpath(Path(model).expanduser())  # one spelling per folder in the list
    default = load_or_fallback(DEFAULT_MODEL if hub else model, DEFAULT_MODEL)
    specs = [*weights_folders(WEIGHTS, DEFAULT_MODEL), *extra,
             *split_specs(os.environ.get("VAEGAN_MODELS"))]
    return Models(default, specs, preferred=model if hub else None)
