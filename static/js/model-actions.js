// Model actions the teacher can't take back by accident: "use this model" asks first when it would make things worse.
// Needs confirm-dialog.js (window.ConfirmDialog) on the page before this file.
"use strict";

window.ModelActions = (() => {
  const LABELS = { mlp: "MLP", mlp2: "MLP2", cnn: "CNN", xor: "XOR" };

  // 0.934 -> "93.4%", 0.9935 -> "99.35%" (as webapp.core.modelstore.percent)
  function percent(fraction) {
    return `${(fraction * 100).toFixed(2).replace(/\.?0+$/, "")}%`;
  }

  function trainedOnSample(model) {
    const data = model.data;
    if (data && typeof data === "object") return Boolean(data.sample);
    if (data !== undefined && data !== null) return data === "sample";
    return Boolean(model.recipe && model.recipe.data === "sample");
  }

  function networkLabel(network) {
    return LABELS[network] || "uploaded";
  }

  // Why activating `model` deserves a second thought (an empty list: no reason).
  function reasons(model, models, active) {
    const found = [];
    const current = models.find((m) => m.id === active[model.network]);
    if (current && current.id !== model.id && typeof model.test_accuracy === "number"
        && typeof current.test_accuracy === "number" && model.test_accuracy < current.test_accuracy) {
      found.push(`This model scores ${percent(model.test_accuracy)}, below the active ${networkLabel(model.network)}'s `
        + `${percent(current.test_accuracy)}.`);
    }
    if (trainedOnSample(model)) {
      found.push("It was trained on the small bundled sample, not on full MNIST.");
    }
    return found;
  }

  async function errorText(response) {
    try { return (await response.json()).error || response.statusText; } catch { return response.statusText; }
  }

  // activate(modelId) -> Promise<{ok, message}>: asks first when needed, then makes it every student's model.
  async function activate(modelId) {
    try {
      const listing = await fetch("/api/models");
      if (!listing.ok) return { ok: false, message: await errorText(listing) };
      const { models, active } = await listing.json();
      const model = models.find((m) => m.id === modelId);
      if (!model) return { ok: false, message: `There is no model ${modelId} any more.` };
      const why = reasons(model, models, active);
      if (why.length) {
        const yes = await ConfirmDialog.ask({
          title: `Use “${model.name}”?`,
          message: `${why.join(" ")} Use it for every student?`,
          confirm: "Use it",
        });
        if (!yes) return { ok: false, cancelled: true, message: `Kept the model the class uses now.` };
      }
      const response = await fetch(`/api/models/${encodeURIComponent(modelId)}/activate`, { method: "POST" });
      if (!response.ok) return { ok: false, message: await errorText(response) };
      return { ok: true, message: `Every student now draws with “${model.name}”.` };
    } catch (error) {
      return { ok: false, message: "The server cannot be reached." };
    }
  }

  return { activate, percent, trainedOnSample, networkLabel };
})();
