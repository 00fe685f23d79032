"""Training jobs' manager and their history: the queue, the SQLite store of jobs and events, and the relay from
a worker to the Socket.IO rooms. The routes and socket events are in webapp.web.jobs.

A job is a spec in and ordered events out (see webapp.core.training). Where it runs is the worker's business
(webapp.core.execution): a child process here (`LocalWorker`, the default: the queue is this process's, one job
at a time), or Celery workers anywhere (`CeleryWorker`, with NEURONLAB_REDIS_URL: Celery queues, and every web
process shares the history through SQLite in NEURONLAB_HOME).

Each event is stored once, keyed by (job, seq), and relayed to the room `job:<id>` by whoever stored it: with
several web processes reading the same events, the one whose insert succeeded sends it (through Flask-SocketIO's
message queue, to every process's clients). A client that subscribes gets the history, then the live events;
a gap it sees (events relayed by another process just before it joined) it fills with the `history` event.
"""
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from urllib.parse import quote

from flask_socketio import join_room, rooms

from webapp.core.class_data import storable  # SQLite binds text as strict UTF-8
from webapp.core.datasets import data_choices
from webapp.core.training import JobSpec, SpecError, parse_spec
from webapp.web.lab import READ_ONLY, ApiError, storage_reason, writing

log = logging.getLogger(__name__)

