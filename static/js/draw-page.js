// The draw page: a pad, a live prediction over Socket.IO, MLP and CNN side by side.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const socket = io({ transports: ["websocket", "polling"] });
  const bars = new ProbabilityBars($("bars"));
  const compare = [...document.querySelectorAll(".compare-one")].map((el) => ({
    el,
    network: el.dataset.network,
    bars: new ProbabilityBars(el.querySelector(".bars")),
  }));
  const THROTTLE_MS = 150;
  let pending = null;
  let lastSent = 0;
  let inFlight = false;
  let dirty = false;

  const pad = new DrawingPad($("pad"), {
    onChange: () => schedule(),
    onFinish: () => { dirty = true; send(); },
  });

  $("clear").addEventListener("click", () => {
    pad.clear();
    dirty = false;
    showAnswer(null);
    compare.forEach((c) => showCompare(c, null));
  });

  $("upload").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    const form = new FormData();
    form.append("image", file);
    form.append("model", $("model").value);
    const response = await fetch("/api/predict", { method: "POST", body: form });
    const answer = await response.json();
    showAnswer(answer);
    e.target.value = "";
  });

  $("model").addEventListener("change", () => { if (!pad.empty) { dirty = true; send(); } });

  // Throttle: at most one request per THROTTLE_MS, and never more than one in flight.
  function schedule() {
    dirty = true;
    if (pending) return;
    const wait = Math.max(0, THROTTLE_MS - (performance.now() - lastSent));
    pending = setTimeout(() => { pending = null; send(); }, wait);
  }

  function ask(model, image) {
    return new Promise((resolve) => {
      if (socket.connected) {
        socket.timeout(10000).emit("predict", { image, model }, (err, answer) =>
          resolve(err ? { error: "the server did not answer" } : answer));
      } else {
        fetch("/api/predict", {
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
    try {
      const [main, ...others] = await Promise.all([
        ask($("model").value || null, image),
        ...compare.map((c) => ask(c.network, image)),
      ]);
      showAnswer(main);
      compare.forEach((c, i) => showCompare(c, others[i]));
    } finally {
      inFlight = false;
    }
  }

  function showAnswer(answer) {
    const error = $("error");
    error.hidden = !(answer && answer.error);
    if (answer && answer.error) { error.textContent = answer.error; return; }
    const known = answer && answer.digit !== null && answer.digit !== undefined;
    $("digit").textContent = known ? answer.digit : "?";
    $("confidence").textContent = known
      ? `${(answer.probabilities[answer.digit] * 100).toFixed(1)}% sure (${answer.model})`
      : answer && answer.blank ? "Nothing drawn yet" : "Draw a digit";
    bars.show(known ? answer.probabilities : null);
    paintDigitImage($("seen"), answer && answer.input);
  }

  function showCompare(c, answer) {
    const known = answer && !answer.error && answer.digit !== null && answer.digit !== undefined;
    c.el.querySelector(".digit").textContent = known ? answer.digit : "?";
    c.el.querySelector(".confidence").textContent = known
      ? `${(answer.probabilities[answer.digit] * 100).toFixed(1)}%` : (answer && answer.error) || "";
    c.bars.show(known ? answer.probabilities : null);
  }

  async function loadModels() {
    const response = await fetch("/api/models");
    const { models, active } = await response.json();
    const select = $("model");
    const previous = select.value;
    select.innerHTML = "";
    for (const m of models.filter((m) => m.network !== "xor")) {
      const option = document.createElement("option");
      option.value = m.id;
      const accuracy = m.test_accuracy ? ` · ${(m.test_accuracy * 100).toFixed(2)}%` : "";
      option.textContent = `${m.id} (${m.network || "uploaded"}${accuracy})`;
      select.appendChild(option);
    }
    select.value = previous && [...select.options].some((o) => o.value === previous) ? previous : active.default || "";
  }

  socket.on("models", loadModels); // the teacher activated, trained or uploaded a model
  loadModels();
  showAnswer(null);
})();
