// Follows one job's events over Socket.IO: history first, then live, each exactly once and in order.
// After a reconnect it resubscribes from the last seq it has, so nothing is missed.
//
// followClass() makes the stream follow the class as well: when the teacher starts a job, every page that
// follows the class switches to it, unless the job it shows is still live. /train and /xor both use this.
"use strict";

const LIVE_JOB_STATES = ["queued", "starting", "running"];

class JobStream {
  constructor(socket, onEvent) {
    this.socket = socket;
    this.onEvent = onEvent;
    this.jobId = null;
    this.state = null; // the followed job's last known state
    this.lastSeq = 0;
    this.resyncing = false;
    this.classRule = null;
    socket.on("job", (event) => this.receive(event));
    socket.on("connect", () => { // a new connection has no rooms, and may have missed announcements
      if (this.jobId) this.subscribe();
      if (this.classRule) this.catchUp();
    });
  }

  follow(jobId, state = null) {
    if (this.jobId && this.jobId !== jobId && this.socket.connected) {
      this.socket.emit("unsubscribe", { job: this.jobId });
    }
    this.jobId = jobId;
    this.state = state;
    this.lastSeq = 0;
    if (this.socket.connected) this.subscribe();
  }

  get live() { return this.jobId !== null && (this.state === null || LIVE_JOB_STATES.includes(this.state)); }

  // Follow the class: `accepts(job)` picks the jobs this page cares about; `show(job)` switches the page to one.
  // On opening, the page shows the live job, else (with `latest`) the newest one.
  followClass({ accepts = () => true, show, latest = false }) {
    this.classRule = { accepts, show, latest, opened: false };
    this.socket.on("jobs", (message) => {
      const job = message && message.job;
      if (job && this.classRule.accepts(job)) this.offer(job);
    });
    return this.catchUp();
  }

  offer(job) {
    if (job.id === this.jobId) { if (job.state) this.state = job.state; return; }
    if (LIVE_JOB_STATES.includes(job.state) && !this.live) this.classRule.show(job);
  }

  async catchUp() { // at opening and after a reconnect: the history says what is live now
    let jobs = [];
    try {
      jobs = ((await (await fetch("/api/jobs")).json()).jobs || []).filter(this.classRule.accepts);
    } catch (err) {
      return jobs; // the server is away; the next reconnect tries again
    }
    const live = jobs.find((j) => ["running", "starting"].includes(j.state)) || jobs.find((j) => j.state === "queued");
    const first = !this.classRule.opened;
    this.classRule.opened = true;
    if (live) this.offer(live);
    else if (first && this.classRule.latest && jobs.length && !this.jobId) this.classRule.show(jobs[0]);
    return jobs;
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
    if (event.type === "state" || event.type === "done") this.state = event.state || this.state;
    this.onEvent(event);
  }
}
