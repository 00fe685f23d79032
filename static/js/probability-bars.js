// Ten horizontal bars, one per digit, for a network's probabilities.
"use strict";

class ProbabilityBars {
  constructor(element) {
    this.element = element;
    this.rows = [];
    for (let digit = 0; digit < 10; digit++) {
      const row = document.createElement("div");
      row.className = "bar-row";
      row.innerHTML = `<span class="bar-label">${digit}</span><span class="bar-track"><span class="bar-fill"></span></span><span class="bar-value"></span>`;
      element.appendChild(row);
      this.rows.push(row);
    }
  }

  show(probabilities) {
    const best = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
    this.rows.forEach((row, digit) => {
      const p = probabilities ? probabilities[digit] : 0;
      row.querySelector(".bar-fill").style.width = `${(p * 100).toFixed(1)}%`;
      row.querySelector(".bar-value").textContent = probabilities ? `${(p * 100).toFixed(1)}%` : "";
      row.classList.toggle("best", digit === best);
    });
  }
}
