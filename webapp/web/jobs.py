"""Training jobs: the REST API, the Socket.IO rooms, the queue and the history.

A job is a spec in and ordered events out (see webapp.core.training). The
`JobManager` keeps every job and every event in SQLite, runs one job at a time
through a worker (webapp.web.worker), and relays each event to the Socket.IO
room `job:<id>`. A client that subscribes gets the history first, then the
live events, with nothing lost, repeated or out of order: both happen under
the job's lock, and each event is stored before it is sent.
"""
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections import deque

from flask import Blueprint, current_app, jsonify, request
from flask_socketio import emit, join_room, leave_room

from webapp.core.datasets import data_choices
from webapp.core.networks import OPTIMIZERS, RECIPES
from webapp.core.training import LIMITS, SpecError, parse_spec
from webapp.web.auth import teacher_required
from webapp.web.lab import ApiError

log = logging.getLogger(__name__)

FINAL_STATES = ("succeeded", "failed", "cancelled", "interrupted")
HISTORY_LIMIT = 100

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    net TEXT NOT NULL,
    params TEXT NOT NULL,        -- the JobSpec as JSON
    state TEXT NOT NULL,         -- queued, starting, running, or a final state
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    device TEXT,
    data TEXT,
    error TEXT,
    summary TEXT NOT NULL DEFAULT '{}',  -- final figures, for the history table
    last_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
    job TEXT NOT NULL REFERENCES jobs(id),
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,          -- the whole event as JSON
    PRIMARY KEY (job, seq)
);
"""


class JobDatabase:
    """Jobs and their events in one SQLite file. One connection, one lock:
    writes are a few a second at most."""

    def __init__(self, path):
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; fast enough per event
            self._db.executescript(SCHEMA)

    def create(self, job_id, spec):
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, net, params, state, created) VALUES (?, ?, ?, 'queued', ?)",
                (job_id, spec.net, json.dumps(spec.to_dict()), time.time()),
            )

    def append(self, event, **job_fields):
        """Store one event and update the job's row, in one transaction."""
        sets = ", ".join(f"{name} = ?" for name in job_fields)
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO events (job, seq, type, body) VALUES (?, ?, ?, ?)",
                (event["job"], event["seq"], event["type"], json.dumps(event)),
            )
            self._db.execute(
                f"UPDATE jobs SET last_seq = ?{', ' + sets if sets else ''} WHERE id = ?",
                (event["seq"], *job_fields.values(), event["job"]),
            )

    def job(self, job_id):
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job_dict(row) if row else None

    def jobs(self, limit=HISTORY_LIMIT):
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,)).fetchall()
        return [_job_dict(row) for row in rows]

    def unfinished(self):
        placeholders = ", ".join("?" * len(FINAL_STATES))
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM jobs WHERE state NOT IN ({placeholders}) ORDER BY created", FINAL_STATES
            ).fetchall()
        return [_job_dict(row) for row in rows]

    def events(self, job_id, after=0):
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM events WHERE job = ? AND seq > ? ORDER BY seq", (job_id, after)
            ).fetchall()
        return [json.loads(row["body"]) for row in rows]

    def close(self):
        with self._lock:
            self._db.close()


def _job_dict(row):
    job = dict(row)
    job["params"] = json.loads(job["params"])
    job.update(json.loads(job.pop("summary") or "{}"))
    return job


def _summary(event):
    """The figures of a job's last event that the history table shows."""
    if event["type"] == "epoch":
        return {"epochs_done": event["epoch"], "logs": event.get("logs", {})}
    if event["type"] == "done":
        result = event.get("result") or {}
        keep = ("test_accuracy", "model", "seconds", "device", "data", "parameters")
        return {k: result[k] for k in keep if k in result}
    return {}


