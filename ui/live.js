// The Explore tab's live slider path (served by ui/live.py at /vaegan/live.js).
// While a slider moves, its pictures come from two plain GET routes instead of Gradio's queue:
// - the track (TRACK_ROUTE): when a slider's range is grabbed (pointerdown, touchstart, or its
//   first input event), ONE request asks for a sprite of the exact pictures at every position
//   of that slider (the other sliders, basis, origin and model as they are); once it is here,
//   each position is drawn from it at once, with no request;
// - the frame route (ROUTE), until the track is here (at most MAX_WAITING requests: a slow
//   track then draws the newest position when it comes), or when there is none (it failed,
//   the model has none, a typed value off the slider's steps): at most one request in
//   flight, the newest values win (like trigger_mode="always_last").
// Frames are drawn at native size into a canvas overlay over the Explore image (upscaled with
// image-rendering: pixelated). The overlay hides as soon as Gradio puts a new picture
// underneath (the `decode` event on release, a reset, a new starting point), so the Gradio
// image stays the source of truth. window.vaeganLive.shown records each displayed frame (for
// benchmarks/latency.py); window.vaeganLive.track = false turns the track off (the fallback).
(() => {
  if (window.vaeganLive) return;  // loaded once per page
  const ROUTE = "/vaegan/decode.png";  // ui/live.py's ROUTE (a test checks they agree)
  const TRACK_ROUTE = "/vaegan/track.png";  // ui/live.py's TRACK_ROUTE (likewise)
  const MAX_TRACKS = 16;  // sprites kept (about 0.4 MB each for 28x28 pictures)
  const HOVER_MS = 120;  // a mouse resting this long on a slider fetches its track
  const MAX_WAITING = 8;  // frame requests while a track is on its way (then it draws the rest)
  const live = window.vaeganLive = {shown: [], inputs: [], errors: 0, lastInput: 0, lastRelease: 0,
                                    lastHandback: 0, track: true, tracks: 0};
  const tracks = new Map();  // track URL -> {bitmap, layout}; null while asked for; false: failed
  const bitmap = blob => createImageBitmap(blob, {colorSpaceConversion: "none", premultiplyAlpha: "none"});
  let busy = false, pending = null, latest = null, seq = 0, shownSeq = 0, waiting = 0;
  let overlay = null, watched = null, grabbed = null, context = null;
  const frameOf = () => document.querySelector("#explore-image img:not(.vaegan-live)");
  document.addEventListener("input", e => {
    const box = e.target.closest && e.target.closest("[id^=slider-]");
    if (!box) return;
    grabbed = {slider: +box.id.slice("slider-".length), range: e.target.type === "range"};
    live.lastInput = performance.now();
    live.inputs.push(live.lastInput);
    if (live.inputs.length > 5000) live.inputs.splice(0, 1000);
  }, true);
  document.addEventListener("pointerup", () => { live.lastRelease = performance.now(); }, true);
  // a typed value: Gradio's slider sends its release (the exact decode) when the number box
  // loses focus; Enter commits it too, by leaving the box
  const numberBox = t => t.type === "number" && t.closest && t.closest("[id^=slider-]");
  document.addEventListener("keydown", e => {
    if (e.key === "Enter" && numberBox(e.target)) e.target.blur();
  }, true);
  // ... and what it sends is always a number of the slider's range: a value typed beyond it
  // is clamped as it is typed, and a box left empty holds 0 (Gradio would send the value as
  // typed, or None, which the server refuses, and only then clamp it or show 0). Capturing
  // listeners on the document run before the box's own (Gradio's); blur does not bubble, but
  // a capturing listener still sees it.
  const inRange = (t, empty) => {
    if (!numberBox(t) || t.min === "" || t.max === "") return false;
    if (t.value === "") {
      if (empty === undefined) return false;
      t.value = empty;
      return true;
    }
    const v = +t.value, lo = +t.min, hi = +t.max;
    if (!isFinite(v) || (v >= lo && v <= hi)) return false;
    t.value = String(Math.min(Math.max(v, lo), hi));
    return true;
  };
  document.addEventListener("input", e => { inRange(e.target); }, true);
  const commit = e => {
    if (inRange(e.target, "0")) e.target.dispatchEvent(new Event("input", {bubbles: true}));
  };
  document.addEventListener("change", commit, true);
  document.addEventListener("blur", commit, true);
  function grab(e) {  // ask for the track before the first input event, when the state is known
    const box = e.target.closest && e.target.closest("[id^=slider-]");
    if (!box || e.target.type !== "range" || !context) return;
    const url = trackUrl(context, +box.id.slice("slider-".length));
    if (url && !tracks.has(url)) fetchTrack(url);
  }
  document.addEventListener("pointerdown", grab, true);
  document.addEventListener("touchstart", grab, {capture: true, passive: true});
  // a mouse resting on a slider for HOVER_MS is about to grab it: its track is then here
  // before the first input (one hover request at a time, none while a drag is on)
  let hoverTimer = null;
  document.addEventListener("pointerover", e => {
    clearTimeout(hoverTimer);
    if (e.pointerType !== "mouse" || busy || [...tracks.values()].includes(null)) return;
    hoverTimer = setTimeout(() => grab(e), HOVER_MS);
  }, true);
  function hide() {  // Gradio drew a new picture underneath: it is the truth again
    live.lastHandback = performance.now();
    if (overlay) overlay.style.display = "none";
    // after a release, frames still on their way are older than that picture
    if (live.lastRelease >= live.lastInput) shownSeq = seq;
  }
  function watch(img) {
    if (watched === img) return;
    watched = img;
    new MutationObserver(hide).observe(img, {attributes: true, attributeFilter: ["src"]});
  }
  // draw the w x h pixels of `source` at (sx, sy) over the Explore image, if req is the newest
  function draw(source, sx, sy, w, h, req) {
    const img = frameOf();
    if (!img || req.seq <= shownSeq) return false;
    watch(img);
    if (!overlay || !overlay.isConnected) {
      overlay = document.createElement("canvas");
      overlay.className = "vaegan-live";
      overlay.style.cssText = "position:absolute;image-rendering:pixelated;pointer-events:none;display:none";
      img.parentElement.style.position = "relative";
      img.parentElement.appendChild(overlay);
    }
    if (overlay.width !== w || overlay.height !== h) Object.assign(overlay, {width: w, height: h});
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    ctx.drawImage(source, sx, sy, w, h, 0, 0, w, h);
    // cover the picture as drawn, not the img box: Gradio may draw it smaller (scale-down)
    const fit = getComputedStyle(img).objectFit, nw = img.naturalWidth || 1, nh = img.naturalHeight || 1;
    let k = Math.min(img.offsetWidth / nw, img.offsetHeight / nh);
    if (fit === "scale-down" || fit === "none") k = Math.min(k, 1);
    const cw = nw * k, ch = nh * k;
    Object.assign(overlay.style, {left: img.offsetLeft + (img.offsetWidth - cw) / 2 + "px",
                                  top: img.offsetTop + (img.offsetHeight - ch) / 2 + "px",
                                  width: cw + "px", height: ch + "px", display: "block"});
    shownSeq = req.seq;
    live.shown.push({input: req.input, sent: req.sent, got: req.got, shown: performance.now(),
                     values: req.values, source: req.source});
    if (live.shown.length > 5000) live.shown.splice(0, 1000);
    return true;
  }
  // ---- the frame route: one request per frame, at most one in flight ----------------------
  async function run(req) {
    busy = true;
    req.sent = performance.now();
    if (req.track && tracks.get(req.track) === null) waiting++;
    try {
      const r = await fetch(req.url, {cache: "no-store"});
      const blob = await r.blob();
      req.got = performance.now();
      if (!r.ok) live.errors++;
      else if (req.seq > shownSeq) {  // (a track frame may have shown newer values meanwhile)
        const b = await bitmap(blob);
        draw(b, 0, 0, b.width, b.height, {...req, source: "frame"});
        b.close();
      }
    } catch (e) { live.errors++; }
    busy = false;
    if (pending) { const next = pending; pending = null; run(next); }
  }
  // ---- the track: every position of one slider, one request --------------------------------
  function layoutOf(header) {  // "frames=121; columns=11; width=28; height=28; first=-3; step=0.05"
    const out = {};
    for (const part of (header || "").split(";")) {
      const [key, value] = part.split("=");
      if (key && value !== undefined) out[key.trim()] = +value;
    }
    return ["frames", "columns", "width", "height", "first", "step"].every(k => isFinite(out[k])) ? out : null;
  }
  function drawTrack(t, req) {  // false when req's position is not one of the track's frames
    const L = t.layout, v = +req.position, i = Math.round((v - L.first) / L.step);
    // only a value that is exactly the frame's (what the server decoded), else the frame route
    if (!(i >= 0 && i < L.frames && v === +(L.first + i * L.step).toFixed(10))) return false;
    const now = performance.now();
    draw(t.bitmap, (i % L.columns) * L.width, Math.floor(i / L.columns) * L.height, L.width, L.height,
         {...req, sent: now, got: now, source: "track"});
    return true;
  }
  async function fetchTrack(url) {
    tracks.set(url, null);
    live.tracks++;
    waiting = 0;
    try {
      const r = await fetch(url);  // the browser may keep it: a versioned URL never changes
      if (r.status === 429) { tracks.delete(url); return; }  // over this visitor's share: ask again later
      if (!r.ok) throw new Error(`track: HTTP ${r.status}`);
      const layout = layoutOf(r.headers.get("X-Vaegan-Track"));
      if (!layout) throw new Error("track: no layout");
      tracks.set(url, {bitmap: await bitmap(await r.blob()), layout});
    } catch (e) { tracks.set(url, false); live.errors++; return; }
    for (const [key, t] of tracks) {  // keep the newest MAX_TRACKS
      if (tracks.size <= MAX_TRACKS) break;
      if (t) t.bitmap.close();
      tracks.delete(key);
    }
    // here at last: show the newest position from it now, and skip the frame it was waiting for
    if (latest && latest.track === url && drawTrack(tracks.get(url), latest) && pending === latest) pending = null;
  }
  const rootUrl = () => ((window.gradio_config && window.gradio_config.root) || location.origin).replace(/\/$/, "");
  const fieldsOf = c => {  // the visitor's own directions ("yours") travel in the URL: dirs
    const f = {basis: c.basis || "", origin: (c.origin || []).join(","), model: c.model || ""};
    if (c.basis === "yours") f.dirs = (c.mine || []).map(d => (d.vector || d).join(",")).join(";");
    return f;
  };
  function trackUrl(c, k) {  // slider k's track in state c; one URL for the whole drag
    if (!live.track || !c.version || !(k >= 1 && k <= c.values.length)) return null;
    const others = c.values.slice();
    others[k - 1] = 0;
    return rootUrl() + TRACK_ROUTE + "?" + new URLSearchParams(
      {slider: k, values: others.join(","), ...fieldsOf(c), v: c.version});
  }
  // the page's state, from Gradio: at load and on every change (ui/live.py's CONTEXT_JS)
  live.context = (basis, origin, model, version, values, mine) => {
    context = {basis, origin, model, version, values, mine};
  };
  live.request = (basis, origin, model, version, values, mine) => {  // a slider moved (SLIDER_JS)
    // a number box half typed ("-", "") holds no number yet: nothing to draw
    if (values.some(v => v === null || v === "" || !isFinite(+v))) return;
    live.context(basis, origin, model, version, values, mine);
    const q = new URLSearchParams({values: values.join(","), ...fieldsOf(context)});
    const req = {url: rootUrl() + ROUTE + "?" + q, input: live.lastInput || performance.now(), values, seq: ++seq};
    req.track = grabbed && trackUrl(context, grabbed.slider);
    if (req.track) {
      req.position = values[grabbed.slider - 1];
      const t = tracks.get(req.track);
      if (t && drawTrack(t, req)) { latest = req; pending = null; return; }
      if (t === undefined && grabbed.range) fetchTrack(req.track);
      // enough frames asked for while it comes: the track draws the newest when it is here
      if (tracks.get(req.track) === null && waiting >= MAX_WAITING) { latest = req; pending = null; return; }
    }
    latest = req;
    if (busy) pending = req; else run(req);
  };
})();
