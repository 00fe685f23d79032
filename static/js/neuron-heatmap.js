// Each hidden unit of the XOR net on its own, as TensorFlow Playground shows them: the unit's output
// relu(x * W1[0][j] + y * W1[1][j] + b1[j]) over [0, 1]^2 as a small heat map, white at 0 and deeper blue the larger,
// each on its own scale (written under it), with the four XOR cases as dots.
"use strict";

class NeuronHeatmaps {
  constructor(container) {
    this.container = container;
    this.cells = document.createElement("canvas");
  }

  // grid[i][j]: unit `unit`'s output at x = j / (n - 1), y = i / (n - 1), computed from the weights the page has.
  static gridFor(weights, unit, n = 21) {
    const [w0, w1, b] = [weights.W1[0][unit], weights.W1[1][unit], weights.b1[unit]];
    return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) =>
      Math.max(0, (j / (n - 1)) * w0 + (i / (n - 1)) * w1 + b)));
  }

  static colour(t) {
    const zero = [255, 255, 255], one = [8, 119, 189];
    return zero.map((c, k) => Math.round(c + (one[k] - c) * t));
  }

  draw(weights) {
    const units = weights.b1.length;
    if (this.container.children.length !== units) this.build(units);
    [...this.container.children].forEach((figure, unit) => {
      const grid = NeuronHeatmaps.gridFor(weights, unit);
      const max = Math.max(...grid.flat());
      this.paint(figure.querySelector("canvas"), grid, max);
      const caption = figure.querySelector("figcaption");
      caption.textContent = max > 0 ? `h${unit + 1}: 0 to ${max.toFixed(2)}` : `h${unit + 1}: 0 everywhere (dead)`;
      figure.dataset.max = max.toFixed(6);
    });
    this.container.dataset.units = String(units);
  }

  build(units) {
    this.container.replaceChildren(...Array.from({ length: units }, (_, unit) => {
      const figure = document.createElement("figure");
      figure.className = "neuron";
      figure.dataset.unit = String(unit);
      figure.innerHTML = `<canvas width="96" height="96" role="img"></canvas><figcaption></figcaption>`;
      figure.querySelector("canvas").setAttribute("aria-label",
        `Hidden unit ${unit + 1}'s output over the square from [0,0] to [1,1]`);
      return figure;
    }));
  }

  paint(canvas, grid, max) {
    const n = grid.length;
    this.cells.width = n;
    this.cells.height = n;
    const cells = this.cells.getContext("2d");
    const image = cells.createImageData(n, n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const [r, g, b] = NeuronHeatmaps.colour(max > 0 ? grid[i][j] / max : 0);
        image.data.set([r, g, b, 255], ((n - 1 - i) * n + j) * 4); // y grows upwards
      }
    }
    cells.putImageData(image, 0, 0);
    const ctx = canvas.getContext("2d");
    const { width } = canvas;
    const pad = 6;
    const span = width - 2 * pad;
    const cell = span / (n - 1);
    ctx.clearRect(0, 0, width, width);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(this.cells, pad - cell / 2, pad - cell / 2, span + cell, span + cell);
    ctx.strokeStyle = "#667085";
    ctx.lineWidth = 1;
    ctx.strokeRect(pad, pad, span, span);
    [[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]].forEach(([x, y, target]) => {
      ctx.beginPath();
      ctx.arc(pad + x * span, pad + (1 - y) * span, 4, 0, 2 * Math.PI);
      ctx.fillStyle = target ? "#0877bd" : "#f59322";
      ctx.fill();
      ctx.strokeStyle = "#fff";
      ctx.stroke();
    });
  }
}
