// The class gallery: a dataset's drawings grouped by label, each as the 28x28 image the network reads, as a
// button that opens it. It keeps the drawings it shows by id, so an event that arrives twice changes nothing.
"use strict";

class GalleryGrid {
  // onOpen(drawing) when a drawing is tapped
  constructor(element, { onOpen = () => {} } = {}) {
    this.element = element;
    this.onOpen = onOpen;
    this.labels = [];
    this.sections = new Map(); // label -> {section, grid, count}
    this.drawings = new Map(); // id -> {drawing, button}
  }

  // A fresh dataset: one section per label, in the dataset's order, empty.
  reset(labels) {
    this.labels = labels.slice();
    this.drawings.clear();
    this.sections.clear();
    this.element.replaceChildren(...this.labels.map((label) => this.section(label)));
  }

  section(label) {
    const section = document.createElement("section");
    section.className = "label-section";
    section.dataset.label = label;
    const title = document.createElement("h3");
    const name = document.createElement("span");
    name.className = "label-name";
    name.textContent = label; // a teacher's label: text, never markup
    const count = document.createElement("span");
    count.className = "label-count";
    title.append(name, count);
    const grid = document.createElement("div");
    grid.className = "thumbs";
    section.append(title, grid);
    this.sections.set(label, { section, grid, count });
    this.showCount(label);
    return section;
  }

  add(drawing) {
    if (this.drawings.has(drawing.id)) { this.change(drawing); return; }
    const target = this.sections.get(drawing.label);
    if (!target) return; // a label the dataset no longer has
    const button = document.createElement("button");
    button.type = "button";
    button.className = "thumb";
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 28;
    paintDigitImage(canvas, drawing.input);
    button.append(canvas);
    button.addEventListener("click", () => this.onOpen(this.drawings.get(drawing.id).drawing));
    this.drawings.set(drawing.id, { drawing, button });
    this.describe(drawing, button);
    target.grid.append(button);
    this.showCount(drawing.label);
  }

  change(drawing) {
    const known = this.drawings.get(drawing.id);
    if (!known) { this.add(drawing); return; }
    const before = known.drawing.label;
    known.drawing = { ...known.drawing, ...drawing };
    this.describe(known.drawing, known.button);
    if (before !== drawing.label && this.sections.has(drawing.label)) {
      this.sections.get(drawing.label).grid.append(known.button);
      this.showCount(before);
      this.showCount(drawing.label);
    }
  }

  remove(id) {
    const known = this.drawings.get(id);
    if (!known) return;
    known.button.remove();
    this.drawings.delete(id);
    this.showCount(known.drawing.label);
  }

  describe(drawing, button) {
    button.dataset.id = drawing.id;
    button.dataset.client = drawing.client || "";
    const by = drawing.client ? ` by ${ClientId.short(drawing.client)}` : " (imported)";
    const guess = drawing.guess !== null && drawing.guess !== undefined && drawing.guess !== ""
      ? `, the model read ${drawing.guess}` : "";
    button.setAttribute("aria-label", `${drawing.label}${by}${guess}`);
    button.title = `${drawing.label}${by}${guess}`;
    button.classList.toggle("misread", !!guess && String(drawing.guess) !== String(drawing.label));
  }

  showCount(label) {
    const target = this.sections.get(label);
    if (target) target.count.textContent = String(target.grid.children.length);
  }

  // How many drawings each browser id gave, most first.
  byClient() {
    const counts = new Map();
    for (const { drawing } of this.drawings.values()) {
      const client = drawing.client || "";
      counts.set(client, (counts.get(client) || 0) + 1);
    }
    return [...counts].sort((a, b) => b[1] - a[1]);
  }

  get size() { return this.drawings.size; }
}
