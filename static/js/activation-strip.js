// A row of numbers (Flatten, a Dense layer's units) as a strip of small cells, darker for larger, wrapped to the
// width of its box; the value under the pointer or finger is read out beside it. Ten or fewer numbers (the outputs)
// are drawn as labelled bars instead.
"use strict";

class ActivationStrip {
  // options: {label, labels (for bars: one per value, e.g. the digits)}
  constructor(canvas, readout, options = {}) {
    this.canvas = canvas;
    this.readout = readout;
    this.options = options;
    this.values = null;
    this.layout = null;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", options.label || "Activations");
    const point = (e) => this.point(e);
    canvas.addEventListener("pointermove", point);
    canvas.addEventListener("pointerdown", point);
    ResizeRedraw.follow(canvas.parentElement, () => this.redraw());
  }

  show(values) {
    this.values = values;
    let sum = 0;
    for (const v of values) if (Number.isFinite(v)) sum += v;
    this.canvas.dataset.units = String(values.length);
    this.canvas.dataset.sum = sum.toFixed(4);
    this.redraw();
    if (this.readout && this.pointed !== undefined) this.say(this.pointed);
  }

  get bars() { return this.values && this.values.length <= 16; }

  redraw() {
    const values = this.values;
    const box = this.canvas.parentElement.clientWidth;
    if (!values || box === 0) return;
    let max = 0;
    for (const v of values) if (Number.isFinite(v)) max = Math.max(max, Math.abs(v));
    max = max || 1;
    const ratio = window.devicePixelRatio || 1;
    let cssWidth, cssHeight;
    if (this.bars) {
      const slot = Math.min(36, Math.floor(box / values.length));
      cssWidth = slot * values.length;
      cssHeight = 76;
      this.layout = { slot };
    } else {
      const cell = values.length > 600 ? 7 : 9;
      const columns = Math.max(1, Math.min(values.length, Math.floor(box / cell)));
      cssWidth = columns * cell;
      cssHeight = Math.ceil(values.length / columns) * cell;
      this.layout = { cell, columns };
    }
    this.canvas.width = Math.round(cssWidth * ratio);
    this.canvas.height = Math.round(cssHeight * ratio);
    this.canvas.style.width = `${cssWidth}px`;
    this.canvas.style.height = `${cssHeight}px`;
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, cssWidth, cssHeight);
    if (this.bars) {
      const { slot } = this.layout;
      const best = values.indexOf(Math.max(...values));
      const labels = this.options.labels || values.map((_, i) => String(i));
      ctx.font = "12px system-ui, sans-serif";
      ctx.textAlign = "center";
      values.forEach((v, i) => {
        const height = Math.max(0, v / max) * (cssHeight - 18);
        ctx.fillStyle = i === best ? "#2f6fed" : "#9db4e8";
        ctx.fillRect(i * slot + 3, cssHeight - 16 - height, slot - 6, height);
        ctx.fillStyle = "#1d2330";
        ctx.fillText(labels[i], i * slot + slot / 2, cssHeight - 3);
      });
    } else {
      const { cell, columns } = this.layout;
      values.forEach((v, i) => {
        const shade = FeatureMapGrid.shade(v, max, false);
        ctx.fillStyle = v < 0 ? "#f5c6a5" : `rgb(${shade},${shade},${shade})`; // a negative number (no ReLU) in orange
        ctx.fillRect((i % columns) * cell, Math.floor(i / columns) * cell, cell - 1, cell - 1);
      });
    }
  }

  point(event) {
    if (!this.layout || !this.values) return;
    const rect = this.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left, y = event.clientY - rect.top;
    const index = this.bars
      ? Math.floor(x / this.layout.slot)
      : Math.floor(y / this.layout.cell) * this.layout.columns + Math.floor(x / this.layout.cell);
    if (index >= 0 && index < this.values.length) { this.pointed = index; this.say(index); }
  }

  say(index) {
    if (!this.readout || !this.values || index >= this.values.length) return;
    const labels = this.options.labels;
    const name = labels ? labels[index] : `unit ${index + 1}`;
    this.readout.textContent = `${name}: ${MapZoom.format(this.values[index])}`;
  }
}
