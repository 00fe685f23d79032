// Probability bars for any list of labels (a letters model's "A".."E"), not only the ten digits.
"use strict";

class LabelBars extends ProbabilityBars {
  constructor(element) {
    super(element); // the ten digits until a model with labels is chosen
    this.labels = Array.from({ length: 10 }, (_, d) => String(d));
  }

  setLabels(labels) {
    if (labels.join("\u0000") === this.labels.join("\u0000")) return;
    this.labels = labels.slice();
    this.element.replaceChildren();
    this.rows = this.labels.map((label) => {
      const row = document.createElement("div");
      row.className = "bar-row";
      row.innerHTML = '<span class="bar-label"></span><span class="bar-track"><span class="bar-fill"></span></span><span class="bar-value"></span>';
      row.querySelector(".bar-label").textContent = label; // a teacher's label: text, never markup
      this.element.appendChild(row);
      return row;
    });
    this.element.classList.toggle("long-labels", this.labels.some((l) => l.length > 2));
  }
}
