// A unit's 784 incoming weights as a 28x28 image: "what this unit looks for". Blue where ink excites the unit
// (positive weight), orange where ink holds it back (negative), white where ink does not matter to it.
"use strict";

function paintWeightImage(canvas, weights) {
  let max = 0;
  for (const w of weights) if (Number.isFinite(w)) max = Math.max(max, Math.abs(w));
  max = max || 1;
  const positive = [8, 119, 189], negative = [232, 89, 12];
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const w = Number.isFinite(weights[i]) ? weights[i] / max : 0;
    const colour = w >= 0 ? positive : negative;
    const t = Math.min(1, Math.abs(w));
    for (let c = 0; c < 3; c++) image.data[i * 4 + c] = Math.round(255 + (colour[c] - 255) * t);
    image.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
  canvas.dataset.painted = "yes";
}
