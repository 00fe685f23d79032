// The decision boundary as TensorFlow Playground shows it: the output over [0, 1]^2 as colour,
// orange near 0, blue near 1, with the four XOR cases as dots.
"use strict";

class XorHeatmap {
  constructor(canvas) {
    this.canvas = canvas;
  }

  static colour(value) {
    const zero = [245, 147, 34], middle = [232, 234, 235], one = [8, 119, 189];
    const [from, to, t] = value < 0.5 ? [zero, middle, value * 2] : [middle, one, value * 2 - 1];
    return from.map((c, i) => Math.round(c + (to[i] - c) * t));
  }

  // The output of a net with `weights` on an n x n grid over [0, 1]^2 (the same sums as the breakdown).
  static gridFrom(weights, n = 21) {
    const out = (x, y) => {
      let sum = weights.b2[0];
      weights.b1.forEach((b, j) => {
        sum += Math.max(0, x * weights.W1[0][j] + y * weights.W1[1][j] + b) * weights.W2[j][0];
      });
      return 1 / (1 + Math.exp(-sum));
    };
    return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => out(j / (n - 1), i / (n - 1))));
  }

  // grid[i][j]: the output at x = j / (n - 1), y = i / (n - 1)
  draw(grid) {
    XorHeatmap.paintSquare(this.canvas, grid, XorHeatmap.colour, {
      pad: 14, dotRadius: 8, dotLine: 2,
      dotColour: (target) => `rgb(${XorHeatmap.colour(target).join(",")})`,
    });
    this.canvas.dataset.filled = "true";
  }

  // Paints grid (values over [0, 1]^2, y growing upwards) on `canvas` with `colour(value) -> [r, g, b]`, framed,
  // with the four XOR cases as dots; shared with the hidden units' maps (neuron-heatmap.js).
  static paintSquare(canvas, grid, colour, { pad, dotRadius, dotLine, dotColour }) {
    const n = grid.length;
    const cellsCanvas = XorHeatmap.cells || (XorHeatmap.cells = document.createElement("canvas"));
    cellsCanvas.width = n;
    cellsCanvas.height = n;
    const cells = cellsCanvas.getContext("2d");
    const image = cells.createImageData(n, n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const [r, g, b] = colour(grid[i][j]);
        image.data.set([r, g, b, 255], ((n - 1 - i) * n + j) * 4); // y grows upwards
      }
    }
    cells.putImageData(image, 0, 0);
    const ctx = canvas.getContext("2d");
    const { width, height } = canvas;
    ctx.clearRect(0, 0, width, height);
    ctx.imageSmoothingEnabled = true;
    // each grid point is a cell centre: stretch the cells so the centres land on the square's edges
    const span = width - 2 * pad;
    const cell = span / (n - 1);
    ctx.drawImage(cellsCanvas, pad - cell / 2, pad - cell / 2, span + cell, span + cell);
    ctx.strokeStyle = "#667085";
    ctx.lineWidth = 1;
    ctx.strokeRect(pad, pad, span, span);
    [[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]].forEach(([x, y, target]) => {
      ctx.beginPath();
      ctx.arc(pad + x * span, pad + (1 - y) * span, dotRadius, 0, 2 * Math.PI);
      ctx.fillStyle = dotColour(target);
      ctx.fill();
      ctx.lineWidth = dotLine;
      ctx.strokeStyle = "#fff";
      ctx.stroke();
    });
  }
}
