// The Share page's models: which one each network uses, and the list the teacher uploads, renames, uses and
// deletes, and that people download (as NEURONLAB_DOWNLOADS allows: the server has the last word).
// Needs confirm-dialog.js and model-actions.js before this file.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const isTeacher = document.body.dataset.role === "teacher";
  const socket = io({ transports: ["websocket", "polling"] });
  const TEACHER_ONLY = "Only the teacher can change models";
  const DIGIT_NETWORKS = ["mlp", "mlp2", "cnn"];
  const { percent, networkLabel } = ModelActions;
  const downloads = document.querySelector("[data-downloads]").dataset.downloads; // shared | everyone | teacher
  const FORMATS = ["keras", "h5"];

  document.querySelectorAll("[data-teacher-only]").forEach((el) => {
    el.disabled = !isTeacher;
    if (!isTeacher) el.title = TEACHER_ONLY;
  });

  function say(text, isError = false) {
    $("models-message").textContent = text;
    $("models-message").classList.toggle("error", isError);
  }

  function element(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function button(text, onClick, extraClass) {
    const b = element("button", extraClass, text);
    b.type = "button";
    b.disabled = !isTeacher;
    if (!isTeacher) b.title = TEACHER_ONLY;
    b.addEventListener("click", onClick);
    return b;
  }

  function details(m) {
    const parts = [networkLabel(m.network), m.source];
    if (typeof m.test_accuracy === "number") parts.push(percent(m.test_accuracy));
    const date = m.source !== "shipped" && m.date && new Date(m.date.replace(/([+-]\d\d)(\d\d)$/, "$1:$2"));
    if (date && !Number.isNaN(date.getTime())) { // when it was made, to tell look-alike runs apart
      parts.push(date.toLocaleString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }));
    }
    return parts.join(" · ");
  }

  function badge(text, kind) {
    return element("span", `badge badge-${kind}`, text);
  }

  function showActive(models, active) {
    const byId = new Map(models.map((m) => [m.id, m]));
    const list = $("active-models");
    list.replaceChildren();
    const networks = DIGIT_NETWORKS.filter((n) => active[n]);
    if (active.default && !networks.some((n) => active[n] === active.default)) networks.push(null); // an uploaded default
    for (const network of networks) {
      const id = network ? active[network] : active.default;
      const m = byId.get(id) || { id, name: id, network };
      const item = element("li");
      item.dataset.network = network || m.network;
      item.dataset.model = id;
      item.append(element("span", "active-network", networkLabel(m.network)),
        element("span", "active-name", m.name));
      const accuracy = typeof m.test_accuracy === "number" ? percent(m.test_accuracy) : "no test score";
      item.append(element("span", "active-accuracy", accuracy));
      if (id === active.default) item.append(badge("default", "default"));
      list.append(item);
    }
    if (!networks.length) list.append(element("li", "hint", "No digit model yet: train one on the Train page."));
  }

  function showList(models, active) {
    const list = $("model-list");
    list.replaceChildren();
    for (const m of models) {
      const item = element("li", "model-item");
      item.dataset.model = m.id;
      const title = element("p", "model-title");
      title.append(element("span", "model-name", m.name));
      if (m.id === active.default) title.append(" ", badge("default", "default"));
      else if (m.id === active[m.network]) title.append(" ", badge(`the class's ${networkLabel(m.network)}`, "active"));
      item.append(title, element("p", "model-details", details(m)));

      const actions = element("div", "row model-actions");
      if (m.network !== "xor" && m.id !== active.default) {
        actions.append(button("Use this model", () => useModel(m), "use"));
      }
      actions.append(button("Rename", () => startRename(item, m), "rename"));
      if (m.source !== "shipped") actions.append(button("Delete", () => deleteModel(m), "delete"));
      const take = element("div", "row model-downloads");
      take.append(...downloadLinks(m, active));
      item.append(actions, take);
      list.append(item);
    }
  }

  function mayDownload(m, active) { // the server's rule (webapp/web/downloads.py), to show only links that work
    if (isTeacher || downloads === "everyone") return true;
    return downloads === "shared" && (m.source === "shipped" || Object.values(active).includes(m.id));
  }

  function downloadLinks(m, active) {
    if (!mayDownload(m, active)) {
      const withheld = element("button", "download", "Download");
      Object.assign(withheld, { type: "button", disabled: true, title: "Only the teacher can download this model" });
      return [withheld];
    }
    return FORMATS.map((format, i) => {
      const link = element("a", "button download", i === 0 ? `Download .${format}` : `.${format}`);
      link.href = `/api/models/${encodeURIComponent(m.id)}/download?format=${format}`;
      link.download = ""; // save it under the server's name for it, made from the model's name
      link.dataset.format = format;
      link.setAttribute("aria-label", `Download ${m.name} as .${format}`);
      return link;
    });
  }

  async function loadModels() {
    let listing;
    try {
      listing = await (await fetch("/api/models")).json();
    } catch {
      return say("The server cannot be reached.", true);
    }
    showActive(listing.models, listing.active);
    showList(listing.models, listing.active);
  }

  async function useModel(m) {
    const { ok, message } = await ModelActions.activate(m.id);
    say(message, !ok);
  }

  function startRename(item, m) {
    if (item.querySelector(".rename-form")) return;
    const form = element("form", "row rename-form");
    const inputId = `rename-${m.id}`;
    const label = element("label", "visually-hidden", `New name for ${m.name}`);
    label.htmlFor = inputId;
    const input = element("input");
    Object.assign(input, { id: inputId, type: "text", value: m.name, maxLength: 80, required: true });
    const save = element("button", "primary", "Save");
    save.type = "submit";
    const cancel = element("button", "", "Cancel");
    cancel.type = "button";
    cancel.addEventListener("click", () => { form.remove(); item.querySelector(".rename").focus(); });
    form.append(label, input, save, cancel);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const response = await fetch(`/api/models/${encodeURIComponent(m.id)}`, {
        method: "PATCH",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: input.value }),
      });
      const body = await response.json();
      if (!response.ok) return say(body.error, true);
      say(`Renamed to “${body.model.name}”.`);
      form.remove(); // the "models" event redraws the list with the new name
    });
    item.append(form);
    input.focus();
    input.select();
  }

  async function deleteModel(m) {
    const yes = await ConfirmDialog.ask({
      title: `Delete “${m.name}”?`,
      message: "Its file is removed from this computer; students using it go back to the class's model. This cannot be undone.",
      confirm: "Delete",
    });
    if (!yes) return say("Nothing was deleted.");
    const response = await fetch(`/api/models/${encodeURIComponent(m.id)}`, { method: "DELETE" });
    const body = await response.json();
    say(response.ok ? `Deleted “${m.name}”.` : body.error, !response.ok);
  }

  $("model-upload").addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("model-file").files[0];
    if (!file) return say("Choose a .keras or .h5 file first.", true);
    const form = new FormData();
    form.append("file", file);
    say(`Uploading ${file.name}…`);
    const response = await fetch("/api/models", { method: "POST", body: form });
    const body = await response.json();
    say(response.ok ? `Added “${body.model.name}”: pick it on the Draw page.` : body.error, !response.ok);
  });

  socket.on("models", loadModels); // anyone's upload, rename, delete, activation or training refreshes the lists
  loadModels();
})();
