// A collection round on the Draw page: while the teacher runs one, the page asks for a label ("Draw a C"),
// files each drawing under it in the round's dataset, and asks next for the label the server names
// (`next_label`: one of the least drawn), until the round ends. The round arrives live (`round`) and with
// GET /api/round when the page opens or its connection comes back.
"use strict";

class CollectionRound {
  // parts: {root (the round's box), title (the page's heading, "Draw a C" in a round), send (the button),
  //         status (a live line)}
  // hooks: getImage() -> data URL or null, getGuess(labels) -> the model's answer when it reads these labels,
  //        onChange(round | null) when a round starts or ends, onFiled() after a drawing is filed.
  constructor(socket, parts, hooks) {
    this.socket = socket;
    this.parts = parts;
    this.hooks = hooks;
    this.round = null;
    this.label = null;
    parts.send.addEventListener("click", () => this.send());
    socket.on("round", (message) => this.update(message && message.round));
    socket.on("connect", () => this.load()); // a reconnect may have missed the start or the end
    this.load();
  }

  get active() { return !!this.round; }

  async load() {
    try {
      const response = await fetch("/api/round");
      if (response.ok) this.update((await response.json()).round);
    } catch (err) { /* the next `round` event or reconnect tells */ }
  }

  update(round) {
    const was = this.round;
    this.round = round || null;
    if (!round) {
      if (was) this.end();
      return;
    }
    const started = !was || was.dataset !== round.dataset || was.started !== round.started;
    if (started || !round.labels.includes(this.label)) {
      this.ask(this.leastDrawn(round));
      this.say("");
    }
    this.parts.root.querySelector(".round-name").textContent = round.name || round.dataset;
    this.showCount();
    this.parts.root.hidden = false;
    this.parts.send.hidden = false;
    if (started) this.hooks.onChange(round);
  }

  end() {
    this.label = null;
    delete this.parts.title.dataset.label; // onChange(null) puts the page's own heading back
    this.parts.root.hidden = true;
    this.parts.send.hidden = true;
    this.say("The teacher ended the collection round. Thank you for your drawings!");
    this.parts.status.hidden = false;
    this.hooks.onChange(null);
  }

  // One of the least drawn labels, picked at random so that a class does not all draw the same one.
  leastDrawn(round) {
    const counts = round.counts || {};
    const fewest = Math.min(...round.labels.map((l) => counts[l] || 0));
    const choices = round.labels.filter((l) => (counts[l] || 0) === fewest);
    return choices[Math.floor(Math.random() * choices.length)];
  }

  ask(label) {
    this.label = label;
    this.parts.title.textContent = `Draw ${article(label)}${label}`;
    this.parts.title.dataset.label = label;
    this.parts.send.textContent = `Send my ${label}`;
    this.showCount();
  }

  showCount() {
    const counts = (this.round && this.round.counts) || {};
    const n = counts[this.label] || 0;
    this.parts.root.querySelector(".round-count").textContent =
      `${n} ${this.label} so far · ${this.round ? Object.values(counts).reduce((a, b) => a + b, 0) : 0} in all`;
  }

  async send() {
    const round = this.round, label = this.label;
    const image = this.hooks.getImage();
    if (!round || !label) return;
    if (!image) { this.say(`Draw ${article(label)}${label} first, then send it.`); return; }
    this.parts.send.disabled = true;
    try {
      const answer = await ClassDrawings.add(this.socket, {
        dataset: round.dataset, image, label, guess: this.hooks.getGuess(round.labels),
      });
      if (answer.error) { this.say(`Not saved: ${answer.error}`, true); return; }
      if (this.round !== round && !(this.round && this.round.dataset === round.dataset)) return; // ended meanwhile
      this.round = { ...this.round, counts: answer.counts || this.round.counts };
      const n = (answer.counts && answer.counts[label]) || 0;
      this.ask(answer.next_label && round.labels.includes(answer.next_label) ? answer.next_label
        : this.leastDrawn(this.round));
      this.say(`Thank you! The class now has ${n} drawing${n === 1 ? "" : "s"} of ${label}.`);
      this.parts.root.dataset.sent = String((Number(this.parts.root.dataset.sent) || 0) + 1);
      this.hooks.onFiled();
    } finally {
      this.parts.send.disabled = false;
    }
  }

  say(text, isError = false) {
    this.parts.status.textContent = text;
    this.parts.status.classList.toggle("error", isError);
  }
}

// "Draw a C", "Draw an A", "Draw an 8", "Draw an owl": the article as the label is read aloud.
function article(label) {
  if (label.length === 1) return /[AEFHILMNORSXaefhilmnorsx8]/.test(label) ? "an " : "a ";
  return /^([aeiouAEIOU]|8|11$|18$)/.test(label) ? "an " : "a ";
}
