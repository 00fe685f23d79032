// The Share page's model list: the teacher uploads and deletes models; viewers see why they can't.
(() => {
  const $ = (id) => document.getElementById(id);
  const isTeacher = document.body.dataset.role === "teacher";
  const socket = io({ transports: ["websocket", "polling"] });

  document.querySelectorAll("[data-teacher-only]").forEach((el) => {
    el.disabled = !isTeacher;
    if (!isTeacher) el.title = "Only the teacher can upload or delete models";
  });

  function say(text, isError = false) {
    $("models-message").textContent = text;
    $("models-message").classList.toggle("error", isError);
  }

  async function loadModels() {
    const { models } = await (await fetch("/api/models")).json();
    const list = $("model-list");
    list.replaceChildren();
    for (const m of models) {
      const item = document.createElement("li");
      item.dataset.model = m.id;
      item.textContent = `${m.id} (${m.network}, ${m.source})`;
      if (m.source !== "shipped") {
        const remove = document.createElement("button");
        remove.type = "button";
        remove.textContent = "Delete";
        remove.disabled = !isTeacher;
        remove.addEventListener("click", () => deleteModel(m.id));
        item.append(" ", remove);
      }
      list.append(item);
    }
  }

  async function deleteModel(id) {
    const response = await fetch(`/api/models/${encodeURIComponent(id)}`, { method: "DELETE" });
    const body = await response.json();
    say(response.ok ? `Deleted ${id}.` : body.error, !response.ok);
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
    say(response.ok ? `Added ${body.model.id}: pick it on the Draw page.` : body.error, !response.ok);
  });

  socket.on("models", loadModels); // anyone's upload, delete or training refreshes the list
  loadModels();
})();