class JobManager:
    """The queue, the history and the relay from a worker to the Socket.IO rooms."""

    def __init__(self, lab, socketio, worker=None):
        from webapp.web.worker import LocalWorker

        self.lab = lab
        self.settings = lab.settings
        self.socketio = socketio
        self.db = JobDatabase(lab.home / "jobs.sqlite3")
        self._job_locks = {}
        self._locks_lock = threading.Lock()
        self._queue = deque()
        self._running = None
        self._cancelled = set()
        self._wake = threading.Condition()
        self.recover()
        self.worker = worker or LocalWorker(self.settings, self)
        self._dispatcher = threading.Thread(target=self._dispatch, name="job-dispatcher", daemon=True)
        self._dispatcher.start()

    # -- locks ------------------------------------------------------------

    def job_lock(self, job_id):
        with self._locks_lock:
            return self._job_locks.setdefault(job_id, threading.RLock())

    # -- the API ----------------------------------------------------------

    def submit(self, params):
        data = data_choices(self.settings.mnist)
        if isinstance(params, dict) and params.get("data") is None:  # the data this server really has
            params = {**params, "data": data["default"]}
        try:
            spec = parse_spec(params)
        except SpecError as exc:
            raise ApiError(400, str(exc), field=exc.field) from None
        if spec.net != "xor" and spec.data == "mnist" and not data["mnist"]["available"]:
            raise ApiError(400, "data: full MNIST is not available. " + data["mnist"]["why"], field="data")
        with self._wake:
            if len(self._queue) >= self.settings.max_queued_jobs:
                raise ApiError(429, f"{len(self._queue)} jobs are already waiting (the limit is "
                               f"{self.settings.max_queued_jobs}): wait for one to finish or cancel one")
            job_id = uuid.uuid4().hex[:10]
            self.db.create(job_id, spec)
            self._append_own(job_id, "state", state="queued", params=spec.to_dict())
            self._queue.append((job_id, spec))
            position = len(self._queue)
            self._wake.notify_all()
        self._announce(job_id)
        return {"id": job_id, "state": "queued", "position": position}

    def cancel(self, job_id):
        job = self.get(job_id)
        if job["state"] in FINAL_STATES:
            raise ApiError(409, f"job {job_id} has already {job['state']}", state=job["state"])
        with self._wake:
            queued = next((item for item in self._queue if item[0] == job_id), None)
            if queued:
                self._queue.remove(queued)
            else:
                self._cancelled.add(job_id)
        if queued:
            self._append_own(job_id, "done", state="cancelled")
            self._announce(job_id)
            return {"id": job_id, "state": "cancelled"}
        self.worker.cancel(job_id)
        return {"id": job_id, "state": "cancelling"}

    def get(self, job_id):
        job = self.db.job(job_id) if isinstance(job_id, str) else None
        if job is None:
            raise ApiError(404, f"no job called {str(job_id)[:40]!r}")
        return job

    def list(self):
        return self.db.jobs()

    def queued_count(self):
        with self._wake:
            return len(self._queue)

    # -- events -----------------------------------------------------------

    def publish(self, event):
        """Store an event and send it to the job's room (called by the worker).

        Events already stored (seq not beyond the last) are dropped, so a
        worker that delivers at least once is fine."""
        job_id = event["job"]
        with self.job_lock(job_id):
            job = self.db.job(job_id)
            if job is None or event["seq"] <= job["last_seq"]:
                return
            if event["type"] == "done":
                self.lab.store.refresh()  # the worker saved a model: list it before anyone hears of it
            self.db.append(event, **self._job_changes(job, event))
            self.socketio.emit("job", event, to=room(job_id))
        if event["type"] in ("state", "done"):
            self._announce(job_id)
        if event["type"] == "done" and (event.get("result") or {}).get("model"):
            self.socketio.emit("models", {"trained": event["result"]["model"]})  # pages refresh their pickers

    def _job_changes(self, job, event):
        changes = {}
        if event["type"] == "state":
            changes["state"] = event.get("state", job["state"])
            if changes["state"] == "starting":
                changes["started"] = time.time()
            for name in ("device", "data"):
                if event.get(name):
                    changes[name] = event[name]
        elif event["type"] == "done":
            changes.update(state=event["state"], finished=time.time(), error=event.get("error"))
        summary = _summary(event)
        if summary:
            current = {k: job[k] for k in ("epochs_done", "logs", "test_accuracy", "model", "seconds",
                                              "parameters") if k in job}
            changes["summary"] = json.dumps({**current, **summary})
        return changes

    def _append_own(self, job_id, type_, **fields):
        """An event the manager itself writes (queued, starting, a lost job's end)."""
        with self.job_lock(job_id):
            job = self.db.job(job_id)
            event = {"job": job_id, "seq": job["last_seq"] + 1, "type": type_, **fields}
            self.db.append(event, **self._job_changes(job, event))
            self.socketio.emit("job", event, to=room(job_id))
        return event

    def _announce(self, job_id):
        """Tell every open page that a job's row in the history changed."""
        self.socketio.emit("jobs", {"job": public_job(self.db.job(job_id))})

    def subscribe(self, job_id, after, send):
        """Send the history after `after` with `send`, then `join` the live room,
        under the job's lock so that no live event slips in between."""
        self.get(job_id)  # unknown -> 404, before making it a lock
        with self.job_lock(job_id):
            job = self.get(job_id)
            for event in self.db.events(job_id, after):
                send(event)
            join_room(room(job_id))
        return job

    # -- the queue --------------------------------------------------------

    def _dispatch(self):
        while True:
            with self._wake:
                while self._running or not self._queue:
                    self._wake.wait()
                job_id, spec = self._queue.popleft()
                self._running = job_id
            try:
                start_seq = self._append_own(job_id, "state", state="starting")["seq"]
                self._announce(job_id)
                self.worker.submit(job_id, spec, start_seq)
            except Exception as exc:  # the worker could not start: fail this job, keep the queue going
                log.exception("could not start job %s", job_id)
                self.worker_finished(job_id, f"the worker could not start: {exc}")
                continue
            with self._wake:
                cancelled = job_id in self._cancelled
            if cancelled:  # cancelled while it was being handed to the worker
                self.worker.cancel(job_id)

    def worker_finished(self, job_id, reason):
        """The worker is done with a job. If it never said how the job ended
        (a crash, an OOM kill), record a `done` event that says why."""
        job = self.db.job(job_id)
        if job and job["state"] not in FINAL_STATES:
            with self._wake:
                cancelled = job_id in self._cancelled
            if cancelled:
                self._append_own(job_id, "done", state="cancelled")
            else:
                self._append_own(job_id, "done", state="failed",
                                 error=reason or "the training process ended without reporting a result")
            self._announce(job_id)
        with self._wake:
            self._cancelled.discard(job_id)
            if self._running == job_id:
                self._running = None
            self._wake.notify_all()

    def recover(self):
        """After a restart: jobs that were queued or running end as `interrupted`."""
        for job in self.db.unfinished():
            with self.job_lock(job["id"]):
                event = {"job": job["id"], "seq": job["last_seq"] + 1, "type": "done", "state": "interrupted",
                         "error": "the server stopped before this job finished"}
                self.db.append(event, state="interrupted", finished=time.time(), error=event["error"])

    def close(self):
        self.worker.close()


