// The Draw page's "Look inside" view: every layer of the chosen model for the current drawing (maps, strips, the
// outputs), the first convolution's kernels, what the MLPs' most active hidden units look for, and why the answer
// (a saliency map). It draws what /api/inspect answers; draw-page.js asks, at the prediction's rhythm, while open.
"use strict";

class LookInside {
  // root: the <details> element; onOpen: called when it opens (the page then sends the drawing).
  constructor(root, { onOpen } = {}) {
    this.root = root;
    this.$ = (selector) => root.querySelector(selector);
    this.layerList = this.$(".inside-layers");
    this.status = this.$(".inside-status");
    this.zoom = new MapZoom();
    this.sources = new Map(); // layer name -> what the large view draws; refreshed with each answer
    this.built = null; // the layer list's signature: rebuilt only when the model's layers change
    this.parts = new Map(); // layer name -> {grid, strip, kernels, units}
    this.weights = new Map(); // "model/layer" -> Promise of {kernel, kernelShape, bias}: fetched once per model
    this.asked = 0;
    root.addEventListener("toggle", () => { if (root.open && onOpen) onOpen(); });
    this.show(null);
  }

  get isOpen() { return this.root.open; }

  // answer: /api/inspect's JSON (or {error}), or null for a blank pad.
  show(answer) {
    const asked = ++this.asked;
    if (!answer || answer.error || answer.blank || !answer.probabilities) {
      this.status.textContent = answer && answer.error ? answer.error : "Draw a digit to look inside the network.";
      this.status.classList.toggle("error", Boolean(answer && answer.error));
      this.root.dataset.state = answer && answer.error ? "error" : "empty";
      if (!answer || !answer.error) this.clear();
      return;
    }
    this.status.classList.remove("error");
    const layers = answer.layers || [];
    const drawn = layers.filter((l) => l.data).length;
    this.status.textContent = `${answer.model}: ${layers.length} layers, ${drawn} drawn. `
      + `It reads ${LookInside.name(answer)} (${(answer.probabilities[LookInside.best(answer)] * 100).toFixed(1)}%).`;
    this.showWhy(answer);
    const outputs = this.showLayers(answer);
    this.showUnits(answer, outputs, asked).catch((err) => { // a model this view did not foresee: say so, draw the rest
      this.status.textContent += ` The units' pictures could not be drawn: ${err.message}.`;
    });
    this.zoom.refresh(this.sources);
    this.root.dataset.state = "shown";
    this.root.dataset.model = answer.model;
    this.root.dataset.digit = LookInside.name(answer);
  }

  // The answer's output: its index, and what it is called (a digit, or one of a letters model's labels).
  static best(answer) {
    const p = answer.probabilities;
    return p.reduce((best, value, i) => (value > p[best] ? i : best), 0);
  }

  static name(answer) {
    return answer.label ?? String(answer.digit ?? LookInside.best(answer));
  }

  clear() {
    this.layerList.replaceChildren();
    this.built = null;
    this.parts.clear();
    this.sources.clear();
    this.$(".why").hidden = true;
    delete this.root.dataset.model;
  }

  // -- why this answer: the saliency map ---------------------------------------------------------------------

  static explain(method) {
    const m = (method || "").toLowerCase().replace("×", "x");
    if (m.includes("integrated")) {
      return "The gradient of the answer's score, averaged along the way from a blank image to this drawing, "
        + "times each pixel's ink: the pixels' shares add up to how much the drawing raised the score.";
    }
    if (m.includes("gradient") && m.includes("input")) {
      return "Each pixel's ink times how fast the answer's score grows with that pixel (its gradient): "
        + "how much that pixel's ink adds to the score, to a first approximation.";
    }
    if (m.includes("occlusion")) {
      return "How much the answer's probability drops when a small patch of the drawing is hidden: "
        + "red where hiding it hurts the answer, blue where it helps.";
    }
    return "Each pixel's share of the push towards the answer.";
  }

  showWhy(answer) {
    const why = this.$(".why");
    const saliency = answer.saliency;
    why.hidden = !saliency;
    if (!saliency) return;
    let values;
    try {
      values = Float16.decode(saliency.data, Float16.size(saliency.shape));
    } catch (err) {
      why.hidden = true;
      return;
    }
    paintSaliency(this.$(".saliency"), answer.input, values);
    this.$(".why-title").textContent = `Why ${LookInside.name(answer)}?`;
    this.$(".why-method").textContent = `Method: ${saliency.method}` + (saliency.of ? `, of ${saliency.of}.` : ".");
    this.$(".why-words").textContent = LookInside.explain(saliency.method);
    this.$(".why-digit").textContent = LookInside.name(answer);
  }

