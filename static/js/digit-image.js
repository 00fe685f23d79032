// Paints a 28x28 grid of numbers in 0..1 (ink = 1) as a dark-on-light image.
"use strict";

function paintDigitImage(canvas, pixels) {
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(28, 28);
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const ink = pixels ? pixels[y][x] : 0;
      const value = Math.round(255 * (1 - ink));
      const i = (y * 28 + x) * 4;
      image.data[i] = image.data[i + 1] = image.data[i + 2] = value;
      image.data[i + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
  canvas.dataset.painted = pixels ? "yes" : "no";
}