def room(job_id):
    return f"job:{job_id}"


PUBLIC_FIELDS = ("id", "net", "params", "state", "created", "started", "finished", "device", "data", "error",
                 "epochs_done", "logs", "test_accuracy", "model", "seconds", "parameters", "last_seq")


def public_job(job):
    return {k: job[k] for k in PUBLIC_FIELDS if k in job}


# -- REST ---------------------------------------------------------------------

bp = Blueprint("jobs", __name__, url_prefix="/api")


def manager():
    return current_app.extensions["neuronlab"].jobs


@bp.post("/jobs")
@teacher_required
def create_job():
    params = request.get_json(silent=True)
    if not isinstance(params, dict):
        raise ApiError(400, 'the body must be a JSON object like {"net": "cnn", "epochs": 8}', field="body")
    return jsonify(manager().submit(params)), 202


@bp.get("/jobs")
def list_jobs():
    return jsonify({"jobs": [public_job(job) for job in manager().list()],
                    "queued": manager().queued_count(), "max_queued": manager().settings.max_queued_jobs})


@bp.get("/jobs/<job_id>")
def get_job(job_id):
    job = manager().get(job_id)
    after = request.args.get("after", "0")
    if not after.isdigit():
        raise ApiError(400, "after must be a whole number (a seq)", field="after")
    return jsonify({**public_job(job), "events": manager().db.events(job_id, int(after))})


@bp.delete("/jobs/<job_id>")
@teacher_required
def cancel_job(job_id):
    return jsonify(manager().cancel(job_id)), 202


@bp.get("/networks")
def networks():
    """The tutorial's recipes (the form's defaults), the allowed ranges and the data this server has."""
    return jsonify({
        "data": data_choices(manager().settings.mnist),
        "networks": {name: {"optimizer": r.optimizer, "learning_rate": r.learning_rate, "epochs": r.epochs,
                            "batch_size": r.batch_size, "hidden": r.hidden} for name, r in RECIPES.items()},
        "optimizers": list(OPTIMIZERS),
        "limits": LIMITS,
    })


# -- Socket.IO ----------------------------------------------------------------

def register_events(socketio, jobs):
    @socketio.on("subscribe")
    def subscribe(data=None, *_extra):  # no payload, or several, must get an error ack, not a TypeError
        """{"job": id, "after": seq?} -> the history as `job` events, then live ones."""
        if not isinstance(data, dict) or not isinstance(data.get("job"), str):
            return {"error": 'send {"job": "<id>", "after": <seq, optional>}', "status": 400}
        after = data.get("after", 0) or 0
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            return {"error": "after must be a whole number (the last seq you have)", "status": 400}
        try:
            job = jobs.subscribe(data["job"], after, lambda event: emit("job", event))
        except ApiError as exc:
            return {**exc.to_dict(), "status": exc.status}
        return {"ok": True, "job": public_job(job)}

    @socketio.on("unsubscribe")
    def unsubscribe(data=None, *_extra):
        if isinstance(data, dict) and isinstance(data.get("job"), str):
            leave_room(room(data["job"]))
        return {"ok": True}


def init_app(app, socketio, lab):
    lab.jobs = JobManager(lab, socketio)
    app.register_blueprint(bp)
    register_events(socketio, lab.jobs)
