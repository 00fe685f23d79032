// The XOR page: the model's forward pass step by step, live training of the tutorial's
// recipe (paced so people can watch), and the convergence study.
// Everyone follows the teacher's XOR runs through JobStream.followClass, as /train does.
// A run that did not learn XOR is shown but never selected; the teacher may keep it.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const teacher = document.body.dataset.role === "teacher";
  const socket = io({ transports: ["websocket", "polling"] });
  // Whether this page hears the class live (tests and screenshots wait on it).
  socket.on("connect", () => { document.body.dataset.socket = "connected"; });
  socket.on("disconnect", () => { document.body.dataset.socket = "disconnected"; });
  const diagram = new XorNetworkDiagram($("xor-diagram"));
  const heatmap = new XorHeatmap($("xor-heatmap"));
  const neurons = new NeuronHeatmaps($("xor-neurons")); // each hidden unit's own map, from the same weights
  const matrices = new XorMatrixView($("xor-steps"), $("xor-explain"), $("xor-step-label"), $("xor-all-steps"));
  const EXPLAIN = $("xor-explain").textContent;
  const studyPlot = new XorStudyPlot($("xor-study-plot"));
  const lossChart = new LineChart($("xor-loss"), {
    title: "Loss (binary cross-entropy) per epoch", yLabel: "loss",
    series: [{ label: "loss", color: "#2f6fed", width: 2 }], yMin: 0,
  });
  const PLAY_MS = 8000; // a run is replayed over about 8 s, however fast it trained
  const TICK_MS = 40;
  const EPOCHS = 1000; // the tutorial's recipe
  let input = "0,1";
  let playback = null; // the run being shown: {jobId, queue, epochs, startedAt, final, skip}
  let failedRun = null; // the last run that did not learn XOR: {jobId, name}, which the teacher may keep
  let shownStudy = null;

  async function call(url, options = {}) {
    try {
      const response = await fetch(url, options);
      const body = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
      return { ok: response.ok, status: response.status, body };
    } catch (err) {
      return { ok: false, status: 0, body: { error: "the server cannot be reached" } };
    }
  }

  const post = (url, data) => call(url, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data),
  });

  function showError(text) {
    $("xor-error").textContent = text || "";
    $("xor-error").hidden = !text;
  }

  // -- a model: its diagram, its breakdown, its predictions, its boundary -----

  function modelLabel(m) {
    let label = m.name || m.id;
    if (!m.name) {
      const facts = [m.hidden ? `${m.hidden} hidden` : null, m.seed !== null && m.seed !== undefined ? `seed ${m.seed}` : null]
        .filter(Boolean);
      if (facts.length) label += ` (${facts.join(", ")})`;
    }
    if (m.success === false && !/fail/i.test(label)) label += " · failed";
    if (m.success === false) label += ": did not learn XOR";
    if (m.source === "shipped" && !/shipped/i.test(label)) label += " · shipped";
    return label;
  }

  // Fills the picker; keeps the current choice unless `select` names another. Says whether the choice changed.
  async function loadModels(select) {
    const answer = await call("/api/xor/models");
    if (!answer.ok) { showError(answer.body.error); return false; }
    const picker = $("xor-model");
    const before = picker.value; // read after the wait: another call may have chosen meanwhile
    const wanted = select || before;
    picker.innerHTML = "";
    (answer.body.models || []).forEach((m) => {
      const option = document.createElement("option");
      option.value = m.id;
      option.textContent = modelLabel(m);
      option.dataset.success = String(m.success !== false);
      picker.append(option);
    });
    if (wanted && [...picker.options].some((o) => o.value === wanted)) picker.value = wanted;
    if (!picker.options.length) showError("There is no XOR model yet: train one below.");
    return picker.value !== before;
  }

  function showingModel() {
    const picker = $("xor-model");
    const chosen = picker.options[picker.selectedIndex];
    $("xor-shown").textContent = chosen ? `Model: ${chosen.textContent}` : "–";
  }

  let breakdownsAsked = 0;
  async function loadBreakdown() {
    const model = $("xor-model").value;
    const x = input;
    if (!model) return;
    const asked = ++breakdownsAsked;
    $("xor-explain").textContent = EXPLAIN;
    const answer = await call(`/api/xor/breakdown?${new URLSearchParams({ x, model })}`);
    if (asked !== breakdownsAsked) return; // a later choice (input or model) has been asked for since
    if (!answer.ok) { showError(answer.body.error); return; }
    showError("");
    const b = answer.body;
    matrices.load(b);
    $("xor-steps").dataset.model = model; // which model and input the matrices show (pages and tests wait on it)
    $("xor-steps").dataset.input = x;
    const one = x !== "all" ? { X: b.input[0], X2: b.steps[1].output[0], out: b.output[0] } : null;
    diagram.draw(b.weights, one);
    showPredictions(b.predictions.map((p) => p.output));
    if (!playback) {
      showingModel();
      heatmap.draw(XorHeatmap.gridFrom(b.weights));
      neurons.draw(b.weights);
    }
    const keras = b.keras_output.map((v) => XorFormat.number(v)).join(", ");
    $("xor-check").textContent = `Keras's own output for the same input: ${keras} ` +
      `(differs from the sums above by at most ${b.max_difference.toExponential(1)}).`;
  }

  function showPredictions(outputs) {
    const cases = [[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]];
    $("xor-predictions").querySelector("tbody").innerHTML = cases.map(([a, b, want], i) => {
      const out = outputs[i];
      const right = want === 1 ? out > 0.5 : out < 0.5;
      return `<tr class="${right ? "right" : "wrong"}"><td>[${a}, ${b}]</td><td>${want}</td><td>${XorFormat.number(out)}</td>` +
        `<td>${right ? "✓ right" : "✗ wrong side of 0.5"}</td></tr>`;
    }).join("");
  }

  document.querySelectorAll(".xor-input").forEach((button) => button.addEventListener("click", () => {
    chooseInput(button);
    loadBreakdown();
  }));
  function chooseInput(button) {
    input = button.dataset.x;
    document.querySelectorAll(".xor-input").forEach((b) => {
      b.classList.toggle("selected", b === button);
      b.setAttribute("aria-pressed", String(b === button));
    });
  }
  chooseInput(document.querySelector('.xor-input[data-x="0,1"]'));
  $("xor-model").addEventListener("change", loadBreakdown);
  $("xor-prev").addEventListener("click", () => matrices.go(-1));
  $("xor-next").addEventListener("click", () => matrices.go(1));
  $("xor-all-steps").addEventListener("click", () => matrices.toggleAll());

  // -- live training, through the jobs API, replayed at a steady pace --------

  const stream = new JobStream(socket, receive);

  async function train(seed) {
    const hidden = Number($("xor-hidden").value);
    $("xor-seed").value = seed;
    $("xor-retry-row").hidden = true;
    failedRun = null;
    setStatus("Asking the server to train…");
    const answer = await post("/api/jobs", { net: "xor", hidden, seed, epochs: EPOCHS });
    if (!answer.ok) { setStatus(answer.body.error || "the server refused", "bad"); return; }
    watch(answer.body.id);
  }

  function watch(jobId) {
    if (playback && playback.jobId === jobId) return;
    if (playback) clearInterval(playback.timer);
    lossChart.clear();
    playback = { jobId, queue: [], epochs: EPOCHS, startedAt: null, final: null, skip: false };
    playback.timer = setInterval(tick, TICK_MS);
    $("xor-retry-row").hidden = true;
    failedRun = null;
    $("xor-shown").textContent = "The run being trained";
    $("xor-train").disabled = true;
    $("xor-skip").hidden = false;
    setStatus("Waiting for the training to start…");
    stream.follow(jobId);
  }

  function receive(event) {
    if (!playback || event.job !== playback.jobId) return;
    if (event.type === "epoch") {
      playback.epochs = event.epochs;
      playback.queue.push(event);
    } else if (event.type === "state" && event.state === "running") {
      setStatus(`Training on ${event.device || "the server"}: hidden units ${event.hidden}, seed ${event.seed}…`);
    } else if (event.type === "state" && event.state === "queued") {
      setStatus("Queued: the training starts when the server is free…");
    } else if (event.type === "done" || event.type === "error") {
      playback.final = event;
    }
  }

  function tick() {
    const run = playback;
    if (!run) return;
    if (run.queue.length && run.startedAt === null) run.startedAt = performance.now();
    const head = run.skip ? Infinity : run.epochs * (performance.now() - (run.startedAt || performance.now())) / PLAY_MS;
    while (run.queue.length && run.queue[0].epoch <= head) show(run.queue.shift());
    if (!run.queue.length && run.final) finish(run.final);
  }

  function show(event) {
    lossChart.add(0, event.epoch, event.logs.loss);
    $("xor-epoch").textContent = `epoch ${event.epoch} of ${event.epochs} · loss ${XorFormat.number(event.logs.loss)}`;
    $("xor-heatmap").dataset.epoch = String(event.epoch);
    if (event.boundary) heatmap.draw(event.boundary);
    if (event.weights) {
      diagram.draw(event.weights);
      neurons.draw(event.weights);
      $("xor-neurons").dataset.epoch = String(event.epoch);
    }
    if (event.outputs) showPredictions(event.outputs);
  }

  async function finish(done) {
    clearInterval(playback.timer);
    const jobId = playback.jobId;
    playback = null;
    $("xor-train").disabled = !teacher;
    $("xor-skip").hidden = true;
    if (done.type === "error") { setStatus(done.error, "bad"); return; }
    if (done.state !== "succeeded") {
      setStatus(done.state === "cancelled" ? "The training was cancelled." : `The training failed: ${done.error}`, "bad");
      return;
    }
    const result = done.result;
    const timing = `${result.seconds.toFixed(2)} s of computing`;
    $("xor-seed").value = result.seed; // a viewer's form says which run this was
    $("xor-hidden").value = result.hidden;
    if (result.success) {
      setStatus(`It learned XOR: all four outputs are on the right side of 0.5 (${timing}). ` +
        `Saved as ${result.name || result.model}.`, "good");
      await loadModels(result.model); // those watching switch to the new model, which works
      await loadBreakdown();
      return;
    }
    // A failed run: show its end state here, but select nothing and save nothing (the teacher may keep it).
    const wrong = result.predictions.filter((p) => !p.correct)
      .map((p) => `[${p.input.join(", ")}] gives ${XorFormat.number(p.output)} but should be ${p.target}`).join("; ");
    setStatus(`This run failed: ${wrong}. That happens often with few hidden units; ` +
      "the tutorial's advice is to train again with a new seed. " +
      (result.model ? `It was saved as ${result.name || result.model}.` : "It was not saved."), "bad");
    diagram.draw(result.weights);
    neurons.draw(result.weights);
    showPredictions(result.predictions.map((p) => p.output));
    heatmap.draw(XorHeatmap.gridFrom(result.weights));
    $("xor-shown").textContent = `The run just trained: ${result.name || `${result.hidden} hidden, seed ${result.seed}`}` +
      (result.model ? "" : ", not saved");
    failedRun = result.model ? null : { jobId, name: result.name };
    $("xor-retry").textContent = `Retry with seed ${result.seed + 1}`;
    $("xor-keep").hidden = !failedRun;
    $("xor-keep").disabled = false;
    $("xor-retry-row").hidden = !teacher;
    await loadModels(); // the list may have changed; the choice stays
  }

  async function keepRun() {
    if (!failedRun) return;
    $("xor-keep").disabled = true;
    const answer = await post("/api/xor/keep", { job: failedRun.jobId });
    if (!answer.ok) {
      $("xor-keep").disabled = false;
      setStatus(`Could not keep the run: ${answer.body.error}`, "bad");
      return;
    }
    const model = answer.body.model;
    failedRun = null;
    $("xor-keep").hidden = true;
    setStatus(`Kept as “${model.name || model.id}”, marked failed, for the lesson. It is selected for you only.`, "bad");
    await loadModels(model.id); // the teacher asked for it; viewers' choices stay as they are
    await loadBreakdown();
  }

  function setStatus(text, tone) {
    const status = $("xor-train-status");
    status.textContent = text;
    status.className = `xor-train-status ${tone || ""}`;
    status.dataset.tone = tone || "";
  }

  $("xor-train").addEventListener("click", () => train(Number($("xor-seed").value) || 0));
  $("xor-retry").addEventListener("click", () => train(Number($("xor-seed").value) + 1));
  $("xor-skip").addEventListener("click", () => { if (playback) playback.skip = true; });
  $("xor-keep").addEventListener("click", keepRun);
  // Everyone watches the teacher's XOR runs live, through the same mechanism as /train.
  stream.followClass({ accepts: (job) => job.net === "xor", show: (job) => watch(job.id) });
  // Someone kept, trained or deleted a model: refresh the list, keeping this page's choice if it still exists.
  socket.on("models", async () => {
    if (await loadModels()) await loadBreakdown();
    else if (!playback && !failedRun) showingModel(); // a renamed model shows its new name
  });

  // -- the convergence study ---------------------------------------------------

  async function runStudy() {
    const sizes = $("xor-study-sizes").value.split(/[\s,]+/).filter(Boolean).map(Number);
    const seeds = Number($("xor-study-seeds").value);
    const answer = await post("/api/xor/study", { sizes, seeds });
    if (!answer.ok) { $("xor-study-status").textContent = answer.body.error; return; }
    showStudy(answer.body);
  }

  function showStudy(study) {
    shownStudy = study.id;
    studyRows = { ...(study.results || {}) };
    drawStudy();
    const running = study.state === "running";
    $("xor-study-progress").hidden = !running;
    $("xor-study-progress").value = study.progress || 0;
    $("xor-study-status").textContent = running
      ? `Training ${study.sizes.length} × ${study.seeds} nets…`
      : studySummary(study);
    showStudyDownloads(study.id, study.state === "done");
  }

  // The finished study's table as files (the server's rows, not this page's): links, so they download as they are.
  function showStudyDownloads(id, done) {
    $("xor-study-download").hidden = !done;
    for (const format of ["csv", "json"]) {
      $(`xor-study-${format}`).href = `/api/xor/study/${encodeURIComponent(id)}?format=${format}`;
    }
  }

  let studyRows = {};

  function studySummary(study) {
    if (study.state === "failed") return `The study failed: ${study.error}`;
    const runs = Object.values(studyRows).reduce((n, r) => n + r.runs, 0);
    return `${runs} training runs of ${study.epochs} epochs in ${(study.seconds || 0).toFixed(2)} s.`;
  }

  function drawStudy() {
    const rows = Object.values(studyRows).sort((a, b) => a.hidden - b.hidden);
    $("xor-study-results").hidden = !rows.length;
    $("xor-study-table").querySelector("tbody").innerHTML = rows.map((r) =>
      `<tr data-hidden="${r.hidden}"><td>${r.hidden}</td><td>${r.successes} / ${r.runs}</td>` +
      `<td>${XorFormat.percent(r.success_rate)}</td><td>${XorFormat.percent(r.ci95[0])} – ${XorFormat.percent(r.ci95[1])}</td>` +
      `<td>${r.tutorial === null || r.tutorial === undefined ? "–" : XorFormat.percent(r.tutorial)}</td></tr>`).join("");
    studyPlot.draw(rows);
  }

  socket.on("xor_study", (event) => {
    if (event.id !== shownStudy) { shownStudy = event.id; studyRows = {}; }
    showStudyDownloads(event.id, event.type === "done" && event.state === "done");
    $("xor-study-progress").hidden = event.type === "done";
    if (event.progress !== undefined) $("xor-study-progress").value = event.progress;
    if (event.type === "progress") {
      const soFar = Object.entries(event.solved).map(([size, n]) => `${size} units: ${n}/${event.seeds}`).join(", ");
      $("xor-study-status").textContent = `Epoch ${event.epoch} of ${event.epochs}, solved so far: ${soFar}…`;
    }
    if (event.type === "result") { studyRows[event.size] = event.result; drawStudy(); }
    if (event.type === "done") {
      studyRows = { ...event.results };
      drawStudy();
      $("xor-study-status").textContent = studySummary({ ...event, epochs: event.epochs || 1000 });
    }
  });
  $("xor-study-run").addEventListener("click", runStudy);

  // -- start ---------------------------------------------------------------------

  if (!teacher) {
    ["xor-train", "xor-hidden", "xor-seed", "xor-retry", "xor-keep", "xor-study-run", "xor-study-sizes", "xor-study-seeds"]
      .forEach((id) => { $(id).disabled = true; });
    $("xor-train-note").hidden = false;
    $("xor-study-note").hidden = false;
  }
  $("xor-seed").value = Math.floor(Math.random() * 1000);
  loadModels().then(loadBreakdown);
  call("/api/xor/study").then((answer) => { if (answer.ok && answer.body.study) showStudy(answer.body.study); });
})();
