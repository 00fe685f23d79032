// "No, it was a …": after a prediction the student taps what the drawing really was, and it is filed into
// the class's dataset (class-digits for a digit model) with the model's answer as its guess.
"use strict";

class Correction {
  // root holds .correction-ask, .correction-buttons and .correction-thanks (templates/draw.html)
  constructor(root, { socket }) {
    this.root = root;
    this.socket = socket;
    this.buttons = root.querySelector(".correction-buttons");
    this.thanks = root.querySelector(".correction-thanks");
    this.offered = null; // {dataset, labels, image, guess}
    this.sentImage = null; // the drawing filed, or being filed: it stays filed once, whatever answers come later
    this.labelsShown = "";
  }

  // offer(answer, image, target): target = {dataset, labels} where the drawing may be filed, or null.
  offer(answer, image, target) {
    const known = answer && !answer.error && !answer.blank && answer.label !== null && answer.label !== undefined;
    if (!known || !target || !image) { this.hide(); return; }
    const sent = image === this.sentImage; // a late answer for the drawing just filed
    this.offered = sent ? null : { dataset: target.dataset, labels: target.labels, image, guess: answer.label };
    if (!sent) this.say("", false); // a new drawing: the last thank-you is done
    this.showButtons(target.labels, answer.label);
    if (sent) for (const button of this.buttons.children) button.disabled = true;
    this.root.querySelector(".correction-guess").textContent = answer.label;
    this.root.hidden = false;
  }

  hide() {
    this.offered = null;
    this.root.hidden = true;
  }

  showButtons(labels, guess) {
    const key = labels.join("\u0000");
    if (key !== this.labelsShown) {
      this.labelsShown = key;
      this.buttons.replaceChildren(...labels.map((label) => {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = label;
        button.dataset.label = label;
        button.setAttribute("aria-label", `It was ${label}`);
        button.addEventListener("click", () => this.file(label));
        return button;
      }));
      this.buttons.classList.toggle("many", labels.length > 10);
    }
    for (const button of this.buttons.children) {
      button.disabled = button.dataset.label === guess; // "no, it was": the model's own answer is not a choice
      button.classList.toggle("guess", button.dataset.label === guess);
    }
  }

  async file(label) {
    const offered = this.offered;
    if (!offered) return;
    this.offered = null; // one drawing is filed once
    this.sentImage = offered.image;
    for (const button of this.buttons.children) button.disabled = true;
    this.say("Sending…", false);
    const answer = await ClassDrawings.add(this.socket, {
      dataset: offered.dataset, image: offered.image, label, guess: offered.guess,
    });
    if (answer.error) {
      this.say(`Not saved: ${answer.error}`, true);
      this.offered = offered; // let the student try again
      this.sentImage = null;
      this.showButtons(offered.labels, offered.guess);
      return;
    }
    const ofLabel = (answer.counts && answer.counts[label]) || 0;
    this.root.dataset.filed = String((Number(this.root.dataset.filed) || 0) + 1);
    this.say(`Thank you! The class now has ${ofLabel} drawing${ofLabel === 1 ? "" : "s"} of ${label} `
      + `(${answer.total} in all) to teach the network with.`, false);
    this.root.dataset.total = String(answer.total);
  }

  say(text, isError) {
    this.thanks.textContent = text;
    this.thanks.classList.toggle("error", isError);
  }
}
