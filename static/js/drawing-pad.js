// A canvas to draw on with mouse, pen or touch (pointer events).
// It knows nothing about networks: it reports "changed" and "finished".
"use strict";

class DrawingPad {
  constructor(canvas, { lineWidth = 18, onChange = () => {}, onFinish = () => {} } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.lineWidth = lineWidth;
    this.onChange = onChange;
    this.onFinish = onFinish;
    this.drawing = false;
    this.empty = true;
    this.clear();
    // touch-action: none (in CSS) keeps a finger from scrolling the page while drawing.
    canvas.addEventListener("pointerdown", (e) => this.start(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
      canvas.addEventListener(type, (e) => this.end(e));
    }
  }

  point(e) {
    const box = this.canvas.getBoundingClientRect();
    return {
      x: ((e.clientX - box.left) * this.canvas.width) / box.width,
      y: ((e.clientY - box.top) * this.canvas.height) / box.height,
    };
  }

  start(e) {
    e.preventDefault();
    this.canvas.setPointerCapture?.(e.pointerId);
    this.drawing = true;
    this.last = this.point(e);
    this.dot(this.last);
  }

  move(e) {
    if (!this.drawing) return;
    e.preventDefault();
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const each of events.length ? events : [e]) {
      const p = this.point(each);
      this.line(this.last, p);
      this.last = p;
    }
    this.changed();
  }

  end() {
    if (!this.drawing) return;
    this.drawing = false;
    this.onFinish();
  }

  dot(p) {
    this.ctx.beginPath();
    this.ctx.arc(p.x, p.y, this.lineWidth / 2, 0, Math.PI * 2);
    this.ctx.fill();
    this.changed();
  }

  line(a, b) {
    this.ctx.beginPath();
    this.ctx.moveTo(a.x, a.y);
    this.ctx.lineTo(b.x, b.y);
    this.ctx.stroke();
  }

  changed() {
    this.empty = false;
    this.onChange();
  }

  clear() {
    const ctx = this.ctx;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.fillStyle = ctx.strokeStyle = "#000";
    ctx.lineWidth = this.lineWidth;
    ctx.lineCap = ctx.lineJoin = "round";
    this.empty = true;
  }

  // The server shrinks a drawing to 64-127 pixels before reading it (the digit
  // ends up 20 pixels tall): sending it at 70 saves the server decoding 16 times the pixels.
  toDataURL() {
    const scale = Math.min(1, DrawingPad.SENT_SIDE / Math.max(this.canvas.width, this.canvas.height));
    if (scale === 1) return this.canvas.toDataURL("image/png");
    const small = this.small || (this.small = document.createElement("canvas"));
    small.width = Math.round(this.canvas.width * scale);
    small.height = Math.round(this.canvas.height * scale);
    const ctx = small.getContext("2d");
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(this.canvas, 0, 0, small.width, small.height);
    return small.toDataURL("image/png");
  }
}

DrawingPad.SENT_SIDE = 70; // bench/strokes.py's canvas_png sends the same