FINAL_STATES = ("succeeded", "failed", "cancelled", "interrupted")
SQLITE_HEADER = b"SQLite format 3\x00"
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
    last_seq INTEGER NOT NULL DEFAULT 0,
    host TEXT,                   -- the machine that trained it
    dispatched REAL              -- distributed mode: when a web process sent it to Celery (NULL: not yet)
);
CREATE TABLE IF NOT EXISTS events (
    job TEXT NOT NULL REFERENCES jobs(id),
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,          -- the whole event as JSON
    PRIMARY KEY (job, seq)
);
"""
ADDED_COLUMNS = {"host": "TEXT", "dispatched": "REAL"}  # to histories written before they existed
BUSY_TIMEOUT_S = 10  # several web processes write the one history: a write waits its turn this long


class JobDatabase:
    """Jobs and their events in one SQLite file (WAL). One connection and one lock per process: writes are a few
    a second at most. Several processes may share the file (the distributed mode): an event is stored once,
    whoever inserts its (job, seq) first; `append` says whether this call did.

    A file that is not a database, or a damaged one, is moved aside (its name is
    in `moved_aside`) and a fresh history starts. A folder that cannot be written
    gives a read-only history (`write_problem` says why) whose writes answer 507.
    Events the disk refuses mid-job live in memory (`remember`) until a restart."""

    def __init__(self, path):
        self.path = Path(path)
        self.moved_aside = None  # the name a damaged history was moved to
        self.write_problem = None  # (kind, words) when nothing can be written
        self._memory = {}  # job id -> {"fields": {...}, "events": [...]}: what the disk refused
        self._lock = threading.Lock()
        self._db = self._open()

    def _open(self):
        problem = self._damage()
        if problem is not None and self._move_aside(problem):
            return self._connect()
        if problem is not None:
            return self._connect_read_only()
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            if damaged(exc):
                if self._move_aside(exc):
                    return self._connect()
            else:
                reason = storage_reason(exc)
                if reason is None:
                    raise
                self.write_problem = reason
                log.warning("the job history %s cannot be written (%s): it is read-only until a restart",
                            self.path.name, exc)
        return self._connect_read_only()

    def _damage(self):
        """Why the file is not a whole database, or None; looked at read-only, so that a
        damaged file (and its -wal) is moved aside exactly as it was."""
        try:
            with open(self.path, "rb") as f:
                header = f.read(len(SQLITE_HEADER))
        except FileNotFoundError:
            return None
        except OSError:
            return None  # unreadable: the writable open says why
        if header and header != SQLITE_HEADER:
            return sqlite3.DatabaseError("file is not a database")
        try:
            db = sqlite3.connect(f"file:{quote(str(self.path))}?mode=ro", uri=True)
            try:
                check = db.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            return exc if damaged(exc) else None
        return None if check == "ok" else sqlite3.DatabaseError(f"database disk image is malformed: {check}")

    def _connect(self):
        db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; fast enough per event
            db.executescript(SCHEMA)
            have = {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}
            for name, kind in ADDED_COLUMNS.items():
                if name not in have:
                    try:
                        db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
                    except sqlite3.OperationalError as exc:  # another process added it just now
                        if "duplicate column" not in str(exc):
                            raise
            check = db.execute("PRAGMA quick_check").fetchone()[0]  # a truncated file opens, then fails later
            if check != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {check}")
        except BaseException:
            db.close()
            raise
        return db

    def _connect_read_only(self):
        """The history as it is, never written ("immutable": no -wal or -shm file is made); else an empty one."""
        if self.write_problem is None:
            self.write_problem = ("read_only", READ_ONLY)
        if self.path.is_file() and not self.moved_aside:
            try:
                db = sqlite3.connect(f"file:{quote(str(self.path))}?mode=ro&immutable=1", uri=True,
                                     check_same_thread=False, isolation_level=None)
                db.row_factory = sqlite3.Row
                db.execute("SELECT count(*) FROM jobs JOIN events ON 0").fetchone()
                return db
            except sqlite3.DatabaseError as exc:
                log.warning("the job history %s cannot be read either (%s): showing an empty one", self.path.name, exc)
        db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.executescript(SCHEMA)
        return db

    def _move_aside(self, exc):
        """Rename the damaged file (and its -wal, -shm) to <name>.corrupt-<time>; False if that failed."""
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        n = 1
        while aside.exists():
            n += 1
            aside = aside.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        try:
            for suffix in ("-wal", "-shm", ""):  # the main file last: never a fresh file beside an old -wal
                part = self.path.with_name(self.path.name + suffix)
                if part.exists():
                    os.replace(part, aside.with_name(aside.name + suffix))
        except OSError as exc2:
            self.write_problem = storage_reason(exc2)
            log.error("the job history %s is damaged (%s) and could not be moved aside (%s): "
                      "an empty history is shown until a restart", self.path.name, exc, exc2.strerror)
            return False
        self.moved_aside = aside.name
        log.error("the job history %s was damaged (%s): moved aside as %s; a fresh history starts",
                  self.path, exc, aside.name)
        return True

    def _refuse_writes(self, doing):
        if self.write_problem:
            kind, words = self.write_problem
            raise ApiError(507, f"{doing}: {words}", reason=kind)

    def create(self, job_id, spec):
        """Store a new job; ApiError 507 when the disk refuses."""
        self._refuse_writes("could not store the job")
        with self._lock, writing("could not store the job"):
            self._db.execute(
                "INSERT INTO jobs (id, net, params, state, created) VALUES (?, ?, ?, 'queued', ?)",
                (job_id, spec.net, json.dumps(spec.to_dict()), time.time()),
            )

    def append(self, event, **job_fields):
        """Store one event and update the job's row, in one transaction. True if this call stored it, False if
        the (job, seq) was stored already (by another process); ApiError 507 when the disk refuses."""
        if event["job"] in self._memory:
            raise ApiError(507, "the job has already ended: its events could not be stored", reason="ended")
        self._refuse_writes("could not store the job's progress")
        sets = ", ".join(f"{name} = ?" for name in job_fields)
        try:
            with self._lock, writing("could not store the job's progress"), self._db:
                self._db.execute("BEGIN IMMEDIATE")  # the write lock first: no stale read to upgrade
                self._db.execute(
                    "INSERT INTO events (job, seq, type, body) VALUES (?, ?, ?, ?)",
                    (event["job"], event["seq"], event["type"], json.dumps(event)),
                )
                self._db.execute(
                    f"UPDATE jobs SET last_seq = max(last_seq, ?){', ' + sets if sets else ''} WHERE id = ?",
                    (event["seq"], *job_fields.values(), event["job"]),
                )
        except sqlite3.IntegrityError:
            return False
        return True

    # -- the distributed mode's dispatch: which process sends a queued job to Celery ------------

    def claim_dispatch(self, job_id):
        """Mark a queued job as being sent; True for the one process that may send it."""
        with self._lock, writing("could not store the job"):
            cursor = self._db.execute("UPDATE jobs SET dispatched = ? WHERE id = ? AND state = 'queued' "
                                      "AND dispatched IS NULL", (time.time(), job_id))
            return cursor.rowcount == 1

    def release_dispatch(self, job_id):
        """Sending failed (Redis away): the job waits for the next try."""
        with self._lock, writing("could not store the job"):
            self._db.execute("UPDATE jobs SET dispatched = NULL WHERE id = ?", (job_id,))

    def release_queued(self):
        """Every queued job is to be sent again (Redis lost Celery's queue); how many."""
        with self._lock, writing("could not store the job"):
            return self._db.execute("UPDATE jobs SET dispatched = NULL WHERE state = 'queued'").rowcount

    def undispatched(self):
        """Queued jobs no process has sent, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs WHERE state = 'queued' AND dispatched IS NULL "
                                    "ORDER BY created").fetchall()
            return [self._with_memory(_job_dict(row)) for row in rows]

    def count_queued(self):
        with self._lock:
            return self._db.execute("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0]

    def remember(self, event, **job_fields):
        """Keep an event the disk refused, and the job's new fields, in memory: the job ends with it."""
        with self._lock:
            memory = self._memory.setdefault(event["job"], {"fields": {}, "events": []})
            memory["events"].append(event)
            memory["fields"].update(job_fields, last_seq=event["seq"])

    def _with_memory(self, job):
        memory = self._memory.get(job["id"])
        if memory:
            job.update(memory["fields"])
        return job

    def job(self, job_id):
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return self._with_memory(_job_dict(row)) if row else None

    def jobs(self, limit=HISTORY_LIMIT):
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,)).fetchall()
            return [self._with_memory(_job_dict(row)) for row in rows]

    def unfinished(self):
        placeholders = ", ".join("?" * len(FINAL_STATES))
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM jobs WHERE state NOT IN ({placeholders}) ORDER BY created", FINAL_STATES
            ).fetchall()
            return [job for job in (self._with_memory(_job_dict(row)) for row in rows)
                    if job["state"] not in FINAL_STATES]

    def events(self, job_id, after=0, type_=None, limit=-1):
        """The job's events after seq `after`, in order; only those of `type_` when given; at most `limit`."""
        where, args = ("AND type = ?", (type_,)) if type_ else ("", ())
        with self._lock:
            rows = self._db.execute(
                f"SELECT body FROM events WHERE job = ? AND seq > ? {where} ORDER BY seq LIMIT ?",
                (job_id, after, *args, limit),
            ).fetchall()
            remembered = self._memory.get(job_id, {}).get("events", [])
        events = [json.loads(row["body"]) for row in rows] + [
            e for e in remembered if e["seq"] > after and (type_ is None or e["type"] == type_)]
        return events if limit < 0 else events[:limit]

    def close(self):
        with self._lock:
            self._db.close()


