"""Links that restore a view: everything a picture depends on, in the page's query string.
Nothing is stored on the server, so a link survives restarts and opens on any copy of the app
that lists the model.

    ?model=SPEC&tab=explore&basis=pca&z=BASE64&s=0.5,0,-1.25
    ?model=SPEC&tab=map&proj=plane&basis=pca&i=1&j=2&shade=0&z=BASE64[&pick=BASE64]

- z (and pick, the Map's picked place): a code as base64url (no padding) of its latent_dim
  float32s, little-endian: exact, so the picture is pixel-equal to the one the link was made
  from (44 characters per 8 numbers: 171 for the shipped 32-number codes).
- s: the slider values as decimals (trailing zeros dropped); exact too (Python's repr).
- A view on the visitor's own directions ("yours", which live in their page only) is linked
  as its code: z is the code the sliders point at, on the first basis, sliders at 0.

read() checks every field and raises ValueError with one sentence naming what was wrong;
the page then opens its default view and shows that sentence.
"""
from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode

import torch

from vaegan.explorer import N_SLIDERS, ORIGIN_LIMIT, SLIDER_LIMIT, YOURS, Explorer, checked_number
from vaegan.latent_map import PROJECTIONS

# the js= after a "Copy link" click: the server's query string -> this page's URL, copied
COPY_JS = ("(q) => { if (!q) return ''; const u = location.origin + location.pathname + q; "
           "if (navigator.clipboard) navigator.clipboard.writeText(u).catch(() => {}); return u; }")
# the js= of a load event: the page's query string (on a Space: the Space page's, passed on)
READ_JS = "() => window.location.search || ''"
MAX_LINK = 4096  # characters of a query string read at all
FIELDS = {"explore": {"model", "tab", "basis", "z", "s"},
          "map": {"model", "tab", "proj", "basis", "i", "j", "shade", "z", "pick"}}


@dataclass
class Link:
    model: str
    tab: str = "explore"
    basis: str = "kl"
    z: list[float] | None = None  # the starting point (Explore) or the plane's origin (Map)
    values: list[float] | None = None  # the sliders (Explore)
    projection: str = "plane"
    first: int = 1
    second: int = 2
    shaded: bool = False
    pick: list[float] | None = None  # the Map's picked code


def code_text(z) -> str:
    """A code -> base64url of its float32s (little-endian), no padding."""
    raw = torch.as_tensor(z, dtype=torch.float32).flatten().numpy().astype("<f4").tobytes()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_code(text: str, m: Explorer, name: str) -> list[float]:
    """code_text's inverse, checked: latent_dim finite numbers within the origin's limits."""
    n = m.config.latent_dim
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} is not a code written by this app (base64url of "
                         f"{n} float32 numbers)") from None
    if len(raw) != 4 * n:
        raise ValueError(f"{name} holds {len(raw)} bytes; codes of {m.spec} are {n} float32 "
                         f"numbers, {4 * n} bytes")
    z = torch.frombuffer(bytearray(raw), dtype=torch.float32).tolist()
    if not all(math.isfinite(v) and abs(v) <= ORIGIN_LIMIT for v in z):
        raise ValueError(f"{name} holds a number that is not finite or beyond "
                         f"±{ORIGIN_LIMIT:g}")
    return z


def query(m: Explorer, link: Link) -> str:
    """The query string ("?...") of a view of model m."""
    fields = {"model": m.spec, "tab": link.tab, "basis": link.basis, "z": code_text(link.z)}
    if link.tab == "explore":
        vals = [float(v) for v in (link.values or [])]
        while vals and vals[-1] == 0:
            vals.pop()
        fields["s"] = ",".join(repr(v).removesuffix(".0") for v in vals)
    else:
        fields.update(proj=link.projection, i=link.first, j=link.second,
                      shade=int(bool(link.shaded)))
        if link.pick is not None:
            fields["pick"] = code_text(link.pick)
    return "?" + urlencode(fields)


def explore_link(m: Explorer, basis, origin, values, directions=None) -> Link:
    """Explore's view as a Link; on the visitor's own basis, its code on the first basis."""
    if basis == YOURS:
        z = m.latent(values, m.custom_basis(directions or []), origin)
        return Link(m.spec, "explore", next(iter(m.bases)), z.tolist(), [])
    m.latent(values, basis, origin)  # (bad state: the sentence now, not when opened)
    return Link(m.spec, "explore", basis, m.origin(origin).tolist(), [float(v) for v in values])


def read(text: str | None, specs: list[str], explorer) -> Link | None:
    """A query string -> the Link it holds (None: no link at all). explorer(spec) gives the
    model (it is asked only for a spec in `specs`). Raises ValueError, one sentence."""
    text = (text or "").lstrip("?")
    if len(text) > MAX_LINK:
        raise ValueError(f"the link is {len(text):,} characters long; links of this app have "
                         f"at most {MAX_LINK:,}")
    try:
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text),
                          max_num_fields=20)
    except ValueError:
        raise ValueError("the link's query string is not of the form name=value&...") from None
    if not fields or not {"model", "tab", "z"} & fields.keys():
        return None  # someone else's parameters (e.g. a Space's own): not a link of ours
    one = {}
    for key, vals in fields.items():
        if len(vals) > 1:
            raise ValueError(f"the link gives {key} {len(vals)} times")
        one[key] = vals[0]
    tab = one.get("tab", "explore")
    if tab not in FIELDS:
        raise ValueError(f"tab must be one of {sorted(FIELDS)}, got {tab[:40]!r}")
    unknown = sorted(one.keys() - FIELDS[tab])
    if unknown:
        raise ValueError(f"the link has a field this app does not know: {unknown[0][:40]!r}")
    for key in ("model", "z"):
        if not one.get(key):
            raise ValueError(f"the link has no {key}")
    if one["model"] not in specs:
        raise ValueError(f"the link's model {one['model'][:80]!r} is not one this app offers "
                         f"({', '.join(specs)})")
    m = explorer(one["model"])
    link = Link(one["model"], tab, one.get("basis", next(iter(m.bases))))
    if link.basis not in m.bases:
        raise ValueError(f"basis must be one of {sorted(m.bases)}, got {link.basis[:40]!r}")
    link.z = read_code(one["z"], m, "z")
    if tab == "explore":
        link.values = _values(one.get("s", ""))
        m.latent(link.values, link.basis, link.z)  # e.g. more values than the basis has
        return link
    if one.get("proj", "plane") not in PROJECTIONS:
        raise ValueError(f"proj must be one of {sorted(PROJECTIONS)}, got {one['proj'][:40]!r}")
    link.projection = one.get("proj", "plane")
    link.first, link.second = (checked_number(one.get(k, d), k, 1, N_SLIDERS, integer=True)
                               for k, d in (("i", "1"), ("j", "2")))
    if one.get("shade", "0") not in ("0", "1"):
        raise ValueError(f"shade must be 0 or 1, got {one['shade'][:40]!r}")
    link.shaded = one.get("shade") == "1"
    if one.get("pick"):
        link.pick = read_code(one["pick"], m, "pick")
    return link


def _values(text: str) -> list[float]:
    parts = [p for p in text.split(",")] if text else []
    if len(parts) > N_SLIDERS:
        raise ValueError(f"s holds {len(parts)} slider values; there are at most {N_SLIDERS}")
    out = []
    for i, p in enumerate(parts):
        try:
            v = float(p)
        except ValueError:
            raise ValueError(f"s[{i}] is not a number: {p[:40]!r}") from None
        out.append(checked_number(v, f"s[{i}]", -SLIDER_LIMIT, SLIDER_LIMIT))
    return out
