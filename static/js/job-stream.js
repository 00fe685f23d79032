// Follows one job's events over Socket.IO: history first, then live, each exactly once and in order.
// Every event has a seq (1, 2, 3, ...): one this page has already is dropped; one beyond the next (a gap: with
// several web processes, events may come from any of them, and one relayed just before this connection joined
// may be missed) is held while the `history` event fetches what is missing, then applied in order. After a
// reconnect (to the same process or another) it subscribes again from the last seq it has. While a live job's
// stream is quiet for QUIET_MS it asks `history` too: an event lost with a message queue that restarted (a
// job's `done`, say) still arrives. A connection is subscribed to a job once, so showing the same job again
// replays the events kept here.
//
// followClass() makes the stream follow the class as well: when the teacher starts a job, every page that
// follows the class switches to it, unless the job it shows is still live. /train and /xor both use this.
"use strict";

const LIVE_JOB_STATES = ["queued", "starting", "running"];
const QUIET_MS = 5000; // a live job silent this long: ask the history whether something was missed

class JobStream {
  constructor(socket, onEvent) {
    this.socket = socket;
    this.onEvent = onEvent;
    this.jobId = null;
    this.state = null; // the followed job's last known state
    this.lastSeq = 0;
    this.events = []; // the followed job's events so far, for showing it again
    this.filling = false; // a `history` request is out
    this.held = new Map(); // seq -> a live event beyond a gap, applied once the gap is filled
    this.lastHeard = Date.now();
    this.quietTimer = setInterval(() => this.checkQuiet(), QUIET_MS);
    this.classRule = null;
    this.followed = new Set(); // jobs this page has shown: the class rule never switches back to one by itself
    this.known = new Map(); // id -> the latest announcement of each accepted job that may still be live
    socket.on("job", (event) => this.receive(event));
    socket.on("connect", () => { // a new connection has no rooms, and may have missed announcements
      if (this.jobId) this.subscribe();
      if (this.classRule) this.catchUp();
    });
  }

  follow(jobId, state = null) {
    if (jobId === this.jobId) { // followed already: the server will not send its events again
      if (state) this.state = state;
      for (const event of this.events) this.onEvent(event);
      return;
    }
    if (this.jobId && this.socket.connected) {
      this.socket.emit("unsubscribe", { job: this.jobId });
    }
    this.jobId = jobId;
    this.state = state;
    this.lastSeq = 0;
    this.events = [];
    this.held.clear();
    this.lastHeard = Date.now();
    this.followed.add(jobId);
    if (this.socket.connected) this.subscribe();
  }

  get live() { return this.jobId !== null && (this.state === null || LIVE_JOB_STATES.includes(this.state)); }

  // Follow the class: `accepts(job)` picks the jobs this page cares about; `show(job)` switches the page to one
  // (and calls follow). On opening, the page shows the live job, else (with `latest`) the newest one.
  // A page switches to a job once, when it is live and the job shown is not: a viewer who went back to an
  // older job stays there, and the next job the teacher starts takes over again.
  followClass({ accepts = () => true, show, latest = false }) {
    this.classRule = { accepts, show, latest, opened: false };
    this.socket.on("jobs", (message) => {
      const job = message && message.job;
      if (job && typeof job.id === "string" && this.classRule.accepts(job)) this.offer(job);
    });
    return this.catchUp();
  }

  offer(job) {
    if (LIVE_JOB_STATES.includes(job.state)) this.known.set(job.id, job);
    else this.known.delete(job.id);
    if (job.id === this.jobId) {
      if (job.state) this.state = job.state;
      if (!this.live) this.showNextLive();
      return;
    }
    if (LIVE_JOB_STATES.includes(job.state) && !this.live && !this.followed.has(job.id)) this.classRule.show(job);
  }

  showNextLive() { // the shown job ended: switch to one that went live meanwhile (queued behind it, say)
    if (!this.classRule) return;
    const waiting = [...this.known.values()].filter((job) => !this.followed.has(job.id));
    const next = waiting.find((j) => j.state !== "queued") || waiting.sort((a, b) => a.created - b.created)[0];
    if (next) this.classRule.show(next);
  }

  async catchUp() { // at opening and after a reconnect: the history says what is live now
    let jobs = [];
    try {
      jobs = ((await (await fetch("/api/jobs")).json()).jobs || []).filter(this.classRule.accepts);
    } catch (err) {
      return jobs; // the server is away; the next reconnect tries again
    }
    const live = jobs.find((j) => ["running", "starting"].includes(j.state))
      || jobs.filter((j) => j.state === "queued").pop(); // the history is newest first: the next to run is last
    for (const job of jobs) if (LIVE_JOB_STATES.includes(job.state)) this.known.set(job.id, job);
    const first = !this.classRule.opened;
    this.classRule.opened = true;
    if (live) this.offer(live);
    else if (first && this.classRule.latest && jobs.length && !this.jobId) this.classRule.show(jobs[0]);
    return jobs;
  }

  subscribe() { // the history after lastSeq, then live events: at opening and after every reconnect
    const jobId = this.jobId;
    this.socket.emit("subscribe", { job: jobId, after: this.lastSeq }, (answer) => {
      if (answer && answer.error && jobId === this.jobId) this.onEvent({ type: "error", error: answer.error });
    });
  }

  receive(event) {
    if (!event || event.job !== this.jobId || !Number.isInteger(event.seq)) return; // another job's
    this.lastHeard = Date.now();
    if (event.seq <= this.lastSeq) return; // seen already (a repeat after a resubscribe or a fill)
    if (event.seq !== this.lastSeq + 1) { // a gap: keep this one, fetch what is missing
      this.held.set(event.seq, event);
      this.fillGap();
      return;
    }
    this.apply(event);
    this.applyHeld();
  }

  apply(event) {
    this.lastSeq = event.seq;
    this.events.push(event);
    if (event.type === "state" || event.type === "done") this.state = event.state || this.state;
    this.onEvent(event);
    if (event.type === "done") this.showNextLive();
  }

  applyHeld() {
    for (const seq of [...this.held.keys()]) if (seq <= this.lastSeq) this.held.delete(seq);
    while (this.held.has(this.lastSeq + 1)) {
      const next = this.held.get(this.lastSeq + 1);
      this.held.delete(next.seq);
      this.apply(next);
    }
  }

  fillGap() { // the stored events after lastSeq, a page at a time, applied in order
    if (this.filling || !this.socket.connected || !this.jobId) return;
    const jobId = this.jobId;
    this.filling = true;
    this.socket.emit("history", { job: jobId, after: this.lastSeq }, (answer) => {
      this.filling = false;
      if (jobId !== this.jobId || !answer || !Array.isArray(answer.events)) return;
      const before = this.lastSeq;
      for (const event of answer.events) if (event.seq === this.lastSeq + 1) this.apply(event);
      this.applyHeld();
      if (answer.more || (this.held.size && this.lastSeq > before)) {
        this.fillGap(); // the next page, or what was stored since
      } else if (this.held.size) { // the stored history has the same gap: show what came, in order
        for (const seq of [...this.held.keys()].sort((a, b) => a - b)) this.apply(this.held.get(seq));
        this.held.clear();
      }
    });
  }

  checkQuiet() { // a live job that has said nothing for a while may have ended unheard
    if (this.live && this.socket.connected && Date.now() - this.lastHeard >= QUIET_MS) {
      this.lastHeard = Date.now();
      this.fillGap();
    }
  }
}