def damaged(exc):
    """Whether SQLite's error means the file is not a (whole) database, rather than that it cannot be written."""
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc).lower()
    return code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or "malformed" in text or "not a database" in text


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
    """The queue, the history and the relay from a worker to the Socket.IO rooms.

    Embedded (no NEURONLAB_REDIS_URL): the queue is this process's, and a LocalWorker runs one job at a time.
    Distributed: Celery queues and its workers take one job each; the queued jobs are the history's, shared by
    every web process, and a CeleryWorker sends them and relays what comes back."""

    FINAL_STATES = FINAL_STATES

    def __init__(self, lab, socketio, worker=None):
        self.lab = lab
        self.settings = lab.settings
        self.socketio = socketio
        self.distributed = bool(getattr(self.settings, "redis_url", None))
        self.db = JobDatabase(lab.home / "jobs.sqlite3")
        self._job_locks = {}
        self._locks_lock = threading.Lock()
        self._queue = deque()
        self._running = None
        self._cancelled = set()
        self._wake = threading.Condition()
        if not self.distributed:
            self.recover()  # distributed: unfinished jobs run elsewhere; the watcher fails the lost ones
        self.worker = worker or self._make_worker()
        if not self.distributed:
            self._dispatcher = threading.Thread(target=self._dispatch, name="job-dispatcher", daemon=True)
            self._dispatcher.start()

    def _make_worker(self):
        if self.distributed:
            from webapp.core.execution.remote import CeleryWorker

            return CeleryWorker(self.settings, self)
        from webapp.core.execution.local import LocalWorker

        return LocalWorker(self.settings, self)

    def spec_of(self, job):
        """The JobSpec a stored job was made from (its params, the server's npz path included)."""
        return JobSpec(**job["params"])

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
        job_id = uuid.uuid4().hex[:10]
        if spec.data not in ("mnist", "sample"):  # a dataset of the class's drawings
            self._queue_has_room()
            self._dataset_spec(job_id, spec)
        try:
            with self._wake:
                self._queue_has_room()
                self.db.create(job_id, spec)
                queued = self._append_own(job_id, "state", state="queued", params=public_params(spec.to_dict()))
                if not self.distributed:
                    self._queue.append((job_id, spec))
                    self._wake.notify_all()
                position = self.queued_count()
        except BaseException:
            drop_job_data(self.lab.home, job_id)
            raise
        self._announce(job_id)
        if self.distributed:  # Celery queues it; with Redis away it waits, queued, for the dispatcher
            self.worker.submit(job_id, spec, queued["seq"])
        return {"id": job_id, "state": "queued", "position": position}

    def _queue_has_room(self):
        waiting = self.queued_count()
        if waiting >= self.settings.max_queued_jobs:
            raise ApiError(429, f"{waiting} jobs are already waiting (the limit is "
                           f"{self.settings.max_queued_jobs}): wait for one to finish or cancel one")

    def _dataset_spec(self, job_id, spec):
        """A job on the class's drawings: write the dataset's npz to job-data/<job id>.npz and fill
        `spec.dataset` (the runner reads it). The built-in class-digits fine-tunes the class's active model of
        the job's network. 400 for an unknown dataset or too few drawings, 507 when the disk refuses."""
        from webapp.web.datasets_api import job_dataset

        if spec.net == "xor":
            raise ApiError(400, "data: XOR learns its four points; a dataset needs mlp, mlp2 or cnn", field="data")
        path = job_data_path(self.lab.home, job_id)
        dataset = job_dataset(spec.data, path)
        base_model = self.lab.active().get(spec.net) if dataset["builtin"] else None
        spec.dataset = {"id": dataset["id"], "name": dataset["name"], "labels": dataset["labels"],
                        "npz": str(path.resolve()), "base_model": base_model}

    def cancel(self, job_id):
        job = self.get(job_id)
        if job["state"] in FINAL_STATES:
            raise ApiError(409, f"job {job_id} has already {job['state']}", state=job["state"])
        if self.distributed:
            return self._cancel_distributed(job)
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

    def _cancel_distributed(self, job):
        """The cancel key reaches the worker within a batch; a job no worker has taken ends here and now (a
        worker that takes it later finds the key and skips it)."""
        self.worker.cancel(job["id"])
        if job["state"] == "queued":
            event = self._append_own(job["id"], "done", state="cancelled")
            if event is not None:
                self._announce(job["id"])
                drop_job_data(self.lab.home, job["id"])
                return {"id": job["id"], "state": "cancelled"}
        return {"id": job["id"], "state": "cancelling"}

    def get(self, job_id):
        job = self.db.job(job_id) if isinstance(job_id, str) and storable(job_id) else None
        if job is None:
            raise ApiError(404, f"no job called {str(job_id)[:40]!r}")
        return job

    def list(self):
        return self.db.jobs()

    def queued_count(self):
        if self.distributed:
            return self.db.count_queued()  # every web process's
        with self._wake:
            return len(self._queue)

    # -- events -----------------------------------------------------------

    def publish(self, event):
        """Store an event and send it to the job's room (called by the worker).

        Events already stored (seq not beyond the last, or stored by another
        web process) and events after the job's end are dropped, so a worker
        that delivers at least once is fine. Only the call that stored an event sends it."""
        job_id = event["job"]
        with self.job_lock(job_id):
            job = self.db.job(job_id)
            if job is None or event["seq"] <= job["last_seq"] or job["state"] in FINAL_STATES:
                return
            if event["type"] == "done":
                self.lab.store.refresh()  # the worker saved a model: list it before anyone hears of it
                drop_job_data(self.lab.home, job_id)  # the runner read it at the start
            try:
                if not self.db.append(event, **self._job_changes(job, event)):
                    return  # another web process stored it, and sends it
            except ApiError as exc:  # the disk refused it (full, read-only): the job fails with that reason
                self.events_not_stored(job_id, exc)
                return
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
            for name in ("device", "data", "host"):
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
        """An event the manager itself writes (queued, starting, a lost job's end), as the job's next seq.
        If another process stores that seq first (a worker's event, another process's verdict), it is tried
        once more after it, unless the job has ended meanwhile: then it returns None (recorded already)."""
        with self.job_lock(job_id):
            for _ in range(2):
                job = self.db.job(job_id)
                if type_ == "done" and job["state"] in FINAL_STATES:
                    return None
                event = {"job": job_id, "seq": job["last_seq"] + 1, "type": type_, **fields}
                if self.db.append(event, **self._job_changes(job, event)):
                    self.socketio.emit("job", event, to=room(job_id))
                    return event
        return None

    def _announce(self, job_id):
        """Tell every open page that a job's row in the history changed."""
        self.socketio.emit("jobs", {"job": public_job(self.db.job(job_id))})

    def subscribe(self, job_id, after, send):
        """Send the history after `after` with `send`, then join the live room,
        under the job's lock so that no live event slips in between.

        A connection is subscribed to a job once. One already in the room has
        been sent every event up to the job's last (its history, then each live
        event as it was stored), so a repeated subscribe sends nothing again,
        whatever its `after`: 500 of them once pushed 91,000 events to one
        client. The room is the record: it goes with unsubscribe and disconnect.
        Returns (the job, whether the connection was subscribed already)."""
        if not storable(job_id):
            raise ApiError(404, f"no job called {job_id[:40]!r}")  # SQLite cannot even look a lone surrogate up
        self.get(job_id)  # unknown -> 404, before making it a lock
        with self.job_lock(job_id):
            job = self.get(job_id)
            if room(job_id) in rooms():
                return job, True
            sent = after
            for event in self.db.events(job_id, after):
                send(event)
                sent = event["seq"]
            join_room(room(job_id))
            # Another web process may have relayed an event between that read and the join: send what was
            # stored meanwhile (the client drops a repeat by its seq).
            for event in self.db.events(job_id, sent):
                send(event)
        return job, False

    # -- the queue --------------------------------------------------------

    def _dispatch(self):
        while True:
            with self._wake:
                while self._running or not self._queue:
                    self._wake.wait()
                job_id, spec = self._queue.popleft()
                self._running = job_id
            try:
                start_seq = self._append_own(job_id, "state", state="starting", host=socket.gethostname())["seq"]
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
            try:
                if cancelled:
                    self._append_own(job_id, "done", state="cancelled")
                else:
                    self._append_own(job_id, "done", state="failed",
                                     error=reason or "the training process ended without reporting a result")
                self._announce(job_id)
            except ApiError as exc:  # the job still ends, in memory, so the queue goes on
                self.events_not_stored(job_id, exc)
        drop_job_data(self.lab.home, job_id)
        with self._wake:
            self._cancelled.discard(job_id)
            if self._running == job_id:
                self._running = None
            self._wake.notify_all()

    def recover(self):
        """After a restart: jobs that were queued or running end as `interrupted`
        (in memory only, when the history cannot be written)."""
        for job in self.db.unfinished():
            with self.job_lock(job["id"]):
                event = {"job": job["id"], "seq": job["last_seq"] + 1, "type": "done", "state": "interrupted",
                         "error": "the server stopped before this job finished"}
                fields = {"state": "interrupted", "finished": time.time(), "error": event["error"]}
                try:
                    self.db.append(event, **fields)
                except ApiError:
                    self.db.remember(event, **fields)
                drop_job_data(self.lab.home, job["id"])

    def notice(self):
        """What /train tells everyone about the history: moved aside, or read-only; None when all is well."""
        if self.db.moved_aside:
            return (f"The job history could not be read, so it was moved aside as {self.db.moved_aside} "
                    "in the instance folder and a new history started.")
        problem = self.db.write_problem[1] if self.db.write_problem else getattr(self.lab, "write_problem", None)
        if problem:
            return f"Nothing can be saved (jobs, models): {problem}."
        return None

    def events_not_stored(self, job_id, reason):
        """The disk refused a job's event (full, read-only; `reason`: the ApiError or its
        words): the job fails with that reason, kept in memory until a restart, and its training stops."""
        with self.job_lock(job_id):
            job = self.db.job(job_id)
            if job is None or job["state"] in FINAL_STATES:
                return
            event = {"job": job_id, "seq": job["last_seq"] + 1, "type": "done", "state": "failed",
                     "error": getattr(reason, "message", str(reason))}
            self.db.remember(event, state="failed", finished=time.time(), error=event["error"])
            self.socketio.emit("job", event, to=room(job_id))
        log.warning("job %s failed: %s", job_id, event["error"])
        self._announce(job_id)
        self.worker.cancel(job_id)

    def close(self):
        self.worker.close()


