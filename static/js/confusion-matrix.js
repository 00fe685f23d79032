// A confusion matrix as a table: rows are the true digits, columns the predicted ones.
"use strict";

function renderConfusionMatrix(container, matrix) {
  const table = document.createElement("table");
  table.className = "confusion";
  const largestMistake = Math.max(1, ...matrix.flatMap((row, i) => row.filter((_, j) => j !== i)));
  const largestHit = Math.max(1, ...matrix.map((row, i) => row[i]));

  const head = table.createTHead().insertRow();
  head.appendChild(document.createElement("th")).textContent = "true \\ predicted";
  matrix.forEach((_, j) => { head.appendChild(document.createElement("th")).textContent = j; });

  const body = table.createTBody();
  matrix.forEach((row, i) => {
    const tr = body.insertRow();
    tr.appendChild(document.createElement("th")).textContent = i;
    row.forEach((count, j) => {
      const cell = tr.insertCell();
      cell.textContent = count;
      // Green for right answers, red for mistakes; the stronger, the more digits.
      const strength = i === j ? count / largestHit : count / largestMistake;
      const hue = i === j ? "26, 143, 76" : "196, 55, 45";
      if (count > 0) cell.style.background = `rgba(${hue}, ${(0.12 + 0.6 * strength).toFixed(2)})`;
      cell.title = `true ${i}, predicted ${j}: ${count}`;
    });
  });
  container.replaceChildren(table);
}
