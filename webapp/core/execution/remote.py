"""The web's side of the distributed mode: jobs go to Celery workers through Redis, and their events come back.

`CeleryWorker` offers the LocalWorker interface (`submit`, `cancel`, `close`) to the JobManager and keeps three
threads in each web process:
- the consumer reads the event stream from where this process last read (from the start after it connects, so
  nothing sent while it was away is missed) and hands each event to `manager.publish`, which stores each seq
  once in the shared history: only the process whose insert stored it relays it to the viewers. A `done` that
  names a model first has the model's files saved into this host's model store, atomically.
- the dispatcher sends the jobs that wait in the history as `queued` and undispatched (Redis was away when they
  came, or a restart lost Celery's queue): every DISPATCH_EVERY_S.
- the watcher fails a starting or running job whose heartbeat key is gone: "training worker lost".
No Flask here: the manager is handed in (publish, worker_finished, db, lab.store).
"""
import base64
import json
import logging
import secrets
import threading
import time

from webapp.core.execution import redis_link as names

log = logging.getLogger(__name__)

DISPATCH_EVERY_S = 2.0
WATCH_EVERY_S = 5.0
RECONNECT_GRACE_S = 2 * names.ALIVE_TTL_S  # after Redis comes back, workers get this long to beat again
READ_BLOCK_MS = 1000
READ_COUNT = 500
LOST = "training worker lost: its heartbeat stopped (the worker was killed, crashed or cut off)"
MODEL_LOST = "the trained model was lost on its way from the worker (Redis restarted before it was saved)"


