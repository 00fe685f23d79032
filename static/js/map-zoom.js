// One map shown large in a dialog, with the value under the pointer (hover) or finger (tap), and the maps of its
// layer one after another. The view hands it a source, so a new drawing refreshes what is open.
"use strict";

class MapZoom {
  constructor() {
    const dialog = document.createElement("dialog");
    dialog.className = "map-zoom";
    dialog.setAttribute("aria-labelledby", "map-zoom-title");
    dialog.innerHTML = `<h2 id="map-zoom-title"></h2>
      <canvas class="map-zoom-canvas" role="img" aria-label="The map, large"></canvas>
      <p class="map-zoom-value" aria-live="polite"></p>
      <div class="row map-zoom-buttons">
        <button type="button" data-step="-1" aria-label="Previous map">◀</button>
        <span class="map-zoom-count"></span>
        <button type="button" data-step="1" aria-label="Next map">▶</button>
        <button type="button" class="map-zoom-close">Close</button>
      </div>`;
    document.body.append(dialog);
    this.dialog = dialog;
    this.canvas = dialog.querySelector("canvas");
    this.readout = dialog.querySelector(".map-zoom-value");
    this.source = null; // {key, title, count, map(index) -> rows, scale, signed}
    this.index = 0;
    this.cell = null; // [row, column] last pointed at
    dialog.querySelector(".map-zoom-close").addEventListener("click", () => dialog.close());
    dialog.querySelectorAll("[data-step]").forEach((button) => button.addEventListener("click", () => {
      this.index = (this.index + Number(button.dataset.step) + this.source.count) % this.source.count;
      this.draw();
    }));
    dialog.addEventListener("click", (e) => { if (e.target === dialog) dialog.close(); }); // a tap beside it
    const point = (e) => {
      const rect = this.canvas.getBoundingClientRect();
      const rows = this.rows;
      if (!rows) return;
      const row = Math.floor((e.clientY - rect.top) / rect.height * rows.length);
      const column = Math.floor((e.clientX - rect.left) / rect.width * rows[0].length);
      if (row < 0 || column < 0 || row >= rows.length || column >= rows[0].length) return;
      this.cell = [row, column];
      this.draw();
    };
    this.canvas.addEventListener("pointermove", point);
    this.canvas.addEventListener("pointerdown", point);
  }

  get isOpen() { return this.dialog.open; }

  open(source, index) {
    this.source = source;
    this.index = index;
    this.cell = null;
    this.draw();
    if (!this.dialog.open) this.dialog.showModal();
  }

  // A new answer: the same layer's fresh maps, if this dialog shows that layer.
  refresh(sources) {
    if (!this.dialog.open || !this.source) return;
    const fresh = sources.get(this.source.key);
    if (!fresh) { this.dialog.close(); return; }
    this.source = fresh;
    this.index = Math.min(this.index, fresh.count - 1);
    this.draw();
  }

  draw() {
    const { title, count, scale, signed } = this.source;
    const rows = this.source.map(this.index);
    this.rows = rows;
    const height = rows.length, width = rows[0].length;
    const cell = Math.max(1, Math.ceil(280 / Math.max(height, width)));
    this.canvas.width = width * cell;
    this.canvas.height = height * cell;
    this.canvas.style.aspectRatio = `${width} / ${height}`;
    const ctx = this.canvas.getContext("2d");
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const shade = FeatureMapGrid.shade(rows[y][x], scale, signed);
        ctx.fillStyle = `rgb(${shade},${shade},${shade})`;
        ctx.fillRect(x * cell, y * cell, cell, cell);
      }
    }
    this.dialog.querySelector("h2").textContent = title(this.index);
    this.dialog.querySelector(".map-zoom-count").textContent = `${this.index + 1} of ${count}`;
    this.dialog.querySelectorAll("[data-step]").forEach((b) => { b.hidden = count < 2; });
    if (this.cell && this.cell[0] < height && this.cell[1] < width) {
      const [row, column] = this.cell;
      ctx.strokeStyle = "#2f6fed";
      ctx.lineWidth = Math.max(2, cell / 5);
      ctx.strokeRect(column * cell + 1, row * cell + 1, cell - 2, cell - 2);
      this.readout.textContent = `row ${row + 1}, column ${column + 1}: ${MapZoom.format(rows[row][column])}`;
    } else {
      this.readout.textContent = "Point at a square, or tap it, to read its value.";
    }
    this.canvas.dataset.index = String(this.index);
  }

  static format(value) {
    if (!Number.isFinite(value)) return String(value);
    return Math.abs(value) >= 100 || value === 0 ? value.toFixed(1) : value.toPrecision(3);
  }
}
