"""VAE-GAN Latent Explorer: the entry point, what a Hugging Face Space runs.

    python app.py [--model weights/fashion-mnist | org/name@rev] [--models org/a,org/b@v1]
                  [--host 127.0.0.1] [--port 7860]

Parses the arguments, tunes the process, builds `demo` once (module level, so that Spaces and
`gradio app.py` find it) and launches it. The page itself lives in ui/, the model in vaegan/.
--host/--port default to GRADIO_SERVER_NAME/GRADIO_SERVER_PORT (a Space sets 0.0.0.0 and
7860), else 127.0.0.1:7860. Nothing at import or startup touches the network: a Hub model
loads in the background after launch (README, "Choosing a model").
"""
from __future__ import annotations

import argparse
import ctypes
import os
import socket
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def parse_args(argv: list[str]) -> argparse.Namespace:
    from ui.models import default_spec  # (light: no gradio)
    p = argparse.ArgumentParser(description="VAE-GAN Latent Explorer")
    p.add_argument("--model", default=default_spec(),
                   help="the model pages open on: weights folder or Hub repo id (org/name@rev)")
    p.add_argument("--models", default="", help="more models for the Model list, comma-separated "
                   "(added to those in $VAEGAN_MODELS): Hub repo ids or weights folders")
    p.add_argument("--host", default=None, help="address to listen on (default: "
                   "$GRADIO_SERVER_NAME, else 127.0.0.1; a Space sets 0.0.0.0)")
    p.add_argument("--port", default=None, help="port (default: $GRADIO_SERVER_PORT, else 7860)")
    return p.parse_args(argv)


def server_address(host: str | None = None, port: str | int | None = None) -> tuple[str, int]:
    """--host/--port when given, else GRADIO_SERVER_NAME/GRADIO_SERVER_PORT, else
    127.0.0.1:7860. A port that is not a number from 1 to 65535 is a ValueError naming where
    it came from."""
    host = host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    source = "--port" if port is not None else "GRADIO_SERVER_PORT"
    port = port if port is not None else os.environ.get("GRADIO_SERVER_PORT") or 7860
    try:
        number = int(str(port).strip())
    except ValueError:
        number = 0
    if not 1 <= number <= 65535:
        raise ValueError(f"{source} must be a port number between 1 and 65535, got {str(port)!r}")
    return host, number


def port_taken(host: str, port: int) -> bool:
    """True when (host, port) cannot be bound now (another server holds it)."""
    with socket.socket() as s:
        try:
            s.bind(("" if host == "0.0.0.0" else host, port))
        except OSError:
            return True
    return False


def tune_process() -> None:
    """One intra-op thread per request: a 28x28 decode takes ~1 ms on one thread, but tens of
    ms when threads spin against each other on a small shared CPU (VAEGAN_THREADS=1 vs 2 with
    benchmarks/latency.py). And a fixed glibc mmap threshold: glibc raises it whenever a large
    block is freed (up to 32 MiB); after that, picture-sized buffers come from the heap and
    fragment it, and the server's RSS crept up 14-19% over 800 requests. With the threshold
    at 1 MiB every larger buffer has its own mapping, returned when freed: +3-6% and level
    (benchmarks/load.py, README "Load")."""
    import torch
    torch.set_num_threads(int(os.environ.get("VAEGAN_THREADS", "1")))
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def address_or_exit(args: argparse.Namespace) -> tuple[str, int, str]:
    """(host, port, the sentence for a taken port); a bad or taken port ends the process with
    one sentence naming the flag or variable and the value (before anything heavy loads)."""
    try:
        host, port = server_address(args.host, args.port)
    except ValueError as e:
        sys.exit(str(e))
    given = f"--port {port}" if args.port is not None else (
        f"GRADIO_SERVER_PORT={port}" if os.environ.get("GRADIO_SERVER_PORT") else f"port {port}")
    taken = (f"{given}: the port is already in use on {host}; stop the other server or choose "
             "another port (--port or GRADIO_SERVER_PORT)")
    if port_taken(host, port):
        sys.exit(taken)
    os.environ["GRADIO_SERVER_PORT"] = str(port)  # (gradio reads it, as an int, at import)
    return host, port, taken


ARGS = parse_args(sys.argv[1:] if __name__ == "__main__" else [])
if __name__ == "__main__":
    HOST, PORT, TAKEN = address_or_exit(ARGS)
tune_process()

from ui.models import open_models, split_specs  # noqa: E402
from ui.page import create_demo  # noqa: E402
from ui.server import launch  # noqa: E402

MODELS = open_models(ARGS.model, split_specs(ARGS.models))
demo = create_demo(MODELS)

if __name__ == "__main__":
    try:
        launch(demo, HOST, PORT, prevent_thread_lock=True)
    except OSError:  # taken between the check and the launch
        sys.exit(TAKEN)
    MODELS.preload()  # Hub models load in the background, once the app is up
    demo.block_thread()