def room(job_id):
    return f"job:{job_id}"


MAX_SEQ = 2**63 - 1  # SQLite's integers are 64-bit: a larger `after` cannot even be compared


PUBLIC_FIELDS = ("id", "net", "params", "state", "created", "started", "finished", "device", "host", "data", "error",
                 "epochs_done", "logs", "test_accuracy", "model", "seconds", "parameters", "last_seq")


def public_job(job):
    public = {k: job[k] for k in PUBLIC_FIELDS if k in job}
    if isinstance(public.get("params"), dict):
        public["params"] = public_params(public["params"])
    return public


def public_params(params):
    """A job's spec as clients see it: a dataset job's npz path is the server's business."""
    dataset = params.get("dataset")
    if isinstance(dataset, dict) and "npz" in dataset:
        params = {**params, "dataset": {k: v for k, v in dataset.items() if k != "npz"}}
    return params


JOB_DATA = "job-data"  # NEURONLAB_HOME/job-data/<job id>.npz: a dataset job's drawings, until the job ends


def job_data_path(home, job_id):
    return Path(home) / JOB_DATA / f"{job_id}.npz"


def drop_job_data(home, job_id):
    try:
        job_data_path(home, job_id).unlink(missing_ok=True)
    except OSError as exc:  # a read-only folder: a leftover file, nothing worse
        log.warning("could not remove the data of job %s: %s", job_id, exc.strerror)


