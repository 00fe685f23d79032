// The training page: start a job (teacher), watch any job live, see its result, browse the history.
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
  let current = null; // {id, state, model}

  // -- the form ------------------------------------------------------------

  async function loadNetworks() {
    recipes = await (await fetch("/api/networks")).json();
    $("optimizer").replaceChildren(...recipes.optimizers.map((name) => new Option(name, name)));
    fillDefaults();
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
      params.data = document.querySelector("input[name=data]:checked").value;
      params.augment = $("augment").checked;
    }
    return params;
  }

  $("net").addEventListener("change", fillDefaults);
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
      watch(answer.id);
      loadHistory();
    } catch (err) {
      showFormError("the server cannot be reached");
    } finally {
      $("start").disabled = !isTeacher;
    }
  });

  function showFormError(message, field) {
    $("form-error").hidden = !message;
    $("form-error").textContent = message || "";
    document.querySelectorAll(".train-form [aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    if (field && $(field)) $(field).setAttribute("aria-invalid", "true");
  }

  if (!isTeacher) {
    $("start").disabled = true;
    $("viewer-note").hidden = false;
  }

  // -- one job, live ---------------------------------------------------------

  function watch(jobId) {
    current = { id: jobId, state: null, model: null };
    $("job-title").textContent = `Job ${jobId}`;
    setState("…");
    for (const id of ["job-device", "job-data"]) $(id).textContent = "–";
    $("sample-note").hidden = true;
    $("job-error").hidden = true;
    $("result").hidden = true;
    $("progress").value = 0;
    for (const id of ["progress-epoch", "progress-batch", "progress-eta", "progress-rate"]) $(id).textContent = "";
    lossChart.clear();
    accuracyChart.clear();
    markWatched();
    stream.follow(jobId);
  }

  function setState(state) {
    current.state = state;
    const badge = $("job-state");
    badge.textContent = state === "starting" ? "starting (loading TensorFlow)" : state;
    badge.className = `state-badge state-${state}`;
    const live = ["queued", "starting", "running"].includes(state);
    $("cancel").disabled = !(live && isTeacher);
    $("cancel").title = isTeacher ? "" : "Only the teacher can cancel training";
  }

  function showEvent(event) {
    if (event.type === "error") { showJobError(event.error); return; }
    if (event.type === "state") {
      setState(event.state);
      if (event.device) $("job-device").textContent = event.device;
      if (event.data) $("job-data").textContent = event.data === "sample" ? "bundled sample" : event.data;
      $("sample-note").hidden = event.data !== "sample";
      if (event.stage) $("progress-epoch").textContent = `Preparing: ${event.stage}…`;
      if (event.params) $("job-title").textContent = `Job ${event.job}: ${describeParams(event.params)}`;
    } else if (event.type === "batch") {
      current.sawBatches = true;
      const x = event.epoch - 1 + event.batch / event.batches;
      lossChart.add(0, x, event.loss);
      accuracyChart.add(0, x, event.accuracy);
      $("progress").value = event.batch / event.batches;
      $("progress-epoch").textContent = `Epoch ${event.epoch} of ${event.epochs}`;
      $("progress-batch").textContent = `· batch ${event.batch} of ${event.batches}`;
      $("progress-eta").textContent = `ETA ${formatSeconds(event.eta_s)}`;
      $("progress-rate").textContent = `· ${Math.round(event.samples_per_s).toLocaleString()} samples/s`;
    } else if (event.type === "epoch") {
      const logs = event.logs || {};
      lossChart.add(1, event.epoch, logs.loss);
      lossChart.add(2, event.epoch, logs.val_loss);
      accuracyChart.add(1, event.epoch, logs.accuracy);
      accuracyChart.add(2, event.epoch, logs.val_accuracy);
      $("progress-epoch").textContent = `Epoch ${event.epoch} of ${event.epochs} done`;
      // XOR streams epochs only (a batch is one example): the bar then tracks the whole run.
      $("progress").value = current.sawBatches ? 1 : event.epoch / event.epochs;
    } else if (event.type === "done") {
      setState(event.state);
      if (event.error) showJobError(event.error);
      if (event.state === "succeeded") {
        $("progress").value = 1;
        $("progress-eta").textContent = "";
        showResult(event.result || {});
      }
      loadHistory();
    }
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
    $("result-facts").textContent = facts.join(", ");
    current.model = result.model || null;
    const digitModel = current.model && result.confusion;
    $("use-model").hidden = !digitModel;
    $("use-model").disabled = !isTeacher;
    $("use-note").textContent = !digitModel ? "" : isTeacher
      ? "Makes the Draw page predict with this model." : "Only the teacher can choose the model the Draw page uses.";
    if (result.predictions) { // XOR: the four inputs and what the net answers
      facts.push(result.success ? "XOR solved" : "XOR not solved: try another seed or more hidden neurons");
      $("result-facts").textContent = facts.join(", ") + ". " + result.predictions.map(
        (p) => `${p.input.join(" xor ")} → ${p.output.toFixed(3)}`).join("; ");
    }
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

  $("cancel").addEventListener("click", async () => {
    if (!current) return;
    $("cancel").disabled = true;
    const response = await fetch(`/api/jobs/${current.id}`, { method: "DELETE" });
    if (!response.ok) showJobError((await response.json()).error);
  });

  $("use-model").addEventListener("click", async () => {
    if (!current || !current.model) return;
    const response = await fetch(`/api/models/${encodeURIComponent(current.model)}/activate`, { method: "POST" });
    const answer = await response.json();
    $("use-note").textContent = response.ok ? `The Draw page now predicts with ${current.model}.` : answer.error;
  });

  // -- history ---------------------------------------------------------------

  let historyTimer = null;
  function loadHistory() { // debounced: a burst of job updates makes one request
    clearTimeout(historyTimer);
    historyTimer = setTimeout(refreshHistory, 200);
  }

  async function refreshHistory() {
    const { jobs } = await (await fetch("/api/jobs")).json();
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
      for (const text of cells) tr.insertCell().textContent = text;
      tr.cells[3].className = `state-${job.state}`;
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Watch";
      button.addEventListener("click", () => watch(job.id));
      tr.insertCell().appendChild(button);
      return tr;
    });
    $("history").tBodies[0].replaceChildren(...rows);
    markWatched();
    return jobs;
  }

  function markWatched() {
    for (const tr of $("history").tBodies[0].rows) tr.classList.toggle("watched", !!current && tr.dataset.job === current.id);
  }

  function describeParams(p) {
    const parts = [`${p.epochs} epochs`, `batch ${p.batch_size}`, `${p.optimizer} ${p.learning_rate}`, `hidden ${p.hidden}`];
    if (p.net !== "xor") parts.push(p.data === "sample" ? "sample data" : "MNIST");
    if (p.augment) parts.push("augmented");
    return parts.join(", ");
  }

  function formatSeconds(s) {
    if (s === undefined || s === null) return "–";
    if (s < 60) return `${Math.round(s)} s`;
    return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  }

  socket.on("jobs", loadHistory); // a job was queued, started or finished

  (async function start() {
    await loadNetworks();
    const jobs = await refreshHistory();
    // Show what is happening now: a live job first, else the latest one.
    const live = jobs.find((j) => ["running", "starting"].includes(j.state)) || jobs.find((j) => j.state === "queued");
    const shown = live || jobs[0];
    if (shown && !current) watch(shown.id);
  })();
})();
