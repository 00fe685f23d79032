// Each hidden unit of the XOR net on its own, as TensorFlow Playground shows them: the unit's output
// relu(x * W1[0][j] + y * W1[1][j] + b1[j]) over [0, 1]^2 as a small heat map, white at 0 and deeper blue the larger,
// each on its own scale (written under it), with the four XOR cases as dots (painted by XorHeatmap.paintSquare).
"use strict";

class NeuronHeatmaps {
  constructor(container) {
    this.container = container;
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
    XorHeatmap.paintSquare(canvas, grid, (value) => NeuronHeatmaps.colour(max > 0 ? value / max : 0), {
      pad: 6, dotRadius: 4, dotLine: 1, dotColour: (target) => (target ? "#0877bd" : "#f59322"),
    });
  }
}
