// The forward pass as matrices with the real numbers, one step at a time.
// Clicking a number in a step's result (or Enter/Space on it: each is a Tab stop) shows the
// arithmetic behind it and highlights the numbers it came from.
"use strict";

class XorMatrixView {
  // allButton: the show-all toggle, whose label says what pressing it will do next
  constructor(container, explain, label, allButton) {
    this.container = container;
    this.explain = explain;
    this.label = label;
    this.allButton = allButton;
    this.steps = [];
    this.current = 0;
    this.showAll = false;
    container.addEventListener("click", (e) => {
      const cell = e.target.closest("td[data-element]");
      if (cell) this.select(cell);
    });
    container.addEventListener("keydown", (e) => {
      const cell = e.target.closest("td[data-element]");
      if (!cell || (e.key !== "Enter" && e.key !== " ")) return;
      e.preventDefault(); // Space would scroll the page
      this.select(cell);
    });
  }

  // Another input or model: a new walk through the pass, from step 1, one step at a time.
  load(breakdown) {
    this.steps = breakdown.steps;
    this.current = 0;
    this.showAll = false;
    this.render();
  }

  go(delta) {
    this.showAll = false;
    this.current = Math.max(0, Math.min(this.steps.length - 1, this.current + delta));
    this.render();
  }

  toggleAll() {
    this.showAll = !this.showAll;
    this.render();
  }

  static matrix(name, rows, stepIndex, isResult) {
    const body = rows.map((row, r) => "<tr>" + row.map((value, c) => {
      const where = rows.length > 1 ? `[${r}][${c}]` : `[${c}]`;
      const attrs = isResult ? ` data-element="${stepIndex}:${r}:${c}" tabindex="0" title="Where does this come from?"` +
        ` aria-label="${name}${where} = ${XorFormat.number(value)}: show where it comes from"` : "";
      return `<td data-matrix="${name}" data-row="${r}" data-col="${c}"${attrs}>${XorFormat.number(value)}</td>`;
    }).join("") + "</tr>").join("");
    return `<figure class="matrix${isResult ? " result" : ""}"><figcaption>${name}</figcaption><table><tbody>${body}</tbody></table></figure>`;
  }

  renderStep(step, index) {
    const names = step.operands || Object.keys(step.inputs);
    const inputs = names.map((name, i) => (i ? `<span class="op">${(step.operators || [])[i - 1] || ","}</span>` : "") +
      XorMatrixView.matrix(name, step.inputs[name], index, false));
    const left = step.apply ? `<span class="op">${step.apply}(</span>${inputs.join("")}<span class="op">)</span>` : inputs.join("");
    return `<section class="xor-step" data-step="${index}">
      <h3>Step ${index + 1}: ${step.title}</h3>
      <p class="formula">${step.formula}</p>
      <div class="matrices">${left}<span class="op">=</span>${XorMatrixView.matrix(step.name, step.output, index, true)}</div>
    </section>`;
  }

  render() {
    if (!this.steps.length) return;
    const shown = this.showAll ? this.steps.map((s, i) => [s, i]) : [[this.steps[this.current], this.current]];
    this.container.innerHTML = shown.map(([s, i]) => this.renderStep(s, i)).join("");
    this.label.textContent = this.showAll ? `all ${this.steps.length} steps` : `step ${this.current + 1} of ${this.steps.length}`;
    if (this.allButton) this.allButton.textContent = this.showAll ? "Show one step at a time" : "Show all steps";
    this.container.dataset.step = String(this.current);
  }

  select(cell) {
    const [stepIndex, r, c] = cell.dataset.element.split(":").map(Number);
    const step = this.steps[stepIndex];
    const element = step.elements.find((e) => e.index[0] === r && e.index[1] === c);
    const section = this.container.querySelector(`.xor-step[data-step="${stepIndex}"]`);
    this.container.querySelectorAll(".source, .chosen").forEach((el) => el.classList.remove("source", "chosen"));
    cell.classList.add("chosen");
    element.from.forEach(([name, row, col]) => {
      const source = section.querySelector(`td[data-matrix="${name}"][data-row="${row}"][data-col="${col}"]`);
      if (source) source.classList.add("source");
    });
    const where = r > 0 || step.output.length > 1 ? `[${r}][${c}]` : `[${c}]`;
    this.explain.innerHTML = `<strong>${step.name}${where}</strong> = <span class="arithmetic">${element.text}</span>`;
    this.explain.dataset.element = cell.dataset.element;
  }
}