  // -- every layer, in order -----------------------------------------------------------------------------------

  // [28, 28, 32] -> "28 × 28 × 32"; an unknown size is "?"; a layer with several outputs lists each shape.
  static shapeText(shape) {
    if (!Array.isArray(shape) || !shape.length) return "–";
    if (shape.some(Array.isArray)) return shape.map((s) => LookInside.shapeText(s)).join(" and ");
    return shape.map((n) => (n === null || n === undefined ? "?" : n)).join(" × ");
  }

  // Decodes every layer's output; returns name -> Float32Array for the layers that have one.
  showLayers(answer) {
    const layers = answer.layers || [];
    const signature = JSON.stringify([answer.model, layers.map((l) => [l.name, l.type, l.shape, Boolean(l.data)])]);
    if (signature !== this.built) this.build(answer, layers);
    const outputs = new Map();
    this.sources.clear();
    layers.forEach((layer, i) => {
      const part = this.parts.get(layer.name);
      if (!layer.data || !part) return;
      let values;
      try {
        values = Float16.decode(layer.data, Float16.size(layer.shape));
      } catch (err) {
        part.item.querySelector(".layer-skipped").hidden = false;
        part.item.querySelector(".layer-skipped").textContent = `Not drawn: ${err.message}.`;
        return;
      }
      outputs.set(layer.name, values);
      if (part.grid) {
        part.grid.show(values, layer.shape);
        this.addSource(layer.name, `${layer.name}: map`, part.grid);
      }
      if (part.strip) part.strip.show(values);
      if (part.kernels && answer.kernels && answer.kernels.layer === layer.name) {
        this.showKernels(part.kernels, answer.kernels, layer.name);
      }
      const drawn = part.grid || part.strip;
      if (drawn) part.item.dataset.sum = drawn.canvas.dataset.sum;
      part.item.dataset.index = String(i);
    });
    return outputs;
  }

  addSource(key, title, grid) {
    const shown = grid.shown;
    this.sources.set(key, {
      key, count: shown.channels, scale: shown.scale, signed: shown.signed,
      title: (index) => `${title} ${index + 1} of ${shown.channels}`, map: (index) => grid.map(index),
    });
  }

  showKernels(grid, kernels, layerName) {
    const [kh, kw, inputs, count] = kernels.shape;
    let all;
    try {
      all = Float16.decode(kernels.data, Float16.size(kernels.shape));
    } catch (err) {
      return;
    }
    // [kh][kw][inputs][count] -> [kh][kw][count] for the first input channel (a digit has only one)
    const first = new Float32Array(kh * kw * count);
    for (let p = 0; p < kh * kw; p++) {
      for (let k = 0; k < count; k++) first[p * count + k] = all[(p * inputs) * count + k];
    }
    grid.show(first, [kh, kw, count]);
    this.addSource(`${layerName}/kernels`, `${layerName}: kernel`, grid);
  }

