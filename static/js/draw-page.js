// The draw page: a pad, a live prediction over Socket.IO, the other networks' answers beside it, and, while
// "Look inside" is open, the chosen model's layers for the same drawing (asked in the same round as the prediction).
// After an answer, "No, it was a…" files the drawing into the class's dataset; during a collection round the page
// asks for the round's labels instead. A model trained on the class's own labels (letters) shows its labels.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const socket = io({ transports: ["websocket", "polling"] });
  const bars = new LabelBars($("bars"));
  const LABELS = { mlp: "MLP", mlp2: "MLP2", cnn: "CNN" };
  const DIGITS = Array.from({ length: 10 }, (_, d) => String(d));
  const CLASS_DIGITS = "class-digits"; // the built-in dataset that corrections of digit models go into
  const asked = new URLSearchParams(location.search).get("model"); // /?model=ID: "Draw with it" from /train
  const REQUEST_MS = 50; // one ask per network and one to look inside: at most 20 a second, the server's limit
  let models = [];
  let active = {};
  let compare = []; // [{el, network, bars}] for the active networks other than the chosen model's
  let pending = null;
  let lastSent = 0;
  let inFlight = false;
  let dirty = false;
  let lastAnswer = null; // the chosen model's answer to the drawing shown, for a round's `guess`

  const inside = new LookInside($("look-inside"), {
    onOpen: () => { if (!pad.empty) { dirty = true; send(); } },
  });

  const pad = new DrawingPad($("pad"), {
    onChange: () => schedule(),
    onFinish: () => { dirty = true; send(); },
  });

  const correction = new Correction($("correction"), { socket });
  const round = new CollectionRound(socket, {
    root: $("round"), title: $("pad-title"), send: $("round-send"), status: $("round-status"),
  }, {
    getImage: () => (pad.empty ? null : pad.toDataURL()),
    // the model's answer is a guess only when the model reads the round's labels (a digit round, a digit model)
    getGuess: (labels) => (lastAnswer && sameLabels(labelsOf(chosen()), labels) ? lastAnswer.label ?? null : null),
    onChange: (started) => { if (started) clearPad(); showTitle(); correction.hide(); }, // a new prompt, a clean pad
    onFiled: () => clearPad(),
  });

  $("clear").addEventListener("click", clearPad);

  function clearPad() {
    pad.clear();
    dirty = false;
    showAnswer(null);
    compare.forEach((c) => showCompare(c, null));
    inside.show(null);
  }

  $("upload").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    const form = new FormData();
    form.append("image", file);
    form.append("model", $("model").value);
    const post = (url) => fetch(url, { method: "POST", body: form }).then((r) => r.json())
      .catch(() => ({ error: "the server cannot be reached" }));
    const looking = inside.isOpen;
    const [answer, insideAnswer, image] = await Promise.all([
      post("/api/predict"), looking ? post("/api/inspect") : null, readAsDataURL(file)]);
    showAnswer(answer, image);
    if (looking) inside.show(insideAnswer);
    e.target.value = "";
  });

  function readAsDataURL(file) {
    return new Promise((resolve) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => resolve(null);
      reader.readAsDataURL(file);
    });
  }

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

  // A round whose labels the chosen model does not read (letters, a digit model): its answer would be about
  // something else, so the page asks nothing and says so.
  function answerIsOff() {
    return round.active && !sameLabels(labelsOf(chosen()), round.round.labels);
  }

  async function send() {
    if (!dirty || pad.empty) return;
    if (answerIsOff()) {
      dirty = false;
      showAnswer(null);
      $("confidence").textContent = `This model reads ${drawWhat(labelsOf(chosen()))}, not the round's labels`;
      return;
    }
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
      showAnswer(main, image);
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

  // What an answer reads: `label` (every model), or `digit` from a server that predates labels.
  function answerLabel(answer) {
    if (!answer || answer.error) return null;
    if (answer.label !== null && answer.label !== undefined) return String(answer.label);
    return answer.digit !== null && answer.digit !== undefined ? String(answer.digit) : null;
  }

  function percentSure(answer) {
    const p = Math.max(...answer.probabilities); // the answer is the most probable label
    return `${(p * 100).toFixed(1)}%`;
  }

  function showAnswer(answer, image = null) {
    const error = $("error");
    error.hidden = !(answer && answer.error);
    if (answer && answer.error) { error.textContent = answer.error; return; }
    const label = answerLabel(answer);
    const known = label !== null && !!answer.probabilities;
    lastAnswer = known ? { ...answer, label } : null;
    if (known && answer.labels) bars.setLabels(answer.labels); // the model that answered, after a fallback too
    $("digit").textContent = known ? label : "?";
    $("digit").classList.toggle("long", known && label.length > 2);
    $("confidence").textContent = known
      ? `${percentSure(answer)} sure`
      : answer && answer.blank ? "Nothing drawn yet" : round.active ? "" : `Draw ${drawWhat(labelsOf(chosen()))}`;
    bars.show(known ? answer.probabilities : null);
    // "No, it was a…" after any answer, outside a round (a round files every drawing under its prompt already)
    if (known && !round.active) correction.offer(lastAnswer, image, correctionTarget(answer));
    else if (!known) correction.hide();
    paintDigitImage($("seen"), answer && answer.input);
    // The chosen model's file is broken: say which model answered instead.
    $("fallback").hidden = !(answer && answer.fallback);
    $("fallback").textContent = answer && answer.fallback ? answer.fallback.message : "";
  }

  function showCompare(c, answer) {
    const label = answerLabel(answer);
    const known = label !== null && !!answer.probabilities;
    c.el.querySelector(".digit").textContent = known ? label : "?";
    c.el.querySelector(".confidence").textContent = known ? percentSure(answer) : (answer && answer.error) || "";
    c.bars.show(known ? answer.probabilities : null);
  }

  // The labels a model reads: its own (a letters model), else the ten digits.
  function labelsOf(model) {
    return model && Array.isArray(model.labels) && model.labels.length ? model.labels.map(String) : DIGITS;
  }

  function sameLabels(a, b) { return a.join("\u0000") === b.join("\u0000"); }

  // "a digit", "A, B, C, D or E", "one of 26 labels"
  function drawWhat(labels) {
    if (sameLabels(labels, DIGITS)) return "a digit";
    if (labels.length <= 8) return `${labels.slice(0, -1).join(", ")} or ${labels[labels.length - 1]}`;
    return `one of ${labels.length} labels (${labels.slice(0, 3).join(", ")}…)`;
  }

  // Where "No, it was a…" files a drawing: class-digits for a digit model; for a model trained on one of the
  // class's datasets, that dataset; nowhere for others.
  function correctionTarget(answer) {
    if (!answer.labels) return { dataset: CLASS_DIGITS, labels: DIGITS };
    const model = models.find((m) => m.id === answer.model);
    return model && model.dataset ? { dataset: model.dataset, labels: answer.labels.map(String) } : null;
  }

  // The page's heading: a round's prompt ("Draw a C"), else what the chosen model reads.
  function showTitle() {
    const labels = labelsOf(chosen());
    bars.setLabels(labels);
    $("bars-title").textContent = sameLabels(labels, DIGITS) ? "Probability of each digit" : "Probability of each label";
    $("pad").setAttribute("aria-label", sameLabels(labels, DIGITS) ? "Drawing area: draw a digit from 0 to 9"
      : `Drawing area: draw ${drawWhat(labels)}`);
    if (!round.active) $("pad-title").textContent = `Draw ${drawWhat(labels)}`;
    if (!lastAnswer) $("confidence").textContent = round.active ? "" : `Draw ${drawWhat(labels)}`;
  }

  // The answer under the pad is the chosen model's; the comparison shows each other network once (digit models
  // only: the other networks read digits, not a letters model's labels).
  function buildCompare() {
    const model = chosen();
    const network = model ? model.network : null;
    $("answer").dataset.network = network || "";
    $("answer-model").textContent = model ? model.name : "";
    showTitle();
    const ownLabels = !sameLabels(labelsOf(model), DIGITS);
    const others = ownLabels ? [] : Object.keys(LABELS).filter((n) => n !== network && active[n]);
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
    const previous = select.value || asked;
    select.replaceChildren();
    // Digit models first; models trained on the class's own labels in a group each, named by their labels.
    const groups = new Map();
    for (const m of models) {
      const labels = labelsOf(m);
      const key = sameLabels(labels, DIGITS) ? "" : labels.join("\u0000");
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(m);
    }
    for (const [key, members] of [...groups].sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : 0))) {
      const options = members.map((m) => {
        const option = document.createElement("option");
        option.value = m.id;
        option.textContent = m.id === active.default ? `${m.name} (default)` : m.name;
        return option;
      });
      if (groups.size === 1) { select.append(...options); continue; }
      const group = document.createElement("optgroup");
      group.label = key === "" ? "Digits" : `Reads ${drawWhat(labelsOf(members[0]))}`;
      group.append(...options);
      select.append(group);
    }
    select.value = previous && models.some((m) => m.id === previous) ? previous : active.default || "";
    buildCompare();
    if (!pad.empty) { dirty = true; send(); }
  }

  socket.on("models", loadModels); // the teacher activated, renamed, trained or uploaded a model
  loadModels();
  showAnswer(null);
  // for tests and the console; answered(): the drawing on the pad has its answer (nothing waits to be sent)
  window.drawPage = { correction, round, answered: () => !pending && !inFlight && !dirty };
})();
