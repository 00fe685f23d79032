// The draw page: a pad, a live prediction over Socket.IO, the other networks' answers beside it, and, while
// "Look inside" is open, the chosen model's layers for the same drawing (asked in the same round as the prediction).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const socket = io({ transports: ["websocket", "polling"] });
  const bars = new ProbabilityBars($("bars"));
  const LABELS = { mlp: "MLP", mlp2: "MLP2", cnn: "CNN" };
  const REQUEST_MS = 50; // one ask per network and one to look inside: at most 20 a second, the server's limit
  let models = [];
  let active = {};
  let compare = []; // [{el, network, bars}] for the active networks other than the chosen model's
  let pending = null;
  let lastSent = 0;
  let inFlight = false;
  let dirty = false;

  const inside = new LookInside($("look-inside"), {
    onOpen: () => { if (!pad.empty) { dirty = true; send(); } },
  });

  const pad = new DrawingPad($("pad"), {
    onChange: () => schedule(),
    onFinish: () => { dirty = true; send(); },
  });

  $("clear").addEventListener("click", () => {
    pad.clear();
    dirty = false;
    showAnswer(null);
    compare.forEach((c) => showCompare(c, null));
    inside.show(null);
  });

  $("upload").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    const form = new FormData();
    form.append("image", file);
    form.append("model", $("model").value);
    const post = (url) => fetch(url, { method: "POST", body: form }).then((r) => r.json())
      .catch(() => ({ error: "the server cannot be reached" }));
    const looking = inside.isOpen;
    const [answer, insideAnswer] = await Promise.all([post("/api/predict"), looking ? post("/api/inspect") : null]);
    showAnswer(answer);
    if (looking) inside.show(insideAnswer);
    e.target.value = "";
  });

  $("model").addEventListener("change", () => {
    buildCompare();
    if (pad.empty) inside.show(null);
    else { dirty = true; send(); }
  });

  function chosen() {
    return models.find((m) => m.id === $("model").value);
  }

  function throttleMs() {
    return REQUEST_MS * (1 + compare.length + (inside.isOpen ? 1 : 0));
  }

  // Throttle: at most one drawing sent per throttleMs(), and never more than one in flight.
  function schedule() {
    dirty = true;
    if (pending) return;
    const wait = Math.max(0, throttleMs() - (performance.now() - lastSent));
    pending = setTimeout(() => { pending = null; send(); }, wait);
  }

  // what: "predict" or "inspect" (the Socket.IO event and the REST route have the same name)
  function ask(model, image, what = "predict") {
    return new Promise((resolve) => {
      if (socket.connected) {
        socket.timeout(10000).emit(what, { image, model }, (err, answer) =>
          resolve(err ? { error: "the server did not answer" } : answer));
      } else {
        fetch(`/api/${what}`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ image, model }),
        }).then((r) => r.json()).then(resolve, () => resolve({ error: "the server cannot be reached" }));
      }
    });
  }

  async function send() {
    if (!dirty || pad.empty) return;
    if (inFlight) { schedule(); return; }
    dirty = false;
    inFlight = true;
    lastSent = performance.now();
    const image = pad.toDataURL();
    const asked = compare;
    const looking = inside.isOpen; // closed: nothing more is sent
    try {
      const [main, insideAnswer, ...others] = await Promise.all([
        ask($("model").value || null, image),
        looking ? ask($("model").value || null, image, "inspect") : null,
        ...asked.map((c) => ask(c.network, image)),
      ]);
      showAnswer(main);
      if (looking) inside.show(insideAnswer);
      asked.forEach((c, i) => showCompare(c, others[i]));
      // Over the address's rate (a class behind one address, strokes ending fast): ask again, so the last
      // drawing is never left unanswered.
      const retry = Math.max(0, ...[main, insideAnswer, ...others].map((a) => (a && a.retry_after) || 0));
      if (retry && !pending) {
        dirty = true;
        pending = setTimeout(() => { pending = null; send(); }, Math.max(throttleMs(), retry * 1000));
      }
    } finally {
      inFlight = false;
    }
  }

  function percentSure(answer) {
    return `${(answer.probabilities[answer.digit] * 100).toFixed(1)}%`;
  }

  function showAnswer(answer) {
    const error = $("error");
    error.hidden = !(answer && answer.error);
    if (answer && answer.error) { error.textContent = answer.error; return; }
    const known = answer && answer.digit !== null && answer.digit !== undefined;
    $("digit").textContent = known ? answer.digit : "?";
    $("confidence").textContent = known
      ? `${percentSure(answer)} sure`
      : answer && answer.blank ? "Nothing drawn yet" : "Draw a digit";
    bars.show(known ? answer.probabilities : null);
    paintDigitImage($("seen"), answer && answer.input);
    // The chosen model's file is broken: say which model answered instead.
    $("fallback").hidden = !(answer && answer.fallback);
    $("fallback").textContent = answer && answer.fallback ? answer.fallback.message : "";
  }

  function showCompare(c, answer) {
    const known = answer && !answer.error && answer.digit !== null && answer.digit !== undefined;
    c.el.querySelector(".digit").textContent = known ? answer.digit : "?";
    c.el.querySelector(".confidence").textContent = known ? percentSure(answer) : (answer && answer.error) || "";
    c.bars.show(known ? answer.probabilities : null);
  }

  // The answer under the pad is the chosen model's; the comparison shows each other network once.
  function buildCompare() {
    const model = chosen();
    const network = model ? model.network : null;
    $("answer").dataset.network = network || "";
    $("answer-model").textContent = model ? model.name : "";
    const others = Object.keys(LABELS).filter((n) => n !== network && active[n]);
    if (others.join() === compare.map((c) => c.network).join()) {
      compare.forEach((c) => { c.el.querySelector(".compare-name").textContent = nameOf(active[c.network]); });
      return;
    }
    const box = $("compare");
    box.replaceChildren();
    compare = others.map((n) => {
      const el = document.createElement("div");
      el.className = "compare-one";
      el.dataset.network = n;
      el.innerHTML = `<h3>${LABELS[n]}</h3><p class="compare-name"></p>`
        + `<p class="compare-answer"><span class="digit small">?</span> <span class="confidence"></span></p>`
        + `<div class="bars mini" role="group" aria-label="${LABELS[n]}: probability of each digit"></div>`;
      el.querySelector(".compare-name").textContent = nameOf(active[n]);
      box.append(el);
      return { el, network: n, bars: new ProbabilityBars(el.querySelector(".bars")) };
    });
    box.closest(".compare-card").hidden = compare.length === 0;
  }

  function nameOf(id) {
    const model = models.find((m) => m.id === id);
    return model ? model.name : id;
  }

  async function loadModels() {
    let listing;
    try {
      listing = await (await fetch("/api/models")).json();
    } catch {
      return; // the server is restarting: the next "models" event or reload fills the picker
    }
    models = listing.models.filter((m) => m.network !== "xor");
    active = listing.active;
    const select = $("model");
    const previous = select.value;
    select.replaceChildren();
    for (const m of models) {
      const option = document.createElement("option");
      option.value = m.id;
      option.textContent = m.id === active.default ? `${m.name} (default)` : m.name;
      select.append(option);
    }
    select.value = previous && models.some((m) => m.id === previous) ? previous : active.default || "";
    buildCompare();
    if (!pad.empty) { dirty = true; send(); }
  }

  socket.on("models", loadModels); // the teacher activated, renamed, trained or uploaded a model
  loadModels();
  showAnswer(null);
})();
