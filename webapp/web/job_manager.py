"""Training jobs' manager: the queue, and the relay from a worker to the Socket.IO rooms, over the history in
webapp.web.job_history (SQLite). The routes and socket events are in webapp.web.jobs.

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
import socket
import threading
import time
import uuid
from collections import deque
from pathlib import Path

from flask_socketio import join_room, rooms

from webapp.core.class_data import storable  # SQLite binds text as strict UTF-8
from webapp.core.datasets import data_choices
from webapp.core.training import JobSpec, SpecError, parse_spec
from webapp.web.job_history import FINAL_STATES, JobDatabase
from webapp.web.lab import ApiError

log = logging.getLogger(__name__)


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


