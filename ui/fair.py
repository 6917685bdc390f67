"""Fair share of the no-queue routes (ui/live.py): they skip Gradio's queue so that frames
come at screen rate, so nothing else would stop one client from taking every core. Two
bounds per client, each answered 429 with a sentence, at once:

- at most PER_CLIENT requests of one client run at once (a page keeps one frame and one
  track in flight);
- a budget of RATE units a second (a token bucket holding at most BURST): a frame costs
  FRAME_COST, a track (121 decodes) TRACK_COST. A page dragging at 60 frames a second on the
  frame route alone, or asking a track per grab, stays well inside it; a script that asks
  as fast as the server answers gets about RATE frames a second, about a third of one core.

The client is the peer's address, or, when the peer is a trusted proxy, the address that
proxy saw: the last entry of X-Forwarded-For (entries before it are whatever the client
wrote). Trusted proxies: $VAEGAN_TRUSTED_PROXIES, comma-separated addresses or "*"; on a
Hugging Face Space (SPACE_ID set) every peer is the Space's proxy, so the default there is "*".
(Under Gradio, uvicorn has already replaced a peer in $FORWARDED_ALLOW_IPS, default
127.0.0.1, by the address its X-Forwarded-For names.)

Where: an ASGI middleware (guard) in front of the whole app, so a refusal costs no routing,
no thread from the pool and no parsing of the query. And a refusal is not answered at once:
it waits until the client's budget could pay (at least SLOT_WAIT, at most REFUSAL_WAIT s),
an idle timer in the event loop, so a script that asks again the moment it is told no asks a
few times a second per connection instead of a thousand (benchmarks/fair_share.py measures
both). A page never meets either bound: it keeps one frame and one track in flight.
"""
from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections import Counter, OrderedDict
from contextlib import contextmanager

PER_CLIENT = 2
RATE, BURST = 120.0, 240.0  # budget units per second, and the most a client can save up
FRAME_COST, TRACK_COST = 1.0, 40.0
REFUSAL_WAIT, SLOT_WAIT = 1.0, 0.25  # seconds a refusal waits before it is answered (at most,
# and at least; a refusal for a held slot waits SLOT_WAIT)
CLIENTS_KEPT = 10_000  # buckets remembered (the oldest full ones are forgotten first)
REFUSAL = (f"Too many pictures at once from one visitor: at most {PER_CLIENT} at a time on this "
           "route; wait for the previous one (the page does this by itself)")
RATE_REFUSAL = (f"Too many pictures from one visitor: about {RATE:.0f} frames (or "
                f"{RATE / TRACK_COST:.0f} tracks) a second at most; wait a moment")


def trusted_proxies() -> frozenset[str]:
    default = "*" if os.environ.get("SPACE_ID") else ""
    text = os.environ.get("VAEGAN_TRUSTED_PROXIES", default)
    return frozenset(p.strip() for p in text.split(",") if p.strip())


class FairShare:
    def __init__(self, per_client: int = PER_CLIENT, trusted: frozenset[str] | None = None,
                 rate: float = RATE, burst: float = BURST, clock=time.monotonic) -> None:
        self.per_client, self.rate, self.burst, self.clock = per_client, rate, burst, clock
        self.trusted = trusted_proxies() if trusted is None else trusted
        self._running: Counter = Counter()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # (tokens, when)
        self._lock = threading.Lock()

    def _tokens(self, client: str, now: float, forget: bool = False) -> float:
        """The client's budget now (its bucket refilled since it was last used); forget: take
        the bucket out (afford() puts it back as the newest). Call with the lock held."""
        tokens, when = (self._buckets.pop if forget else self._buckets.get)(client, (self.burst, now))
        return min(self.burst, tokens + (now - when) * self.rate)

    def afford(self, client: str, cost: float) -> bool:
        """Take `cost` from the client's budget; False (nothing taken) when it has too little."""
        now = self.clock()
        with self._lock:
            tokens = self._tokens(client, now, forget=True)
            ok = tokens >= cost
            self._buckets[client] = (tokens - cost if ok else tokens, now)  # newest last
            while len(self._buckets) > CLIENTS_KEPT:
                self._buckets.popitem(last=False)
        return ok

    def wait(self, client: str, cost: float) -> float:
        """Seconds until the client's budget could pay `cost` (0 when it can now)."""
        with self._lock:
            tokens = self._tokens(client, self.clock())
        return max(0.0, (cost - tokens) / self.rate)

    def client(self, peer: str | None, forwarded_for: str | None) -> str:
        """Who asks: the peer, or the address a trusted proxy saw."""
        peer = peer or "unknown"
        if forwarded_for and ("*" in self.trusted or peer in self.trusted):
            last = forwarded_for.split(",")[-1].strip()
            return last or peer
        return peer

    def refund(self, client: str, cost: float) -> None:
        """Give back what afford() took (a request that turned out to cost nothing)."""
        with self._lock:
            if client in self._buckets:
                tokens, when = self._buckets[client]
                self._buckets[client] = (min(self.burst, tokens + cost), when)

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


def guard(app, share: FairShare, costs: dict[str, float]):
    """ASGI middleware: a GET of a path in `costs` runs while its client holds a slot and its
    budget pays the path's cost (given back when the answer is 400: bad input costs almost
    nothing); otherwise, after a wait (see above), 429 with Retry-After and a sentence."""
    async def middleware(scope, receive, send):
        cost = costs.get(scope["path"]) if scope["type"] == "http" else None
        if cost is None:
            return await app(scope, receive, send)
        forwarded = dict(scope["headers"]).get(b"x-forwarded-for")
        client = share.client(scope["client"][0] if scope.get("client") else None,
                              forwarded.decode("latin-1") if forwarded else None)
        with share.slot(client) as ok:
            if ok and share.afford(client, cost):
                status = []

                async def watched(message):
                    if message["type"] == "http.response.start":
                        status.append(message["status"])
                    await send(message)
                await app(scope, receive, watched)
                if status == [400]:
                    share.refund(client, cost)
                return
        wait = SLOT_WAIT if not ok else min(REFUSAL_WAIT, max(SLOT_WAIT, share.wait(client, cost)))
        await asyncio.sleep(wait)
        body = json.dumps({"error": REFUSAL if not ok else RATE_REFUSAL}).encode()
        await send({"type": "http.response.start", "status": 429,
                    "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    return middleware
