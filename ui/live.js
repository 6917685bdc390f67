// The Explore tab's live slider path (served by ui/live.py at /vaegan/live.js).
// While a slider moves, each frame comes from the plain GET route ROUTE instead of Gradio's
// queue: at most one request in flight, the newest values win (like trigger_mode="always_last"),
// each frame shown in an overlay over the Explore image. The overlay hides as soon as Gradio
// puts a new picture underneath (the `decode` event on release, a reset, a new starting point),
// so the Gradio image stays the source of truth. window.vaeganLive.shown records each displayed
// frame (for benchmarks/latency.py).
(() => {
  if (window.vaeganLive) return;  // loaded once per page
  const ROUTE = "/vaegan/decode.png";  // ui/live.py's ROUTE (a test checks they agree)
  const live = window.vaeganLive = {shown: [], inputs: [], errors: 0, lastInput: 0, lastRelease: 0};
  let busy = false, pending = null, overlay = null, lastUrl = null, watched = null;
  const frameOf = () => document.querySelector("#explore-image img:not(.vaegan-live)");
  document.addEventListener("input", e => {
    if (!(e.target.closest && e.target.closest("[id^=slider-]"))) return;
    live.lastInput = performance.now();
    live.inputs.push(live.lastInput);
    if (live.inputs.length > 5000) live.inputs.splice(0, 1000);
  }, true);
  document.addEventListener("pointerup", () => { live.lastRelease = performance.now(); }, true);
  function hide() { if (overlay) overlay.style.display = "none"; }
  function watch(img) {  // Gradio drew a new picture underneath: it is the truth again
    if (watched === img) return;
    watched = img;
    new MutationObserver(hide).observe(img, {attributes: true, attributeFilter: ["src"]});
  }
  async function show(blob, req) {
    const img = frameOf();
    if (!img) return;
    watch(img);
    if (!overlay || !overlay.isConnected) {
      overlay = document.createElement("img");
      overlay.className = "vaegan-live";
      overlay.alt = "";
      overlay.style.cssText = "position:absolute;object-fit:contain;image-rendering:pixelated;" +
                              "pointer-events:none;display:none";
      img.parentElement.style.position = "relative";
      img.parentElement.appendChild(overlay);
    }
    const url = URL.createObjectURL(blob);
    overlay.src = url;
    try { await overlay.decode(); } catch (e) { live.errors++; return; }
    // cover the picture as drawn, not the img box: Gradio may draw it smaller (scale-down)
    const fit = getComputedStyle(img).objectFit, nw = img.naturalWidth || 1, nh = img.naturalHeight || 1;
    let k = Math.min(img.offsetWidth / nw, img.offsetHeight / nh);
    if (fit === "scale-down" || fit === "none") k = Math.min(k, 1);
    const w = nw * k, h = nh * k;
    Object.assign(overlay.style, {left: img.offsetLeft + (img.offsetWidth - w) / 2 + "px",
                                  top: img.offsetTop + (img.offsetHeight - h) / 2 + "px",
                                  width: w + "px", height: h + "px", display: "block"});
    if (lastUrl) URL.revokeObjectURL(lastUrl);
    lastUrl = url;
    live.shown.push({input: req.input, sent: req.sent, got: req.got, shown: performance.now(),
                     values: req.values});
    if (live.shown.length > 5000) live.shown.splice(0, 1000);
  }
  async function run(req) {
    busy = true;
    req.sent = performance.now();
    try {
      const r = await fetch(req.url, {cache: "no-store"});
      const blob = await r.blob();
      req.got = performance.now();
      if (r.ok) await show(blob, req); else live.errors++;
    } catch (e) { live.errors++; }
    busy = false;
    if (pending) { const next = pending; pending = null; run(next); }
  }
  live.request = (basis, origin, model, values) => {
    const root = ((window.gradio_config && window.gradio_config.root) || location.origin).replace(/\/$/, "");
    const q = new URLSearchParams({values: values.join(","), basis: basis || "",
                                   origin: (origin || []).join(","), model: model || ""});
    const req = {url: root + ROUTE + "?" + q, input: live.lastInput || performance.now(), values};
    if (busy) pending = req; else run(req);
  };
})();
