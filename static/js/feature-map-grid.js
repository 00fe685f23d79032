// A layer's feature maps (height x width x channels, channels last) as a grid of small grey images on one canvas.
// Darker is larger, as in the 28x28 image the network sees; signed values (kernels) are grey at 0, dark above,
// light below. One scale for the whole layer, so a map that stays pale really is weaker than its neighbours.
"use strict";

class FeatureMapGrid {
  // options: {label, onPick(index)}: onPick is called when a map is clicked, tapped or chosen with Enter.
  constructor(canvas, options = {}) {
    this.canvas = canvas;
    this.options = options;
    this.atlas = document.createElement("canvas");
    this.layout = null;
    this.shown = null;
    canvas.tabIndex = 0;
    canvas.setAttribute("role", "button");
    canvas.setAttribute("aria-label", `${options.label || "Feature maps"}: choose a map to see it large`);
    canvas.addEventListener("click", (e) => this.pick(e));
    canvas.addEventListener("keydown", (e) => {
      if ((e.key === "Enter" || e.key === " ") && this.shown && options.onPick) { e.preventDefault(); options.onPick(0); }
    });
    // The grid reflows to its box: opening the view, turning a phone or resizing a window redraws it.
    ResizeRedraw.follow(canvas.parentElement, () => this.redraw());
  }

  // The size each map is drawn at (CSS pixels): big maps bigger, never so small a finger cannot hit one.
  static tileSize(height) {
    return height >= 20 ? 44 : height >= 10 ? 34 : 24;
  }

  // values: Float32Array laid out [y][x][channel]; shape: [height, width, channels] (or [height, width]).
  show(values, shape) {
    const [height, width, channels = 1] = shape;
    let min = Infinity, max = -Infinity, sum = 0;
    for (const v of values) {
      if (!Number.isFinite(v)) continue;
      if (v < min) min = v;
      if (v > max) max = v;
      sum += v;
    }
    if (min === Infinity) { min = 0; max = 0; }
    const signed = min < 0;
    const scale = signed ? Math.max(-min, max) || 1 : max || 1;
    // Every map into one strip of images (the atlas); the visible canvas then copies each to its place.
    this.atlas.width = width * channels;
    this.atlas.height = height;
    const atlas = this.atlas.getContext("2d");
    const image = atlas.createImageData(width * channels, height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        for (let k = 0; k < channels; k++) {
          const v = values[(y * width + x) * channels + k];
          const shade = FeatureMapGrid.shade(v, scale, signed);
          const i = (y * width * channels + k * width + x) * 4;
          image.data[i] = image.data[i + 1] = image.data[i + 2] = shade;
          image.data[i + 3] = 255;
        }
      }
    }
    atlas.putImageData(image, 0, 0);
    this.shown = { values, height, width, channels, signed, scale };
    this.canvas.dataset.maps = String(channels);
    this.canvas.dataset.sum = sum.toFixed(4); // tests see the maps change without reading pixels
    this.redraw();
  }

  static shade(v, scale, signed) {
    if (!Number.isFinite(v)) return 128;
    const t = Math.max(-1, Math.min(1, v / scale));
    return Math.round(signed ? 128 - 127 * t : 255 * (1 - Math.max(0, t)));
  }

  redraw() {
    const shown = this.shown;
    const box = this.canvas.parentElement.clientWidth;
    if (!shown || box === 0) return; // closed or not laid out yet: the observer calls again
    const gap = 3;
    const tile = Math.min(FeatureMapGrid.tileSize(shown.height), box);
    const columns = Math.max(1, Math.min(shown.channels, Math.floor((box + gap) / (tile + gap))));
    const rows = Math.ceil(shown.channels / columns);
    const cssWidth = columns * (tile + gap) - gap;
    const cssHeight = rows * (tile + gap) - gap;
    const ratio = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(cssWidth * ratio) || this.canvas.height !== Math.round(cssHeight * ratio)) {
      this.canvas.width = Math.round(cssWidth * ratio);
      this.canvas.height = Math.round(cssHeight * ratio);
      this.canvas.style.width = `${cssWidth}px`;
      this.canvas.style.height = `${cssHeight}px`;
    }
    this.layout = { tile, gap, columns };
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, cssWidth, cssHeight);
    ctx.imageSmoothingEnabled = false;
    for (let k = 0; k < shown.channels; k++) {
      const x = (k % columns) * (tile + gap);
      const y = Math.floor(k / columns) * (tile + gap);
      ctx.drawImage(this.atlas, k * shown.width, 0, shown.width, shown.height, x, y, tile, tile);
      ctx.strokeStyle = "#c7cdd8";
      ctx.lineWidth = 1;
      ctx.strokeRect(x + 0.5, y + 0.5, tile - 1, tile - 1);
    }
  }

  // Which map is under a click or tap, if any.
  pick(event) {
    if (!this.layout || !this.shown || !this.options.onPick) return;
    const rect = this.canvas.getBoundingClientRect();
    const { tile, gap, columns } = this.layout;
    const column = Math.floor((event.clientX - rect.left) / (tile + gap));
    const row = Math.floor((event.clientY - rect.top) / (tile + gap));
    const index = row * columns + column;
    if (column >= 0 && column < columns && index >= 0 && index < this.shown.channels) this.options.onPick(index);
  }

  // One map's values as rows (for the large view).
  map(index) {
    const { values, height, width, channels } = this.shown;
    return Array.from({ length: height }, (_, y) =>
      Array.from({ length: width }, (_, x) => values[(y * width + x) * channels + index]));
  }
}
