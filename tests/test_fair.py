"""Fair share of the no-queue routes: one client cannot hold more than its slots; a proxy's
X-Forwarded-For counts only from a trusted proxy (by default: on a Space)."""
import time

import httpx
import pytest

from conftest import serving
from ui.fair import (PER_CLIENT, RATE_REFUSAL, REFUSAL, REFUSAL_WAIT, SLOT_WAIT, FairShare,
                     trusted_proxies)
from ui.live import ROUTE, TRACK_ROUTE
from ui.page import create_demo


def test_the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy():
    open_door = FairShare(trusted=frozenset())
    assert open_door.client("10.0.0.9", "1.2.3.4") == "10.0.0.9"  # anyone can write the header
    proxy = FairShare(trusted=frozenset({"10.0.0.1"}))
    assert proxy.client("10.0.0.1", "6.6.6.6, 1.2.3.4") == "1.2.3.4"  # what the proxy saw: last
    assert proxy.client("10.0.0.2", "1.2.3.4") == "10.0.0.2"
    assert FairShare(trusted=frozenset({"*"})).client("10.0.0.7", " 5.5.5.5 ") == "5.5.5.5"


def test_a_space_trusts_its_proxy_by_default(monkeypatch):
    monkeypatch.delenv("VAEGAN_TRUSTED_PROXIES", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert trusted_proxies() == frozenset()
    monkeypatch.setenv("SPACE_ID", "someone/explorer")
    assert trusted_proxies() == {"*"}
    monkeypatch.setenv("VAEGAN_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2")
    assert trusted_proxies() == {"10.0.0.1", "10.0.0.2"}


def test_slots_are_counted_per_client_and_given_back():
    share = FairShare(per_client=2, trusted=frozenset())
    with share.slot("a") as one, share.slot("a") as two, share.slot("a") as three, share.slot("b") as other:
        assert (one, two, three, other) == (True, True, False, True)
    with share.slot("a") as again:
        assert again and not share._running["b"]


@pytest.mark.parametrize("route", [ROUTE, TRACK_ROUTE])
def test_a_client_over_its_slots_gets_429_and_a_sentence_after_a_short_wait(explorer_tiny, route):
    demo = create_demo(explorer_tiny)
    with serving(demo, trailing_slash=False) as url:
        share = demo.vaegan_fair_share
        query = {"values": "0.5", "slider": "1"}
        assert httpx.get(url + route, params=query, timeout=30).status_code == 200
        for _ in range(100):  # the slot is given back just after the answer's last byte
            if not share._running:
                break
            time.sleep(0.05)
        held = [share.slot("127.0.0.1") for _ in range(PER_CLIENT)]
        for slot in held:
            assert slot.__enter__()
        try:
            t0 = time.perf_counter()
            r = httpx.get(url + route, params=query, timeout=30)
            waited = time.perf_counter() - t0
            assert r.status_code == 429 and r.headers["Retry-After"] == "1"
            assert SLOT_WAIT * 0.9 <= waited < SLOT_WAIT + 5
            assert r.json() == {"error": REFUSAL}
            # another visitor behind a proxy on loopback (uvicorn trusts 127.0.0.1's
            # X-Forwarded-For, FORWARDED_ALLOW_IPS) has slots of its own
            r = httpx.get(url + route, params=query, headers={"X-Forwarded-For": "9.9.9.9"}, timeout=30)
            assert r.status_code == 200
        finally:
            for slot in held:
                slot.__exit__(None, None, None)
        assert httpx.get(url + route, params=query, timeout=30).status_code == 200


def test_a_budget_per_client_bounds_the_rate_and_refills_with_time():
    now = [0.0]
    share = FairShare(trusted=frozenset(), rate=10.0, burst=20.0, clock=lambda: now[0])
    assert all(share.afford("a", 1.0) for _ in range(20))  # the saved-up burst
    assert not share.afford("a", 1.0) and share.afford("b", 1.0)  # a's budget, not b's
    now[0] += 0.5  # half a second: 5 units back
    assert all(share.afford("a", 1.0) for _ in range(5)) and not share.afford("a", 1.0)
    now[0] += 10.0  # never more than the burst
    assert share.afford("a", 20.0) and not share.afford("a", 1.0)
    assert not share.afford("c", 21.0) and share.afford("c", 20.0)  # a refusal takes nothing


def test_a_script_asking_as_fast_as_it_can_is_refused_with_the_rate_sentence(explorer_tiny):
    demo = create_demo(explorer_tiny)
    with serving(demo, trailing_slash=False) as url:
        share = demo.vaegan_fair_share
        share.rate, share.burst = 0.5, 3.0  # (the real budget: see ui/fair.py)
        with httpx.Client() as http:
            bad = [http.get(url + ROUTE, params={"values": "7"}, timeout=30) for _ in range(5)]
            codes = [http.get(url + ROUTE, params={"values": "0.5"}, timeout=30).status_code
                     for _ in range(4)]
            t0 = time.perf_counter()
            r = http.get(url + TRACK_ROUTE, params={"slider": "1"}, timeout=30)
            waited = time.perf_counter() - t0
        # bad input is refused for what it is and costs nothing: the budget is all there after
        assert [b.status_code for b in bad] == [400] * 5 and bad[0].json()["error"].startswith("Values[0]")
        assert codes[:3] == [200, 200, 200] and codes[3] == 429
        assert r.status_code == 429 and r.json() == {"error": RATE_REFUSAL}
        # a refusal is answered when the budget could pay, at most REFUSAL_WAIT s later
        assert REFUSAL_WAIT * 0.9 <= waited < REFUSAL_WAIT + 5


def test_a_refund_gives_back_what_a_request_took_and_no_more():
    now = [0.0]
    share = FairShare(trusted=frozenset(), rate=1.0, burst=10.0, clock=lambda: now[0])
    assert share.afford("a", 10.0) and not share.afford("a", 1.0)
    share.refund("a", 4.0)
    assert share.afford("a", 4.0) and not share.afford("a", 1.0)
    share.refund("a", 100.0)  # never beyond the burst
    assert share.afford("a", 10.0) and not share.afford("a", 1.0)


def test_the_wait_is_the_time_until_the_budget_could_pay():
    now = [0.0]
    share = FairShare(trusted=frozenset(), rate=10.0, burst=20.0, clock=lambda: now[0])
    assert share.wait("a", 5.0) == 0.0 and share.afford("a", 20.0)
    assert share.wait("a", 5.0) == pytest.approx(0.5)
    now[0] += 0.2
    assert share.wait("a", 5.0) == pytest.approx(0.3) and share.wait("b", 5.0) == 0.0