  build(answer, layers) {
    this.built = JSON.stringify([answer.model, layers.map((l) => [l.name, l.type, l.shape, Boolean(l.data)])]);
    this.parts.clear();
    const items = layers.map((layer, i) => {
      const item = document.createElement("li");
      item.className = "layer";
      item.dataset.name = layer.name;
      item.dataset.type = layer.type;
      const rank = Array.isArray(layer.shape) && !layer.shape.some(Array.isArray) ? layer.shape.length : 0;
      const drawable = Boolean(layer.data) && rank >= 1 && rank <= 3;
      item.dataset.drawn = String(drawable);
      item.innerHTML = `<div class="layer-head"><span class="layer-name"></span> <span class="layer-type"></span>`
        + ` <span class="layer-shape"></span></div><p class="layer-words"></p><p class="layer-skipped note" hidden></p>`;
      item.querySelector(".layer-name").textContent = layer.name;
      item.querySelector(".layer-type").textContent = layer.type;
      item.querySelector(".layer-shape").textContent = LookInside.shapeText(layer.shape);
      item.querySelector(".layer-words").textContent = LayerWords.describe(layer.type, drawable);
      const part = { item };
      if (!drawable) {
        const skipped = item.querySelector(".layer-skipped");
        skipped.hidden = false;
        skipped.textContent = layer.data ? `Not drawn: its output has ${rank} axes.`
          : `Not drawn: ${layer.skipped || "the server sent no numbers for it"}.`;
      } else if (rank >= 2) {
        const withKernels = answer.kernels && answer.kernels.layer === layer.name;
        const pair = document.createElement("div");
        pair.className = withKernels ? "layer-pair" : "layer-maps";
        if (withKernels) {
          const block = this.block(`${answer.kernels.shape[3]} learned ${answer.kernels.shape[0]}×${answer.kernels.shape[1]} kernels`, "kernels");
          part.kernels = new FeatureMapGrid(block.querySelector("canvas"), {
            label: `${layer.name}'s kernels`, onPick: (k) => this.zoomInto(`${layer.name}/kernels`, k),
          });
          pair.append(block);
        }
        const channels = rank === 3 ? layer.shape[2] : 1;
        const maps = this.block(withKernels ? `the ${channels} maps they make` : `${channels} maps`, "maps");
        part.grid = new FeatureMapGrid(maps.querySelector("canvas"), {
          label: `${layer.name}'s maps`, onPick: (k) => this.zoomInto(layer.name, k),
        });
        pair.append(maps);
        item.append(pair);
      } else {
        const box = document.createElement("div");
        box.className = "layer-strip";
        box.innerHTML = `<canvas></canvas><p class="strip-readout note">Point at or tap a cell to read it.</p>`;
        const last = i === layers.length - 1 && layer.shape[0] === 10;
        const canvas = box.querySelector("canvas");
        canvas.className = "strip";
        part.strip = new ActivationStrip(canvas, box.querySelector(".strip-readout"), {
          label: last ? "The ten outputs" : `${layer.name}'s ${layer.shape[0]} numbers`,
          labels: last ? [...Array(10).keys()].map(String) : undefined,
        });
        item.append(box);
      }
      this.parts.set(layer.name, part);
      return item;
    });
    this.layerList.replaceChildren(...items);
    this.layerList.dataset.layers = String(layers.length);
  }

  block(title, kind) {
    const block = document.createElement("div");
    block.className = `map-block ${kind}`;
    block.innerHTML = `<p class="map-block-title"></p><div class="map-box"><canvas></canvas></div>`;
    block.querySelector(".map-block-title").textContent = title;
    return block;
  }

  zoomInto(key, index) {
    const source = this.sources.get(key);
    if (source) this.zoom.open(source, index);
  }

  // -- MLPs: what the most active hidden units look for -------------------------------------------------------

  // The Dense layers of a plain MLP, in order, when the model is one (Dense and Dropout after an optional Flatten).
  static denseChain(layers) {
    const passThrough = ["Dropout", "Flatten", "Reshape", "InputLayer"];
    if (!layers.every((l) => l.type === "Dense" || passThrough.includes(l.type))) return null;
    const dense = layers.filter((l) => l.type === "Dense");
    return dense.length >= 2 && dense.every((l) => l.data) ? dense : null;
  }

