// The 28x28 input in light grey with the saliency map over it: red where a pixel pushed the network towards its
// answer, blue where it pushed away; the stronger the push, the deeper the colour.
"use strict";

function paintSaliency(canvas, input, saliency) {
  let max = 0;
  for (const s of saliency) if (Number.isFinite(s)) max = Math.max(max, Math.abs(s));
  max = max || 1;
  const toward = [214, 40, 40], away = [37, 99, 235];
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(28, 28);
  let painted = 0;
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const i = y * 28 + x;
      const ink = input ? input[y][x] : 0;
      const base = 255 - 110 * ink; // the drawing stays visible under the colour, never darker than mid grey
      const s = Number.isFinite(saliency[i]) ? saliency[i] / max : 0;
      const colour = s >= 0 ? toward : away;
      const alpha = Math.min(1, Math.abs(s)) * 0.9;
      if (alpha > 0.05) painted++;
      for (let c = 0; c < 3; c++) image.data[i * 4 + c] = Math.round(base + (colour[c] - base) * alpha);
      image.data[i * 4 + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
  canvas.dataset.painted = painted ? "yes" : "no";
  canvas.dataset.coloured = String(painted); // how many pixels carry a visible push (tests read it)
}
