// The class gallery (/data): choose a dataset, see its drawings by label as they arrive (watch_dataset and the
// drawing_* events), with counts per label and per browser id. The teacher also creates and imports datasets,
// starts and ends a collection round, relabels, deletes and clears drawings, and exports the file.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const isTeacher = document.body.dataset.role === "teacher";
  const socket = io({ transports: ["websocket", "polling"] });
  const PAGE = 500; // drawings per request: the API's largest page
  const gallery = new GalleryGrid($("gallery"), { onOpen: openDrawing });
  let datasets = [];
  let current = null; // the dataset shown (DATASET from the API)
  let watching = null; // the dataset id whose room this page is in
  let round = null;
  let loadToken = 0; // a newer choice makes an older load stop filling the gallery
  let opened = null; // the drawing in the dialog

  const api = async (url, options = {}) => {
    try {
      const response = await fetch(url, options);
      const body = await response.json().catch(() => ({}));
      return response.ok ? body : { error: body.error || `error ${response.status}`, status: response.status };
    } catch (err) {
      return { error: "the server cannot be reached" };
    }
  };
  const json = (method, body) => ({ method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const path = (id) => `/api/datasets/${encodeURIComponent(id)}`;

  function showError(id, message) {
    $(id).hidden = !message;
    $(id).textContent = message || "";
  }

  // -- the datasets ---------------------------------------------------------------

  async function loadDatasets(prefer = null) {
    const answer = await api("/api/datasets");
    if (answer.error) { showError("data-error", answer.error); return; }
    datasets = answer.datasets || [];
    const select = $("dataset");
    const wanted = prefer || (current && current.id) || new URLSearchParams(location.search).get("dataset")
      || (round && round.dataset);
    select.replaceChildren(...datasets.map((d) => new Option(`${d.name} (${d.total})`, d.id)));
    const id = datasets.some((d) => d.id === wanted) ? wanted : datasets.length ? datasets[0].id : "";
    select.value = id;
    if (!current || current.id !== id) await choose(id);
    else showFacts();
  }

  $("dataset").addEventListener("change", () => choose($("dataset").value));

  async function choose(id) {
    const token = ++loadToken;
    if (watching && watching !== id) socket.emit("unwatch_dataset", { dataset: watching });
    watching = null;
    current = datasets.find((d) => d.id === id) || null;
    if (!current) { gallery.reset([]); showFacts(); showCounts(); return; }
    const url = new URL(location.href);
    url.searchParams.set("dataset", id);
    history.replaceState(null, "", url);
    gallery.reset(current.labels);
    showFacts();
    showCounts();
    watch(id); // first join the room, then read what is there: nothing falls between the two
    let after = null;
    for (;;) {
      const query = new URLSearchParams({ limit: PAGE });
      if (after !== null) query.set("after", after);
      const answer = await api(`${path(id)}/drawings?${query}`);
      if (token !== loadToken) return;
      if (answer.error) { showError("data-error", answer.error); break; }
      answer.drawings.forEach((d) => gallery.add(d));
      if (answer.drawings.length < PAGE) break;
      after = answer.drawings[answer.drawings.length - 1].id;
    }
    showCounts();
  }

  function watch(id) {
    if (!socket.connected) return; // "connect" watches it
    watching = id;
    socket.emit("watch_dataset", { dataset: id }, (answer) => {
      if (answer && answer.dataset && current && answer.dataset.id === current.id) {
        current = { ...current, ...answer.dataset };
        showFacts();
        showCounts();
      }
    });
  }

  function showFacts() {
    const d = current;
    $("dataset-facts").textContent = !d ? "No dataset yet."
      : `${d.labels.length} labels: ${d.labels.slice(0, 12).join(" ")}${d.labels.length > 12 ? " …" : ""} · `
        + `${d.total} drawing${d.total === 1 ? "" : "s"}${d.builtin ? " · built in: the Draw page's “No, it was a…” fills it" : ""}`;
    const option = [...$("dataset").options].find((o) => d && o.value === d.id);
    if (option) option.textContent = `${d.name} (${d.total})`;
    $("gallery-count").textContent = d ? `(${gallery.size} shown)` : "";
    if (!isTeacher) return;
    $("export").hidden = !d;
    if (d) $("export").href = `${path(d.id)}/export`;
    $("clear-dataset").disabled = !d || !d.total;
    $("delete-dataset").hidden = !d || d.builtin;
    showRound();
  }

  function showCounts() {
    const d = current;
    const counts = (d && d.counts) || {};
    const most = Math.max(1, ...Object.values(counts));
    $("label-counts").replaceChildren(...(d ? d.labels : []).map((label) => {
      const li = document.createElement("li");
      li.dataset.label = label;
      const name = document.createElement("span");
      name.className = "count-label";
      name.textContent = label;
      const bar = document.createElement("span");
      bar.className = "count-bar";
      bar.append(document.createElement("span"));
      bar.firstChild.style.width = `${(100 * (counts[label] || 0)) / most}%`;
      const n = document.createElement("span");
      n.className = "count-value";
      n.textContent = counts[label] || 0;
      li.append(name, bar, n);
      return li;
    }));
    const me = ClientId.get();
    const clients = gallery.byClient();
    $("client-counts").replaceChildren(...(clients.length ? clients : [["none", 0]]).map(([client, n]) => {
      const li = document.createElement("li");
      li.dataset.client = client;
      li.textContent = client === "none" ? "none yet"
        : `${client ? ClientId.short(client) : "imported"}${client === me ? " (you)" : ""}: ${n}`;
      li.classList.toggle("me", client === me);
      return li;
    }));
    $("gallery-count").textContent = d ? `(${gallery.size} shown)` : "";
  }

  // Counts from an event or an answer: they are the server's, so they win over what the page counted.
  function setCounts(counts, total) {
    if (!current || !counts) return;
    current = { ...current, counts, total: total ?? Object.values(counts).reduce((a, b) => a + b, 0) };
    const listed = datasets.find((d) => d.id === current.id);
    if (listed) Object.assign(listed, { counts: current.counts, total: current.total });
    showFacts();
    showCounts();
  }

  const mine = (message) => message && current && message.dataset === current.id;
  socket.on("drawing_added", (m) => { if (mine(m)) { gallery.add(m.drawing); setCounts(m.counts, m.total); } });
  socket.on("drawing_changed", (m) => { if (mine(m)) { gallery.change(m.drawing); setCounts(m.counts); } });
  socket.on("drawing_deleted", (m) => { if (mine(m)) { gallery.remove(m.id); setCounts(m.counts); } });
  socket.on("dataset_cleared", (m) => { if (mine(m)) { gallery.reset(current.labels); setCounts(m.counts, 0); } });
  socket.on("datasets_changed", () => loadDatasets());
  let everConnected = false;
  socket.on("connect", () => { // join the room; after a reconnect, read again what the page may have missed
    const again = everConnected;
    everConnected = true;
    if (current && (again || watching !== current.id)) choose(current.id);
  });

  // -- the round -------------------------------------------------------------------

  async function loadRound() {
    const answer = await api("/api/round");
    if (!answer.error) { round = answer.round; showRound(); }
  }

  function showRound() {
    const text = !round ? "No collection round now."
      : `Collection round on “${round.name || round.dataset}”: every Draw page asks for its labels.`;
    $("round-state").textContent = text;
    $("round-state").classList.toggle("on", !!round);
    if (!isTeacher) return;
    const here = !!round && !!current && round.dataset === current.id;
    $("round-end").hidden = !round;
    $("round-start").hidden = here;
    $("round-start").disabled = !current;
    $("round-start").textContent = round ? "Start a round on this one" : "Start a round";
  }

  socket.on("round", (m) => {
    round = (m && m.round) || null;
    showRound();
    if (round && current && round.dataset === current.id && round.counts) setCounts(round.counts);
  });

  // -- the teacher's controls -------------------------------------------------------

  if (isTeacher) {
    $("round-start").addEventListener("click", async () => {
      showError("data-error", null);
      const answer = await api("/api/round", json("POST", { dataset: current.id }));
      if (answer.error) showError("data-error", answer.error);
      else { round = answer.round; showRound(); }
    });
    $("round-end").addEventListener("click", async () => {
      showError("data-error", null);
      const answer = await api("/api/round", { method: "DELETE" });
      if (answer.error) showError("data-error", answer.error);
      else { round = null; showRound(); }
    });
    $("clear-dataset").addEventListener("click", async () => {
      const d = current;
      const yes = await ConfirmDialog.ask({
        title: `Clear “${d.name}”?`, confirm: "Clear",
        message: `All ${d.total} drawings go, for good. The dataset and its labels stay.`,
      });
      if (!yes) return;
      const answer = await api(`${path(d.id)}/drawings`, { method: "DELETE" });
      if (answer.error) showError("data-error", answer.error);
      else if (current && current.id === d.id) { gallery.reset(d.labels); setCounts(answer.counts, 0); }
    });
    $("delete-dataset").addEventListener("click", async () => {
      const d = current;
      const yes = await ConfirmDialog.ask({
        title: `Delete “${d.name}”?`, confirm: "Delete",
        message: `The dataset and its ${d.total} drawings go, for good. Models trained on it stay.`,
      });
      if (!yes) return;
      const answer = await api(path(d.id), { method: "DELETE" });
      if (answer.error) { showError("data-error", answer.error); return; }
      current = null;
      await loadDatasets();
    });
    $("create-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      showError("create-error", null);
      const labels = $("new-labels").value.split(/[\s,]+/).filter(Boolean);
      $("create").disabled = true;
      const answer = await api("/api/datasets", json("POST", { name: $("new-name").value.trim(), labels }));
      $("create").disabled = false;
      if (answer.error) { showError("create-error", answer.error); return; }
      $("create-form").reset();
      await loadDatasets(answer.dataset.id);
    });
    $("import-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      showError("import-error", null);
      const form = new FormData();
      form.append("file", $("import-file").files[0]);
      if ($("import-name").value.trim()) form.append("name", $("import-name").value.trim());
      $("import").disabled = true;
      const answer = await api("/api/datasets/import", { method: "POST", body: form });
      $("import").disabled = false;
      if (answer.error) { showError("import-error", answer.error); return; }
      $("import-form").reset();
      await loadDatasets(answer.dataset.id);
    });
  }

  // -- one drawing, large -----------------------------------------------------------

  function openDrawing(drawing) {
    opened = drawing;
    const dialog = $("drawing-dialog");
    $("drawing-title").textContent = `${drawing.label}`;
    $("drawing-image").hidden = !drawing.image;
    if (drawing.image) $("drawing-image").src = drawing.image;
    paintDigitImage($("drawing-input"), drawing.input);
    const facts = [drawing.client ? `by ${ClientId.short(drawing.client)}` : "imported from a file"];
    if (drawing.guess !== null && drawing.guess !== undefined && drawing.guess !== "") facts.push(`the model read ${drawing.guess}`);
    if (drawing.created) facts.push(new Date(drawing.created * 1000).toLocaleString());
    $("drawing-facts").textContent = facts.join(" · ");
    if (isTeacher) {
      showError("drawing-error", null);
      $("drawing-label").replaceChildren(...current.labels.map((l) => new Option(l, l)));
      $("drawing-label").value = drawing.label;
    }
    dialog.showModal();
  }

  if (isTeacher) {
    $("drawing-save").addEventListener("click", async () => {
      const drawing = opened;
      const label = $("drawing-label").value;
      if (!drawing || label === drawing.label) { $("drawing-dialog").close(); return; }
      const answer = await api(`${path(drawing.dataset || current.id)}/drawings/${encodeURIComponent(drawing.id)}`,
        json("PATCH", { label }));
      if (answer.error) { showError("drawing-error", answer.error); return; }
      gallery.change(answer.drawing);
      setCounts(answer.counts);
      $("drawing-dialog").close();
    });
    $("drawing-delete").addEventListener("click", async () => {
      const drawing = opened;
      if (!drawing) return;
      const answer = await api(`${path(drawing.dataset || current.id)}/drawings/${encodeURIComponent(drawing.id)}`,
        { method: "DELETE" });
      if (answer.error) { showError("drawing-error", answer.error); return; }
      gallery.remove(drawing.id);
      setCounts(answer.counts);
      $("drawing-dialog").close();
    });
  }

  (async function start() {
    await loadRound();
    await loadDatasets();
  })();
})();
