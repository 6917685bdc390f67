"""Fair share of the no-queue routes (ui/live.py): they skip Gradio's queue so that frames
come at screen rate, so nothing else would stop one client from taking every core. At most
PER_CLIENT requests of one client run at once (a page keeps one frame and one track in
flight); more are answered 429 with a sentence, at once.

The client is the peer's address, or, when the peer is a trusted proxy, the address that
proxy saw: the last entry of X-Forwarded-For (entries before it are whatever the client
wrote). Trusted proxies: $VAEGAN_TRUSTED_PROXIES, comma-separated addresses or "*"; on a
Hugging Face Space (SPACE_ID set) every peer is the Space's proxy, so the default there is "*".
(Under Gradio, uvicorn has already replaced a peer in $FORWARDED_ALLOW_IPS, default
127.0.0.1, by the address its X-Forwarded-For names.)
"""
from __future__ import annotations

import os
import threading
from collections import Counter
from contextlib import contextmanager

PER_CLIENT = 2
REFUSAL = (f"Too many pictures at once from one visitor: at most {PER_CLIENT} at a time on this "
           "route; wait for the previous one (the page does this by itself)")


def trusted_proxies() -> frozenset[str]:
    default = "*" if os.environ.get("SPACE_ID") else ""
    text = os.environ.get("VAEGAN_TRUSTED_PROXIES", default)
    return frozenset(p.strip() for p in text.split(",") if p.strip())


class FairShare:
    def __init__(self, per_client: int = PER_CLIENT, trusted: frozenset[str] | None = None) -> None:
        self.per_client = per_client
        self.trusted = trusted_proxies() if trusted is None else trusted
        self._running: Counter = Counter()
        self._lock = threading.Lock()

    def client(self, peer: str | None, forwarded_for: str | None) -> str:
        """Who asks: the peer, or the address a trusted proxy saw."""
        peer = peer or "unknown"
        if forwarded_for and ("*" in self.trusted or peer in self.trusted):
            last = forwarded_for.split(",")[-1].strip()
            return last or peer
        return peer

    @contextmanager
    def slot(self, client: str):
        """Yields True while the client holds one of its slots, False when it has none left."""
        with self._lock:
            ok = self._running[client] < self.per_client
            if ok:
                self._running[client] += 1
        try:
            yield ok
        finally:
            if ok:
                with self._lock:
                    self._running[client] -= 1
                    if not self._running[client]:
                        del self._running[client]
