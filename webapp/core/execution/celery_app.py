"""The training worker's side of the distributed mode: a Celery app on the Redis broker, and its one task.

`python -m webapp worker` runs `make_celery(url).worker_main(...)`: one task at a time (concurrency 1 per
accelerator, no prefetch), each in a fresh pool process (the GPU's memory goes back after every job). The task
`neuronlab.train` needs no shared filesystem: the spec, a dataset job's drawings and a model to fine-tune come in
its arguments; its events go out on the Redis stream EVENTS; the trained model's files go to the hash
model_key(job) just before its `done` event, for the web's model store to save.
"""
import base64
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

from webapp.core.execution import redis_link as names

log = logging.getLogger(__name__)

RESEND_PAUSE_S = 1.0  # after a failed XADD, before trying again
DELIVERY_GIVE_UP_S = 3600  # a job's events that Redis has not taken by then are dropped (the web fails the job)
CANCEL_POLL_S = 0.2  # a cancel reaches the job within a batch or so


def make_celery(redis_url):
    """The Celery app of the web processes (which send) and the workers (which run): broker and result backend
    are the one Redis."""
    from celery import Celery
    from celery.signals import worker_process_init

    app = Celery("neuronlab", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.update(
        task_default_queue=names.QUEUE,
        task_serializer="json", accept_content=["json"], result_serializer="json",
        task_acks_late=False,  # taken is taken: a worker killed mid-job is failed by the web's watcher, not rerun
        task_ignore_result=True,  # events and the model travel by the stream and the hash; nothing reads results
        worker_prefetch_multiplier=1,  # a busy worker holds no second job that an idle one could run
        worker_max_tasks_per_child=1,  # a fresh process per job: TensorFlow gives GPU memory back only on exit
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits out a Redis restart
        worker_cancel_long_running_tasks_on_connection_loss=False,  # ...and its job goes on training meanwhile
        broker_transport_options={"socket_connect_timeout": names.CONNECT_TIMEOUT_S, "socket_timeout": 30,
                                  "visibility_timeout": 24 * 3600},
        redis_socket_connect_timeout=names.CONNECT_TIMEOUT_S,
        redis_socket_timeout=30,
    )
    app.task(name=names.TASK)(_task(redis_url))
    worker_process_init.connect(_pool_process_started, weak=False)
    return app


def _pool_process_started(**_):
    """In each pool process: low CPU priority (a worker beside a web server leaves predictions their CPU), and
    exit when the worker's main process dies (kill -9 must not leave a job training alone)."""
    from webapp.core.execution.local import exit_with_parent, lower_priority

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # In the worker's own session (a setsid would take the job out of its process group): the whole session, an
    # idle Celery main process and this one, gets autogroup nice 19, so predictions on this host come first.
    lower_priority(own_session=False)
    exit_with_parent(os.getppid())


def _task(redis_url):
    def train(job_id, spec_dict, start_seq, model_id=None, npz_b64=None, base_model=None):
        return run_remote_job(redis_url, job_id, spec_dict, start_seq, model_id, npz_b64, base_model)

    train.__name__ = "train"
    return train


def run_remote_job(redis_url, job_id, spec_dict, start_seq, model_id=None, npz_b64=None, base_model=None):
    """Train one job for the web: `base_model` is {"id", "keras": base64, "json": text} of the model a dataset
    job fine-tunes when the worker's shipped models lack it. Returns how it ended (nobody reads it but logs)."""
    from webapp.config import Settings
    from webapp.core.job_progress import EventStream, tensorboard_folder
    from webapp.core.training import JobSpec, run_job

    client = names.redis_client(redis_url)
    if not client.set(names.claim_key(job_id), socket.gethostname(), nx=True, ex=names.CLAIM_TTL_S):
        log.warning("job %s was delivered twice: this copy is skipped", job_id)
        return "duplicate"
    if client.exists(names.cancel_key(job_id)):  # cancelled while queued: the web has recorded it
        return "cancelled before it started"
    settings = Settings.from_env()
    watch = JobWatch(client, job_id).start()
    sender = EventSender(client, job_id)
    emit = EventStream(job_id, sender.put, start_seq=start_seq)
    folder = Path(tempfile.mkdtemp(prefix="neuronlab-job-"))
    delivered = False
    try:
        try:
            spec = JobSpec(**spec_dict)
            if npz_b64 is not None:  # the class's drawings, as the web wrote them for this job
                path = folder / "dataset.npz"
                path.write_bytes(base64.b64decode(npz_b64))
                spec.dataset = {**(spec.dataset or {}), "npz": str(path)}
            store = _job_store(folder, settings, base_model)
            sender.model_folder = store.folder
            emit("state", state="starting", host=socket.gethostname(), device=_device())
            from webapp.core.datasets import local_mnist_path

            final = run_job(spec, emit, watch.stopped.is_set, store, mnist_path=local_mnist_path(settings.mnist),
                            model_id=model_id, tensorboard_dir=tensorboard_folder(settings.home, job_id))
        except Exception as exc:  # before the runner (it reports its own failures): the job must still end
            log.exception("job %s could not run", job_id)
            final = emit("done", state="failed", error=f"the worker could not run the job: {type(exc).__name__}")
        delivered = sender.finish(DELIVERY_GIVE_UP_S)
        if not delivered:
            log.error("job %s: Redis did not take its events within %d s; the web fails the job",
                      job_id, DELIVERY_GIVE_UP_S)
        return final["state"]
    finally:
        watch.stop(finished=delivered)
        shutil.rmtree(folder, ignore_errors=True)


def _job_store(folder, settings, base_model):
    from webapp.core.modelstore import ModelStore, atomic_write_bytes, valid_id

    models = folder / "models"
    models.mkdir()
    if base_model and valid_id(base_model.get("id")):
        atomic_write_bytes(models / f"{base_model['id']}.keras", base64.b64decode(base_model["keras"]))
        atomic_write_bytes(models / f"{base_model['id']}.json", base_model["json"].encode())
    return ModelStore(models, shipped=[settings.models], owner=False)


def _device():
    from webapp.core.device import device_name, setup_accelerator

    setup_accelerator()
    return device_name()


class JobWatch:
    """A thread beside the training: renews the heartbeat key and looks for the cancel key, so that the training
    thread itself never waits on Redis (which may be away)."""

    def __init__(self, client, job_id):
        self.client, self.job_id = client, job_id
        self.stopped = threading.Event()  # the cancel flag the runner polls
        self._done = threading.Event()

    def start(self):
        self._beat()
        threading.Thread(target=self._run, name=f"watch-{self.job_id}", daemon=True).start()
        return self

    def _beat(self):
        try:
            self.client.set(names.alive_key(self.job_id), socket.gethostname(), ex=names.ALIVE_TTL_S)
        except Exception as exc:  # Redis away: the next beat tries again
            log.debug("heartbeat of job %s not sent: %s", self.job_id, exc)

    def _run(self):
        last_beat = time.monotonic()
        while not self._done.wait(CANCEL_POLL_S):
            if time.monotonic() - last_beat >= names.ALIVE_EVERY_S:
                self._beat()
                last_beat = time.monotonic()
            try:
                if self.client.exists(names.cancel_key(self.job_id)):
                    self.stopped.set()
            except Exception:
                pass

    def stop(self, finished):
        """`finished`: the job's events, its `done` last, are on the stream; the key says so for a while, so that
        a web process still reading towards the `done` does not take the silence for a lost worker. Otherwise
        the key goes, and the web's watcher ends the job."""
        self._done.set()
        try:
            if finished:
                self.client.set(names.alive_key(self.job_id), "finished", ex=names.FINISHED_TTL_S)
            else:
                self.client.delete(names.alive_key(self.job_id))
        except Exception:
            pass


class EventSender:
    """Puts a job's events on the stream in order, from a thread of its own. While Redis is away they wait in
    memory; after any failure every event is sent again from the first (a restarted Redis may have lost the
    stream; the web stores each seq once). A `done` naming a model is preceded by the model's files."""

    def __init__(self, client, job_id):
        self.client, self.job_id = client, job_id
        self.model_folder = None
        self._events = []
        self._sent = 0
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"send-{job_id}", daemon=True)
        self._thread.start()

    def put(self, event):
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()

    def _run(self):
        away = False
        while True:
            with self._changed:
                while self._sent >= len(self._events):
                    self._changed.wait()
                pending = self._events[self._sent:]
            try:
                for event in pending:
                    self._send(event)
                    with self._changed:
                        self._sent += 1
                        self._changed.notify_all()
                if away:
                    log.warning("job %s: Redis is back; every event was sent again", self.job_id)
                    away = False
            except Exception as exc:  # Redis away (or restarted): all again, from the first, once it is back
                if not away:
                    log.warning("job %s: could not send events to Redis (%s); they wait here", self.job_id, exc)
                    away = True
                with self._changed:
                    self._sent = 0
                time.sleep(RESEND_PAUSE_S)

    def _send(self, event):
        model = (event.get("result") or {}).get("model") if event["type"] == "done" else None
        if model and self.model_folder is not None:
            files = {"keras": (self.model_folder / f"{model}.keras").read_bytes(),
                     "json": (self.model_folder / f"{model}.json").read_bytes(), "id": model.encode()}
            with self.client.pipeline() as pipe:  # MULTI: the hash is whole or absent
                pipe.delete(names.model_key(self.job_id))
                pipe.hset(names.model_key(self.job_id), mapping=files)
                pipe.expire(names.model_key(self.job_id), names.MODEL_TTL_S)
                pipe.execute()
        self.client.xadd(names.EVENTS, {"event": json.dumps(event)}, maxlen=names.EVENTS_MAXLEN, approximate=True)

    def finish(self, timeout):
        """Wait until every event is on the stream; False if Redis did not take them in `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._sent < len(self._events):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 1.0))
        return True
