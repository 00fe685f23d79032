// Follows one job's events over Socket.IO: history first, then live, each exactly once and in order.
// After a reconnect it resubscribes from the last seq it has, so nothing is missed.
"use strict";

class JobStream {
  constructor(socket, onEvent) {
    this.socket = socket;
    this.onEvent = onEvent;
    this.jobId = null;
    this.lastSeq = 0;
    this.resyncing = false;
    socket.on("job", (event) => this.receive(event));
    socket.on("connect", () => { if (this.jobId) this.subscribe(); }); // a new connection has no rooms
  }

  follow(jobId) {
    if (this.jobId && this.jobId !== jobId && this.socket.connected) {
      this.socket.emit("unsubscribe", { job: this.jobId });
    }
    this.jobId = jobId;
    this.lastSeq = 0;
    if (this.socket.connected) this.subscribe();
  }

  subscribe() {
    const jobId = this.jobId;
    this.resyncing = true;
    this.socket.emit("subscribe", { job: jobId, after: this.lastSeq }, (answer) => {
      this.resyncing = false;
      if (answer && answer.error && jobId === this.jobId) this.onEvent({ type: "error", error: answer.error });
    });
  }

  receive(event) {
    if (event.job !== this.jobId || event.seq <= this.lastSeq) return; // another job, or seen already
    if (event.seq !== this.lastSeq + 1) { // a gap: ask for what is missing
      if (!this.resyncing) this.subscribe();
      return;
    }
    this.lastSeq = event.seq;
    this.onEvent(event);
  }
}
