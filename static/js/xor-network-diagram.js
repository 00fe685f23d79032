// The XOR net as an SVG diagram: weights on the edges (colour = sign, width = size), biases by the units.
"use strict";

class XorNetworkDiagram {
  constructor(container) {
    this.container = container;
    this.width = 440;
  }

  // weights: {W1: 2 x h, b1: h, W2: h x 1, b2: 1}; values: optional {X, X2, out} for one input
  draw(weights, values) {
    const hidden = weights.b1.length;
    const rowGap = Math.max(34, Math.min(60, 300 / hidden));
    const height = Math.max(170, rowGap * hidden + 50);
    const column = (count, i) => height / 2 + (i - (count - 1) / 2) * rowGap;
    const inputs = [0, 1].map((i) => ({ x: 50, y: height / 2 + (i - 0.5) * 90 }));
    const units = weights.b1.map((_, j) => ({ x: 220, y: column(hidden, j) }));
    const output = { x: 390, y: height / 2 };
    const biggest = Math.max(1e-9, ...weights.W1.flat().map(Math.abs), ...weights.W2.flat().map(Math.abs));
    const labels = hidden <= 6;
    const edges = [];
    const edge = (from, to, w, name) => {
      const width = 0.8 + 6 * Math.abs(w) / biggest;
      const colour = w >= 0 ? "var(--xor-positive)" : "var(--xor-negative)";
      const t = name.startsWith("W1") ? 0.28 : 0.62; // labels away from where edges cross
      const lx = from.x + (to.x - from.x) * t;
      const ly = from.y + (to.y - from.y) * t;
      edges.push(`<line x1="${from.x}" y1="${from.y}" x2="${to.x}" y2="${to.y}" stroke="${colour}" stroke-width="${width.toFixed(2)}" data-weight="${name}"><title>${name} = ${XorFormat.number(w)}</title></line>`);
      if (labels) edges.push(`<text class="edge-label" x="${lx}" y="${ly - 3}" text-anchor="middle">${XorFormat.number(w, 2)}</text>`);
    };
    inputs.forEach((a, i) => units.forEach((b, j) => edge(a, b, weights.W1[i][j], `W1[${i}][${j}]`)));
    units.forEach((a, j) => edge(a, output, weights.W2[j][0], `W2[${j}][0]`));
    const node = (p, label, sub, cls) =>
      `<g class="node ${cls}"><circle cx="${p.x}" cy="${p.y}" r="15"></circle><text x="${p.x}" y="${p.y + 4}" text-anchor="middle">${label}</text>` +
      (sub ? `<text class="node-sub" x="${p.x}" y="${p.y + 29}" text-anchor="middle">${sub}</text>` : "") + "</g>";
    const nodes = [
      ...inputs.map((p, i) => node(p, values ? XorFormat.number(values.X[i], 1) : `x${i + 1}`, `input ${i + 1}`, "input")),
      ...units.map((p, j) => node(p, values ? XorFormat.number(values.X2[j], 2) : `h${j + 1}`,
        hidden <= 8 ? `b ${XorFormat.number(weights.b1[j], 2)}` : "", "hidden")),
      node(output, values ? XorFormat.number(values.out, 2) : "out", `b ${XorFormat.number(weights.b2[0], 2)}`, "output"),
    ];
    this.container.innerHTML =
      `<svg viewBox="0 0 ${this.width} ${height}" role="img" aria-label="The network: 2 inputs, ${hidden} hidden units and 1 output, with the weights on the edges">${edges.join("")}${nodes.join("")}</svg>`;
    this.container.dataset.hidden = String(hidden);
  }
}