  async showUnits(answer, outputs, asked) {
    const chain = LookInside.denseChain(answer.layers || []);
    if (!chain) return;
    const first = chain[0];
    const part = this.parts.get(first.name);
    if (!part || !outputs.has(first.name)) return;
    if (!part.units) {
      part.units = document.createElement("div");
      part.units.className = "units";
      part.units.innerHTML = `<p class="units-title"></p><p class="units-words hint"></p><div class="unit-grid"></div>`;
      part.item.append(part.units);
    }
    const units = part.units;
    let weights;
    try {
      weights = await Promise.all(chain.map((layer) => this.layerWeights(answer.model, layer.name)));
    } catch (err) {
      units.querySelector(".units-title").textContent = `The weights could not be loaded: ${err.message}`;
      return;
    }
    if (asked !== this.asked) return; // a newer drawing has been shown meanwhile
    const hidden = outputs.get(first.name);
    const digit = LookInside.best(answer), named = LookInside.name(answer);
    const toward = LookInside.weightsToward(chain, weights, outputs, digit);
    const order = [...hidden.keys()].filter((j) => hidden[j] > 0).sort((a, b) => hidden[b] - hidden[a]).slice(0, 8);
    const kernel = weights[0];
    const inputs = kernel.kernelShape[0], count = kernel.kernelShape[1];
    units.querySelector(".units-title").textContent = order.length
      ? `What the ${order.length} most active of its ${count} units look for`
      : "No unit of this layer is active for this drawing.";
    units.querySelector(".units-words").textContent = inputs === 784
      ? `Each picture is one unit's 784 incoming weights, laid out as the 28×28 image: it is most active when ink `
        + `falls on blue and not on orange. Under it, how active it is now and what it adds to the score of ${named}`
        + (chain.length > 2 ? " (through the next layer, with the units that are on for this drawing)." : ".")
      : "";
    if (toward) {
      let total = 0;
      hidden.forEach((h, j) => { total += h * toward.weights[j]; });
      units.dataset.score = toward.score.toFixed(4);
      units.dataset.total = total.toFixed(4);
      units.querySelector(".units-words").textContent += ` The score of ${named} (before softmax) is `
        + `${toward.score.toFixed(2)}: all ${count} units together add ${total.toFixed(2)}, the biases the rest.`;
    }
    const grid = units.querySelector(".unit-grid");
    while (grid.children.length < order.length) {
      const figure = document.createElement("figure");
      figure.className = "unit";
      figure.innerHTML = `<canvas width="28" height="28" role="img"></canvas><figcaption></figcaption>`;
      grid.append(figure);
    }
    while (grid.children.length > order.length) grid.lastChild.remove();
    order.forEach((j, n) => {
      const figure = grid.children[n];
      const canvas = figure.querySelector("canvas");
      if (inputs === 784 && canvas.dataset.unit !== String(j)) {
        const column = new Float32Array(784);
        for (let i = 0; i < 784; i++) column[i] = kernel.kernel[i * count + j];
        paintWeightImage(canvas, column);
        canvas.dataset.unit = String(j);
      }
      canvas.hidden = inputs !== 784;
      canvas.setAttribute("aria-label", `What unit ${j + 1} looks for: its weights from each of the 784 pixels`);
      const contribution = toward ? hidden[j] * toward.weights[j] : null;
      figure.dataset.unit = String(j);
      figure.dataset.contribution = contribution === null ? "" : contribution.toFixed(4);
      figure.querySelector("figcaption").innerHTML = `<b>unit ${j + 1}</b><br>active ${MapZoom.format(hidden[j])}`
        + (contribution === null ? "" : `<br><span class="${contribution >= 0 ? "plus" : "minus"}">`
          + `${contribution >= 0 ? "+" : "−"}${Math.abs(contribution).toFixed(2)} for ${digit}</span>`);
    });
    units.dataset.units = String(order.length);
    units.dataset.sum = part.item.dataset.sum; // which drawing these units are of (tests wait for the last one)
  }

  // The weight from each unit of the first Dense layer toward `digit`'s score (the last Dense layer's output before
  // softmax), through the layers between with the ReLU units that are off for this drawing left out. With ReLU this is
  // exact: the score is the sum of unit x weight, plus what the biases add. Also the score itself.
  static weightsToward(chain, weights, outputs, digit) {
    const last = weights[weights.length - 1];
    let toward = new Float32Array(last.kernelShape[1]);
    toward[digit] = 1;
    for (let L = chain.length - 1; L >= 1; L--) {
      const { kernel, kernelShape: [inputs, count] } = weights[L];
      const back = new Float32Array(inputs);
      for (let i = 0; i < inputs; i++) {
        let sum = 0;
        for (let o = 0; o < count; o++) if (toward[o]) sum += kernel[i * count + o] * toward[o];
        back[i] = sum;
      }
      const below = outputs.get(chain[L - 1].name);
      if (L - 1 >= 1 && below && below.every((v) => v >= 0)) {
        for (let i = 0; i < inputs; i++) if (!(below[i] > 0)) back[i] = 0; // a ReLU unit that is off passes nothing
      }
      toward = back;
    }
    const beforeLast = outputs.get(chain[chain.length - 2].name);
    const { kernel, kernelShape: [inputs, count], bias } = last;
    let score = bias ? bias[digit] : 0;
    for (let i = 0; i < inputs; i++) score += beforeLast[i] * kernel[i * count + digit];
    return { weights: toward, score };
  }

  layerWeights(model, layer) {
    const key = `${model}/${layer}`;
    if (!this.weights.has(key)) {
      const url = `/api/models/${encodeURIComponent(model)}/weights?${new URLSearchParams({ layer })}`;
      const loading = fetch(url).then(async (response) => {
        const body = await response.json().catch(() => ({}));
        if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
        const kernel = body.weights.find((w) => w.name === "kernel") || body.weights[0];
        const bias = body.weights.find((w) => w.name === "bias");
        return {
          kernel: Float16.decode(kernel.data, Float16.size(kernel.shape)),
          kernelShape: kernel.shape,
          bias: bias ? Float16.decode(bias.data, Float16.size(bias.shape)) : null,
        };
      });
      loading.catch(() => this.weights.delete(key)); // a failure is asked again next time
      this.weights.set(key, loading);
    }
    return this.weights.get(key);
  }
}
