// A live line chart (Chart.js): named series of (x, y) points, redrawn at most once per frame.
"use strict";

class LineChart {
  constructor(canvas, { title, yLabel, series, yMin, yMax }) {
    this.pending = false;
    this.chart = new Chart(canvas, {
      type: "line",
      data: {
        datasets: series.map((s) => ({
          label: s.label,
          data: [],
          borderColor: s.color,
          backgroundColor: s.color,
          borderWidth: s.width || 1.5,
          pointRadius: s.points ? 3 : 0,
          tension: 0.2,
        })),
      },
      options: {
        animation: false,
        parsing: false,
        normalized: true,
        maintainAspectRatio: false,
        plugins: { title: { display: true, text: title }, legend: { position: "bottom" } },
        scales: {
          x: { type: "linear", title: { display: true, text: "epoch" }, min: 0 },
          y: { title: { display: true, text: yLabel }, suggestedMin: yMin, suggestedMax: yMax },
        },
      },
    });
  }

  add(seriesIndex, x, y) {
    if (y === null || y === undefined || !Number.isFinite(y)) return;
    this.chart.data.datasets[seriesIndex].data.push({ x, y });
    this.redrawSoon();
  }

  clear() {
    this.chart.data.datasets.forEach((d) => { d.data = []; });
    this.redrawSoon();
  }

  pointCount() {
    return this.chart.data.datasets.reduce((n, d) => n + d.data.length, 0);
  }

  redrawSoon() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.chart.update("none"); });
  }
}
