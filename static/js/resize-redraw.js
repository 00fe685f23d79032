// Redraws a canvas when its box changes width (opening the view, turning a phone, resizing a window).
// The redraw waits for the next frame: drawing inside the observer would resize the box it watches, in the same pass.
"use strict";

const ResizeRedraw = {
  follow(box, redraw) {
    let width = -1;
    new ResizeObserver(() => {
      if (box.clientWidth === width) return;
      width = box.clientWidth;
      requestAnimationFrame(redraw);
    }).observe(box);
  },
};
