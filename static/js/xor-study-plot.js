// The convergence study as a plot: the success rate per hidden size with its 95% interval,
// and the tutorial's figure as a diamond beside it.
"use strict";

class XorStudyPlot {
  constructor(canvas) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
  }

  // results: [{hidden, success_rate, ci95: [lo, hi], tutorial}], sorted by hidden
  draw(results) {
    const ctx = this.context;
    const { width, height } = this.canvas;
    const left = 44, right = 12, top = 14, bottom = 34;
    const plotW = width - left - right, plotH = height - top - bottom;
    const y = (rate) => top + (1 - rate) * plotH;
    ctx.clearRect(0, 0, width, height);
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillStyle = "#667085";
    ctx.strokeStyle = "#e7eaf0";
    ctx.textAlign = "right";
    for (let rate = 0; rate <= 1.0001; rate += 0.25) {
      ctx.beginPath(); ctx.moveTo(left, y(rate)); ctx.lineTo(width - right, y(rate)); ctx.stroke();
      ctx.fillText(`${Math.round(rate * 100)}%`, left - 6, y(rate) + 4);
    }
    ctx.textAlign = "center";
    const slot = plotW / Math.max(1, results.length);
    results.forEach((r, i) => {
      const x = left + slot * (i + 0.5);
      ctx.fillStyle = "#1d2330";
      ctx.fillText(`${r.hidden} units`, x, height - bottom + 18);
      // the interval, then the measured rate
      ctx.strokeStyle = "#2f6fed"; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(x - 8, y(r.ci95[1])); ctx.lineTo(x + 8, y(r.ci95[1]));
      ctx.moveTo(x, y(r.ci95[1])); ctx.lineTo(x, y(r.ci95[0]));
      ctx.moveTo(x - 8, y(r.ci95[0])); ctx.lineTo(x + 8, y(r.ci95[0])); ctx.stroke();
      ctx.fillStyle = "#2f6fed";
      ctx.beginPath(); ctx.arc(x, y(r.success_rate), 5, 0, 2 * Math.PI); ctx.fill();
      if (r.tutorial !== null && r.tutorial !== undefined) {
        const tx = x + 22, ty = y(r.tutorial);
        ctx.fillStyle = "#c4372d";
        ctx.beginPath(); ctx.moveTo(tx, ty - 6); ctx.lineTo(tx + 6, ty); ctx.lineTo(tx, ty + 6); ctx.lineTo(tx - 6, ty); ctx.fill();
      }
    });
    ctx.textAlign = "left";
    ctx.fillStyle = "#2f6fed"; ctx.fillText("● measured, with 95% interval", left + 4, top + 10);
    ctx.fillStyle = "#c4372d"; ctx.fillText("◆ the tutorial", left + 200, top + 10);
    this.canvas.dataset.points = String(results.length);
  }
}