class CeleryWorker:
    def __init__(self, settings, manager):
        from webapp.core.execution.celery_app import make_celery

        self.url = settings.redis_url
        self.manager = manager
        self.celery = make_celery(self.url)
        self.redis = names.redis_client(self.url)
        self._cancels = set()  # cancels Redis was away for: tried again by the dispatcher
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.reconnected_at = time.monotonic()
        self._boot = secrets.token_hex(8)
        self._mark_boot()
        for target, name in ((self._consume, "redis-events"), (self._dispatch_loop, "redis-dispatch"),
                             (self._watch_loop, "redis-watch")):
            threading.Thread(target=target, name=name, daemon=True).start()

    # -- the LocalWorker interface --------------------------------------------------

    def submit(self, job_id, spec, start_seq=0):
        """Send the job to Celery now if Redis is there; else it waits in the history, queued, for the dispatcher."""
        self._send(job_id, spec, start_seq)

    def cancel(self, job_id):
        """The worker polls the cancel key (and a queued job is skipped when a worker takes it)."""
        try:
            self.redis.set(names.cancel_key(job_id), 1, ex=names.CANCEL_TTL_S)
        except Exception as exc:
            log.warning("could not reach Redis to cancel job %s (%s): trying again", job_id, exc)
            with self._lock:
                self._cancels.add(job_id)
        return True

    def close(self):
        self._closed.set()

    # -- sending --------------------------------------------------------------------

    def _send(self, job_id, spec, start_seq):
        db = self.manager.db
        if not db.claim_dispatch(job_id):
            return  # another process sends it, or it is no longer queued
        try:
            args = self._task_args(job_id, spec, start_seq)
            self.celery.send_task(names.TASK, args=args, queue=names.QUEUE, retry=False)
        except Exception as exc:
            db.release_dispatch(job_id)
            log.warning("job %s waits, queued, for Redis (%s): sent when it is back", job_id, exc)

    def _task_args(self, job_id, spec, start_seq):
        """(job_id, spec, start_seq, model_id, npz_b64, base_model): everything a worker without our disk needs."""
        spec_dict = spec.to_dict()
        npz_b64 = base_model = None
        dataset = spec_dict.get("dataset")
        if dataset and dataset.get("npz"):
            with open(dataset["npz"], "rb") as f:
                npz_b64 = base64.b64encode(f.read()).decode()
            spec_dict["dataset"] = {k: v for k, v in dataset.items() if k != "npz"}  # our path means nothing there
            base_model = self._model_files(dataset.get("base_model"))
        return [job_id, spec_dict, start_seq, None, npz_b64, base_model]

    def _model_files(self, model_id):
        store = self.manager.lab.store
        if not model_id:
            return None
        try:
            path = store.path(model_id)
        except KeyError:
            return None  # the worker says it is not there
        return {"id": model_id, "keras": base64.b64encode(path.read_bytes()).decode(),
                "json": path.with_suffix(".json").read_text()}

    # -- the event stream -------------------------------------------------------------

    def _consume(self):
        client = names.redis_client(self.url, read_timeout=names.READ_TIMEOUT_S + READ_BLOCK_MS / 1000)
        last_id = "0"  # from the start: a job's events while this process was away are stored by the first to read
        finished = set()  # jobs that ended: their replayed events are skipped without a look at the history
        seen = {}  # job -> the last seq this process published or found stored
        while not self._closed.is_set():
            try:
                answer = client.xread({names.EVENTS: last_id}, count=READ_COUNT, block=READ_BLOCK_MS)
            except Exception as exc:
                log.warning("lost Redis (%s): reading the events again from the start when it is back", exc)
                last_id = "0"
                self._wait_for_redis(client)
                continue
            for _stream, entries in answer or ():
                for entry_id, fields in entries:
                    last_id = entry_id
                    try:
                        event = json.loads(fields[b"event"])
                    except (KeyError, ValueError):
                        log.warning("an entry of %s is not an event: skipped", names.EVENTS)
                        continue
                    job_id, seq = event.get("job"), event.get("seq")
                    if job_id in finished or not isinstance(seq, int) or seq <= seen.get(job_id, 0):
                        continue
                    try:
                        self._publish(event)
                        seen[job_id] = seq
                    except Exception:  # one bad event must not stop the relay of every other job
                        log.exception("could not publish event %s of job %s", seq, job_id)
                    if event.get("type") == "done":
                        finished.add(event.get("job"))

    def _wait_for_redis(self, client):
        while not self._closed.wait(1.0):
            try:
                client.ping()
            except Exception:
                continue
            self.reconnected_at = time.monotonic()
            self._mark_boot()
            return

    def _publish(self, event):
        job = self.manager.db.job(event["job"]) if isinstance(event.get("job"), str) else None
        if job is None or job["state"] in self.manager.FINAL_STATES or event["seq"] <= job["last_seq"]:
            return  # not ours, ended (a lost job's late events), or stored already
        if event["type"] == "done" and (event.get("result") or {}).get("model"):
            if not self._save_model(event["job"], event["result"]["model"]):
                event = {**event, "state": "failed", "error": MODEL_LOST}
                event.pop("result", None)
        self.manager.publish(event)

    def _save_model(self, job_id, model_id):
        """The trained model's files from Redis into the model store (model file first, metadata last: listed
        only when whole); True if the model is there, saved now or by another process before."""
        from webapp.core.modelstore import atomic_write_bytes, valid_id

        store = self.manager.lab.store
        if not valid_id(model_id):
            return False
        files = self.redis.hgetall(names.model_key(job_id))
        if not files or files.get(b"id", b"").decode() != model_id:
            return (store.folder / f"{model_id}.json").is_file()
        atomic_write_bytes(store.folder / f"{model_id}.keras", files[b"keras"])
        atomic_write_bytes(store.folder / f"{model_id}.json", files[b"json"])
        store.refresh()
        return True

    # -- the dispatcher and the watcher ----------------------------------------------------

    def _mark_boot(self):
        """Note a restart that lost Redis's data: Celery's queue went with it, so queued jobs are sent again
        (a worker skips a job it was given twice: the claim key)."""
        try:
            if self.redis.set(names.BOOT, self._boot, nx=True):
                released = self.manager.db.release_queued()
                if released:
                    log.warning("Redis lost its data: %d queued job(s) are sent again", released)
        except Exception as exc:
            log.debug("Redis still away: %s", exc)

    def _dispatch_loop(self):
        while not self._closed.wait(DISPATCH_EVERY_S):
            try:
                with self._lock:
                    cancels = list(self._cancels)
                for job_id in cancels:
                    self.redis.set(names.cancel_key(job_id), 1, ex=names.CANCEL_TTL_S)
                    with self._lock:
                        self._cancels.discard(job_id)
                for job in self.manager.db.undispatched():
                    self._send(job["id"], self.manager.spec_of(job), job["last_seq"])
            except Exception as exc:
                log.debug("dispatch waits for Redis: %s", exc)

    def _watch_loop(self):
        while not self._closed.wait(WATCH_EVERY_S):
            try:
                self._fail_lost_jobs()
            except Exception as exc:
                self.reconnected_at = time.monotonic()  # the grace runs from the last time Redis was away
                log.debug("watcher waits for Redis: %s", exc)

    def _fail_lost_jobs(self):
        if time.monotonic() - self.reconnected_at < RECONNECT_GRACE_S:
            return  # Redis was away: the workers' heartbeats are coming back
        for job in self.manager.db.unfinished():
            if job["state"] not in ("starting", "running"):
                continue
            if self.redis.exists(names.alive_key(job["id"])):
                continue
            log.warning("job %s: %s", job["id"], LOST)
            self.cancel(job["id"])  # a worker that was only cut off stops when it can read Redis again
            self.manager.worker_finished(job["id"], LOST)
