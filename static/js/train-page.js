// The training page: start a job (teacher), follow the class's jobs live (everyone), see the result, browse the history.
// A job's data may be one of the class's datasets (GET /api/datasets); its result shows accuracy per label.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const isTeacher = document.body.dataset.role === "teacher";
  const socket = io({ transports: ["websocket", "polling"] });
  const BLUE = "#2f6fed", DARK_BLUE = "#1d3f8f", ORANGE = "#e07a1f";
  const lossChart = new LineChart($("loss-chart"), {
    title: "Loss", yLabel: "loss", yMin: 0,
    series: [{ label: "training (running)", color: BLUE }, { label: "training (epoch)", color: DARK_BLUE, points: true },
             { label: "validation", color: ORANGE, points: true, width: 2 }],
  });
  const accuracyChart = new LineChart($("accuracy-chart"), {
    title: "Accuracy", yLabel: "accuracy", yMin: 0, yMax: 1,
    series: [{ label: "training (running)", color: BLUE }, { label: "training (epoch)", color: DARK_BLUE, points: true },
             { label: "validation", color: ORANGE, points: true, width: 2 }],
  });
  window.trainCharts = { loss: lossChart, accuracy: accuracyChart }; // for tests and the console
  const stream = new JobStream(socket, showEvent);
  let recipes = null;
  let datasets = []; // the class's datasets, offered as data beside MNIST and the sample
  let current = null; // the job shown: {id, state, params, epochsDone, sawBatches, model}

  // -- the form ------------------------------------------------------------

  async function loadNetworks() {
    recipes = await (await fetch("/api/networks")).json();
    $("optimizer").replaceChildren(...recipes.optimizers.map((name) => new Option(name, name)));
    showDataChoices();
    fillDefaults();
  }

  // The data choice shows what the job will really use: full MNIST only where this server has it.
  function showDataChoices() {
    const data = recipes.data;
    if (!data) return;
    const mnist = $("data-mnist");
    mnist.disabled = !data.mnist.available;
    mnist.closest("label").classList.toggle("unavailable", !data.mnist.available);
    $("data-note").hidden = data.mnist.available;
    $("data-note").textContent = data.mnist.available ? "" : `Full MNIST is not available on this server: ${data.mnist.why}`;
  }

  // The class's datasets as data choices: "letters (A, B, C, D, E · 42 drawings)".
  async function loadDatasets() {
    let answer;
    try {
      const response = await fetch("/api/datasets");
      answer = response.ok ? await response.json() : null;
    } catch (err) { answer = null; }
    if (!answer) return;
    const select = $("data-dataset");
    const keep = select.value;
    datasets = answer.datasets || [];
    select.replaceChildren(select.options[0], ...datasets.map((d) => {
      const labels = d.labels.length <= 6 ? d.labels.join(", ") : `${d.labels.slice(0, 5).join(", ")}, … ${d.labels.length} labels`;
      const what = d.builtin ? "fine-tunes the active model on MNIST and them" : labels;
      return new Option(`${d.name} (${what} · ${d.total} drawing${d.total === 1 ? "" : "s"})`, d.id);
    }));
    select.value = datasets.some((d) => d.id === keep) ? keep : "";
    if (keep && !select.value) chooseMnistData(); // the dataset chosen was deleted
    $("datasets-note").hidden = datasets.length > 0;
    $("datasets-note").textContent = "The class's drawings (/data) appear here as datasets to train on.";
  }

  // A dataset and the MNIST radios exclude each other: a dataset unchecks them, a radio clears the dataset.
  function chooseMnistData() {
    if (!document.querySelector("input[name=data]:checked") && recipes && recipes.data) {
      $(`data-${recipes.data.default}`).checked = true;
    }
  }
  $("data-dataset").addEventListener("change", () => {
    if ($("data-dataset").value) document.querySelectorAll("input[name=data]").forEach((r) => { r.checked = false; });
    else chooseMnistData();
  });
  document.querySelectorAll("input[name=data]").forEach((radio) => radio.addEventListener("change", () => {
    $("data-dataset").value = "";
  }));

  function datasetName(id) {
    const d = datasets.find((each) => each.id === id);
    return d ? d.name : null;
  }

  function fillDefaults() {
    const net = $("net").value;
    const recipe = recipes.networks[net];
    const limit = (name) => recipes.limits[(net === "xor" && recipes.limits["xor_" + name] ? "xor_" : "") + name];
    for (const name of ["epochs", "batch_size", "learning_rate", "hidden"]) {
      $(name).value = recipe[name];
      const [low, high] = limit(name);
      Object.assign($(name), { min: low, max: high });
    }
    $("optimizer").value = recipe.optimizer;
    if (recipes.data) $(`data-${recipes.data.default}`).checked = true;
    $("data-dataset").value = "";
    $("hidden-label").textContent = net === "cnn" ? "Dense units" : "Hidden units";
    document.querySelectorAll(".digits-only").forEach((el) => { el.hidden = net === "xor"; });
    $("recipe-note").textContent = {
      xor: "The tutorial's XOR: 2 hidden neurons train successfully about 20% of the time, 4 about 60%, 6 about 90%.",
      mlp: "The tutorial's MLP reaches about 98% on full MNIST in about a minute on a 2-core CPU.",
      mlp2: "Two wide hidden layers with dropout: slower than the MLP.",
      cnn: "The tutorial's CNN reaches about 99% on full MNIST in about 4 minutes on a 2-core CPU.",
    }[net];
  }

  function formParams() {
    const net = $("net").value;
    const params = {
      net,
      epochs: Number($("epochs").value),
      batch_size: Number($("batch_size").value),
      optimizer: $("optimizer").value,
      learning_rate: Number($("learning_rate").value),
      hidden: Number($("hidden").value),
    };
    if (net !== "xor") {
      const checked = document.querySelector("input[name=data]:checked");
      params.data = $("data-dataset").value || (checked ? checked.value : undefined);
      params.augment = $("augment").checked;
    }
    return params;
  }

  function showFormError(message, field) {
    $("form-error").hidden = !message;
    $("form-error").textContent = message || "";
    document.querySelectorAll(".train-form [aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    const input = field === "data" ? ($("data-dataset").value ? $("data-dataset") : document.querySelector("input[name=data]:checked"))
      : field && $(field);
    if (input) input.setAttribute("aria-invalid", "true");
  }

  $("net").addEventListener("change", fillDefaults);
  if (isTeacher) {
    $("defaults").addEventListener("click", fillDefaults);
    $("job-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      showFormError(null);
      $("start").disabled = true;
      try {
        const response = await fetch("/api/jobs", {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(formParams()),
        });
        const answer = await response.json();
        if (!response.ok) { showFormError(answer.error || `error ${response.status}`, answer.field); return; }
        watch(answer.id, answer.state);
        loadHistory();
        // On a phone the live card is below the form: bring it on screen, as on a laptop it already is.
        const card = document.querySelector(".live-card").getBoundingClientRect();
        if (card.top > window.innerHeight / 2) document.querySelector(".live-card").scrollIntoView({ block: "start" });
      } catch (err) {
        showFormError("the server cannot be reached");
      } finally {
        $("start").disabled = false;
      }
    });
  } else {
    $("job-form").addEventListener("submit", (e) => e.preventDefault()); // Enter in a field must not reload
  }

  // -- one job, live ---------------------------------------------------------

  function watch(jobId, state = null) {
    current = { id: jobId, state: null, params: null, epochsDone: 0, sawBatches: false, model: null };
    $("job-title").textContent = `Job ${jobId}`;
    setState(state || "…");
    for (const id of ["job-device", "job-data", "job-tensorboard"]) $(id).textContent = "–";
    $("tensorboard-note").hidden = true;
    $("sample-note").hidden = true;
    $("per-label").hidden = true;
    // The job's epochs so far as Keras's CSVLogger file: a link, so the browser downloads it as it is.
    $("metrics-link").href = `/api/jobs/${encodeURIComponent(jobId)}/metrics.csv`;
    $("take-home").hidden = false;
    $("job-error").hidden = true;
    $("result").hidden = true;
    showProgress({ run: 0, runText: "", epoch: null });
    lossChart.clear();
    accuracyChart.clear();
    markWatched();
    stream.follow(jobId, state);
  }

  function setState(state) {
    current.state = state;
    const badge = $("job-state");
    badge.textContent = state === "starting" ? "starting (loading TensorFlow)" : state;
    badge.className = `state-badge state-${state}`;
    const live = ["queued", "starting", "running"].includes(state);
    $("cancel").disabled = !(live && isTeacher);
  }

  // The two bars: the whole run (with its ETA) and this epoch (with its batches). `epoch: null` hides the
  // epoch's bar; `final` replaces both labels' live figures with the job's ending.
  function showProgress({ run, runText, eta = "", epoch, epochText = "", batch = "", rate = "", final = null }) {
    if (run !== undefined) $("progress-run").value = run;
    $("run-text").textContent = runText;
    $("progress-eta").textContent = eta;
    $("epoch-progress").hidden = epoch === null;
    if (epoch !== null) $("progress-epoch-bar").value = epoch;
    $("progress-epoch").textContent = epochText || "This epoch";
    $("progress-batch").textContent = batch;
    $("progress-rate").textContent = rate;
    $("progress-final").hidden = !final;
    $("progress-final").textContent = final || "";
    $("progress-run").closest(".progress-wrap").classList.toggle("ended", !!final);
  }

  function totalEpochs(event) { return event.epochs || (current.params && current.params.epochs) || 0; }

  function dataLabel(data) {
    if (data === "sample") return "bundled sample";
    if (datasetName(data)) return `the class's “${datasetName(data)}”`;
    if (data === "mnist" || data === "keras.datasets" || (data && /[\\/]|\.npz$/.test(data))) return "full MNIST";
    return data; // XOR: "the four XOR cases"
  }

  function showEvent(event) {
    if (event.type === "error") { showJobError(event.error); return; }
    if (event.type === "state") {
      setState(event.state);
      if (event.params) {
        current.params = event.params;
        $("job-title").textContent = `Job ${event.job}: ${describeJob(event.params)}`;
        if (event.params.net !== "xor") showData(event.params.data);
        $("job-tensorboard").parentElement.hidden = event.params.net === "xor"; // XOR trains in NumPy, not fit
      }
      if (event.device) $("job-device").textContent = event.device;
      if (event.data) showData(event.data);
      if (event.tensorboard) showTensorBoard(event.tensorboard);
      const epochs = totalEpochs(event);
      if (event.stage) showProgress({ runText: `Preparing: ${event.stage}…`, epoch: null });
      else if (event.state === "queued") showProgress({ run: 0, runText: "Queued: starts when the jobs before it end", epoch: null });
      else if (event.state === "starting") showProgress({ run: 0, runText: "Starting: loading TensorFlow…", epoch: null });
      else if (event.state === "running" && !current.epochsDone && !current.sawBatches) {
        showProgress({ run: 0, runText: `0 of ${epochs} epochs`, epoch: null });
      }
    } else if (event.type === "batch") {
      current.sawBatches = true;
      const x = event.epoch - 1 + event.batch / event.batches;
      lossChart.add(0, x, event.loss);
      accuracyChart.add(0, x, event.accuracy);
      const done = (event.epoch - 1) * event.batches + event.batch;
      showProgress({
        run: done / (event.epochs * event.batches),
        runText: `${Math.floor((100 * done) / (event.epochs * event.batches))}%`,
        eta: `· ETA ${formatSeconds(event.eta_s)}`,
        epoch: event.batch / event.batches,
        epochText: `Epoch ${event.epoch} of ${event.epochs}`,
        batch: `· batch ${event.batch} of ${event.batches}`,
        rate: `· ${Math.round(event.samples_per_s).toLocaleString()} samples/s`,
      });
    } else if (event.type === "epoch") {
      const logs = event.logs || {};
      lossChart.add(1, event.epoch, logs.loss);
      lossChart.add(2, event.epoch, logs.val_loss);
      accuracyChart.add(1, event.epoch, logs.accuracy);
      accuracyChart.add(2, event.epoch, logs.val_accuracy);
      current.epochsDone = event.epoch;
      // XOR streams epochs only (a batch is one example): then the run's bar is all there is.
      showProgress({
        run: event.epoch / event.epochs,
        runText: `${event.epoch.toLocaleString()} of ${event.epochs.toLocaleString()} epochs`,
        eta: current.sawBatches ? $("progress-eta").textContent : "",
        epoch: current.sawBatches ? 1 : null,
        epochText: `Epoch ${event.epoch} of ${event.epochs} done`,
      });
    } else if (event.type === "done") {
      setState(event.state);
      if (event.error) showJobError(event.error);
      const result = event.result || {};
      const run = event.state === "succeeded" ? 1 : $("progress-run").value;
      showProgress({ run, runText: "", epoch: null, final: finalText(event.state, result) });
      if (event.state === "succeeded") showResult(result);
      loadHistory();
    }
  }

  // Whether the job writes TensorBoard files on the server; the teacher is told why not (say, not installed).
  function showTensorBoard({ on, why }) {
    $("job-tensorboard").textContent = on ? "on" : "off";
    $("tensorboard-note").hidden = on || !isTeacher || !why;
    $("tensorboard-note").textContent = on ? "" : `TensorBoard logging is off: ${why || ""}`;
  }

  function showData(data) {
    $("job-data").textContent = dataLabel(data);
    $("sample-note").hidden = data !== "sample";
  }

  // How a job ended, in one line: the page's final state, with nothing left counting down.
  function finalText(state, result) {
    const epochs = (current.params && current.params.epochs) || 0;
    const done = current.epochsDone;
    const of = `${done.toLocaleString()} of ${epochs.toLocaleString()} epochs`;
    if (state === "succeeded") {
      const time = result.seconds !== undefined ? ` in ${formatSeconds(result.seconds)}` : "";
      return `Finished: ${epochs.toLocaleString()} epoch${epochs === 1 ? "" : "s"}${time}`;
    }
    if (state === "cancelled") return done || current.sawBatches ? `Cancelled after ${of}` : "Cancelled before training began";
    if (state === "interrupted") return `Interrupted after ${of}: the server stopped`;
    return done || current.sawBatches ? `Failed after ${of}` : "Failed before training began";
  }

  function showJobError(message) {
    $("job-error").hidden = false;
    $("job-error").textContent = message;
  }

  function showResult(result) {
    $("result").hidden = false;
    const accuracy = result.test_accuracy ?? result.accuracy;
    $("test-accuracy").textContent = accuracy === undefined ? "–" : `${(accuracy * 100).toFixed(2)}%`;
    const facts = [];
    if (result.test_samples) facts.push(`on ${result.test_samples.toLocaleString()} test digits`);
    if (result.seconds !== undefined) facts.push(`trained in ${formatSeconds(result.seconds)}`);
    if (result.device) facts.push(`on ${result.device}`);
    if (result.model) facts.push(`saved as ${result.model}`);
    if (result.predictions) { // XOR: the four inputs and what the net answers
      facts.push(result.success ? "XOR solved" : "XOR not solved: try another seed or more hidden neurons");
    }
    const xorAnswers = result.predictions
      ? ". " + result.predictions.map((p) => `${p.input.join(" xor ")} → ${p.output.toFixed(3)}`).join("; ") : "";
    $("result-facts").textContent = facts.join(", ") + xorAnswers;
    current.model = result.model || null;
    current.modelName = current.model;
    $("download-model").hidden = true;
    if (current.model) showDownload(current.id, current.model);
    if (current.model) showModelName(current.id, current.model, facts, xorAnswers);
    const digitModel = current.model && result.confusion && !result.labels;
    $("use-model").hidden = !digitModel;
    $("use-model").disabled = !isTeacher;
    $("use-note").textContent = !digitModel ? "" : isTeacher
      ? "Makes the Draw page predict with this model." : "Only the teacher can choose the model the Draw page uses.";
    // A model with the class's own labels cannot be the class's digit model: the Draw page picks it by id.
    $("draw-with").hidden = !(current.model && result.labels);
    $("draw-with").href = `/?model=${encodeURIComponent(current.model || "")}`;
    showPerLabel(result.per_label);
    document.querySelector(".result-grid").hidden = !result.confusion; // XOR has no digits to show
    if (result.confusion) renderConfusionMatrix($("confusion"), result.confusion);
    else $("confusion").replaceChildren();
    const gallery = result.misclassified || [];
    $("misclassified-count").textContent = result.misclassified_count !== undefined
      ? `(${result.misclassified_count} in all${gallery.length < result.misclassified_count ? `, first ${gallery.length} shown` : ""})` : "";
    $("gallery").replaceChildren(...gallery.map((m) => {
      const figure = document.createElement("figure");
      const img = new Image(56, 56);
      img.src = m.image;
      img.alt = `a ${m.true} read as ${m.predicted}`;
      const caption = document.createElement("figcaption");
      caption.textContent = `${m.true} → ${m.predicted}`;
      caption.title = `true ${m.true}, predicted ${m.predicted} (${(m.confidence * 100).toFixed(0)}% sure)`;
      figure.append(img, caption);
      return figure;
    }));
  }

  // A dataset job: accuracy per label on the drawings it held out, before (the model it fine-tuned) and after.
  function showPerLabel(perLabel) {
    $("per-label").hidden = !perLabel;
    if (!perLabel) return;
    const before = perLabel.before || null;
    const percent = (x) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(0)}%`);
    const table = $("per-label-table");
    const head = ["Label", "Held out", ...(before ? ["Before"] : []), "After"];
    table.replaceChildren();
    const headRow = table.createTHead().insertRow();
    for (const text of head) {
      const th = document.createElement("th");
      th.textContent = text;
      headRow.append(th);
    }
    const body = table.createTBody();
    for (const label of perLabel.labels) {
      const tr = body.insertRow();
      const after = perLabel.after ? perLabel.after[label] : null;
      const cells = [label, String((perLabel.held_out || {})[label] ?? "–"), ...(before ? [percent(before[label])] : []),
                     percent(after)];
      cells.forEach((text, i) => {
        const td = tr.insertCell();
        td.textContent = text; // a teacher's label: text, never markup
        td.dataset.label = head[i];
      });
      if (before && after !== null && after !== undefined && before[label] !== null && before[label] !== undefined) {
        tr.lastChild.className = after > before[label] ? "better" : after < before[label] ? "worse" : "";
      }
    }
    $("per-label-note").textContent = before
      ? "(on the class's drawings the job held out: the old model, then the new one)"
      : "(on the class's drawings the job held out)";
  }

  // "Download model" only where it works: NEURONLAB_DOWNLOADS (webapp/web/downloads.py) keeps a model that is
  // neither shipped nor in use for the teacher by default; the server has the last word.
  async function showDownload(jobId, modelId) {
    const policy = $("result").dataset.downloads;
    let allowed = isTeacher || policy === "everyone";
    if (!allowed && policy === "shared") {
      try {
        const { active } = await (await fetch("/api/models")).json();
        allowed = Object.values(active || {}).includes(modelId);
      } catch (err) { /* no link, then */ }
    }
    if (!current || current.id !== jobId) return; // the page moved on meanwhile
    $("download-model").href = `/api/models/${encodeURIComponent(modelId)}/download?format=keras`;
    $("download-model").hidden = !allowed;
  }

  // People tell models apart by their names ("CNN · 2 epochs · sample · 93.4%"), not by ids.
  async function showModelName(jobId, modelId, facts, tail) {
    let name = modelId;
    try {
      const response = await fetch(`/api/models/${encodeURIComponent(modelId)}`);
      if (response.ok) name = (await response.json()).name || modelId;
    } catch (err) { /* the id will do */ }
    if (!current || current.id !== jobId) return; // the page moved on meanwhile
    current.modelName = name;
    const saved = name === modelId ? `saved as ${modelId}` : `saved as “${name}” (${modelId})`;
    $("result-facts").textContent = facts.map((f) => (f === `saved as ${modelId}` ? saved : f)).join(", ") + tail;
  }

  $("cancel").addEventListener("click", async () => {
    if (!current) return;
    $("cancel").disabled = true;
    const response = await fetch(`/api/jobs/${current.id}`, { method: "DELETE" });
    if (!response.ok) showJobError((await response.json()).error);
  });

  // ModelActions asks the teacher first when the model is weaker or trained on the sample; without it, activate.
  async function activateModel(modelId, name) {
    if (window.ModelActions) return window.ModelActions.activate(modelId);
    const response = await fetch(`/api/models/${encodeURIComponent(modelId)}/activate`, { method: "POST" });
    const answer = await response.json().catch(() => ({}));
    return { ok: response.ok,
             message: response.ok ? `The Draw page now predicts with ${name}.` : answer.error || `error ${response.status}` };
  }

  $("use-model").addEventListener("click", async () => {
    if (!current || !current.model) return;
    $("use-model").disabled = true;
    try {
      const { message } = await activateModel(current.model, current.modelName || current.model);
      $("use-note").textContent = message || "";
    } catch (err) {
      $("use-note").textContent = "the server cannot be reached";
    } finally {
      $("use-model").disabled = !isTeacher;
    }
  });

  // -- history ---------------------------------------------------------------

  let historyTimer = null;
  function loadHistory() { // debounced: a burst of job updates makes one request
    clearTimeout(historyTimer);
    historyTimer = setTimeout(refreshHistory, 200);
  }

  const COLUMNS = ["Started", "Network", "Parameters", "State", "Epochs", "Test accuracy", "Device"];

  async function refreshHistory() {
    const { jobs, notice } = await (await fetch("/api/jobs")).json();
    $("history-notice").hidden = !notice; // e.g. a damaged history was moved aside: say under what name
    $("history-notice").textContent = notice || "";
    const rows = jobs.map((job) => {
      const tr = document.createElement("tr");
      tr.dataset.job = job.id;
      const cells = [
        new Date((job.started || job.created) * 1000).toLocaleString(),
        job.net,
        describeParams(job.params),
        job.state + (job.error ? `: ${job.error}` : ""),
        `${job.epochs_done || 0} / ${job.params.epochs}`,
        job.test_accuracy !== undefined ? `${(job.test_accuracy * 100).toFixed(2)}%` : "–",
        job.device || "–",
      ];
      cells.forEach((text, i) => {
        const cell = tr.insertCell();
        cell.textContent = text;
        cell.dataset.label = COLUMNS[i]; // phones show each row as a card with these labels
      });
      tr.cells[3].className = `state-${job.state}`;
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Watch";
      button.setAttribute("aria-label", `Watch job ${job.id} (${job.net}, ${job.state})`);
      button.addEventListener("click", () => watch(job.id, job.state));
      tr.insertCell().appendChild(button);
      return tr;
    });
    // Redrawing must not take the keyboard's focus away from the Watch button it is on.
    const focused = document.activeElement && document.activeElement.closest("#history tr");
    $("history").tBodies[0].replaceChildren(...rows);
    if (focused) rows.find((tr) => tr.dataset.job === focused.dataset.job)?.querySelector("button").focus();
    markWatched();
    return jobs;
  }

  function markWatched() {
    for (const tr of $("history").tBodies[0].rows) {
      const watched = !!current && tr.dataset.job === current.id;
      tr.classList.toggle("watched", watched);
      const button = tr.querySelector("button");
      if (button) button.textContent = watched ? "Watching" : "Watch";
    }
  }

  function describeJob(p) { return `${p.net.toUpperCase()}, ${describeParams(p)}`; }

  function describeParams(p) {
    const parts = [`${p.epochs} epochs`, `batch ${p.batch_size}`, `${p.optimizer} ${p.learning_rate}`, `hidden ${p.hidden}`];
    if (p.net !== "xor") {
      parts.push(p.data === "sample" ? "sample" : p.data === "mnist" || !p.data ? "full MNIST"
        : `dataset ${datasetName(p.data) || p.data}`);
    }
    if (p.augment) parts.push("augmented");
    return parts.join(", ");
  }

  function formatSeconds(s) {
    if (s === undefined || s === null) return "–";
    if (s < 9.95) return `${s.toFixed(1)} s`; // XOR trains in a fraction of a second
    if (s < 59.5) return `${Math.round(s)} s`;
    const minutes = Math.floor(s / 60), seconds = Math.round(s % 60);
    return seconds === 60 ? `${minutes + 1} min` : `${minutes} min ${seconds} s`;
  }

  socket.on("jobs", loadHistory); // a job was queued, started or finished
  socket.on("datasets_changed", loadDatasets); // the teacher created, imported or deleted one
  // drawings arrive all the time; the counts shown are read again when the teacher comes back to the form
  document.addEventListener("visibilitychange", () => { if (!document.hidden) loadDatasets(); });

  (async function start() {
    await loadNetworks();
    await loadDatasets();
    await refreshHistory();
    // Follow the class: the live job when the page opens, else the latest; then each job the teacher starts.
    stream.followClass({ show: (job) => watch(job.id, job.state), latest: true });
  })();
})();
