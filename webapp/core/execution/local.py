"""The embedded mode: each job in a child process on this machine, one at a time (the web's JobManager queues).

`LocalWorker.submit` starts the child with spawn; the child runs `child_main` (below) at the lowest CPU priority and puts its events on a multiprocessing queue, which a relay thread hands
to `manager.publish` in order. When the child exits, `manager.worker_finished(job_id, reason)` says why if it
never sent a `done` (killed, out of memory). The remote side of the same interface is webapp.core.execution.remote.
"""
import multiprocessing
import os
import queue
import signal
import threading

CANCEL_GRACE_S = 20  # after a cancel, a job that has not stopped by then is terminated
POLL_S = 0.5


def describe_exit(exitcode):
    """A readable reason for a child process that ended without a `done` event."""
    if exitcode is None:
        return "the training process did not stop"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = ": it probably ran out of memory" if -exitcode == signal.SIGKILL else ""
        return f"the training process was killed by {name}{hint}"
    return f"the training process exited with code {exitcode} before finishing"


class LocalWorker:
    """One child process per job, started with spawn (never fork: the web
    process has TensorFlow's threads running, which fork does not copy)."""

    def __init__(self, settings, manager):
        self.settings = settings
        self.manager = manager
        self._context = multiprocessing.get_context("spawn")
        self._jobs = {}  # job id -> (process, stop event)
        self._lock = threading.Lock()

    def submit(self, job_id, spec, start_seq=0):
        events = self._context.Queue()
        stop = self._context.Event()
        process = self._context.Process(
            target=child_main,  # in the core, so the child imports no Flask
            args=(job_id, spec.to_dict(), start_seq, events, stop, self.settings, os.getpid()),
            name=f"neuronlab-job-{job_id}",
            daemon=True,
        )
        process.start()
        with self._lock:
            self._jobs[job_id] = (process, stop)
        threading.Thread(target=self._relay, args=(job_id, process, events), name=f"relay-{job_id}",
                         daemon=True).start()

    def cancel(self, job_id):
        with self._lock:
            running = self._jobs.get(job_id)
        if not running:
            return False
        process, stop = running
        stop.set()
        timer = threading.Timer(CANCEL_GRACE_S, self._terminate, args=(process,))
        timer.daemon = True
        timer.start()
        return True

    @staticmethod
    def _terminate(process):
        if process.is_alive():
            process.terminate()

    def _relay(self, job_id, process, events):
        """Pass the child's events on in order until it has exited."""
        while True:
            try:
                event = events.get(timeout=POLL_S)
            except queue.Empty:
                if process.is_alive():
                    continue
                break  # exited and nothing left to read
            except (EOFError, OSError):
                break
            self.manager.publish(event)
        process.join(CANCEL_GRACE_S)
        if process.is_alive():
            process.kill()
            process.join(5)
        with self._lock:
            self._jobs.pop(job_id, None)
        reason = None if process.exitcode == 0 else describe_exit(process.exitcode)
        self.manager.worker_finished(job_id, reason)

    def close(self):
        with self._lock:
            running = list(self._jobs.values())
        for process, stop in running:
            stop.set()
            process.terminate()


# -- in a worker's child process -------------------------------------------------

NICENESS = 19  # the lowest priority: training yields the CPU to the web process, so predictions stay fast


def child_main(job_id, spec_dict, start_seq, events, stop, settings, parent_pid):
    """The entry point of LocalWorker's child process: train one job at low CPU priority and put its events on
    the queue `events`; `stop` is the cancel flag."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    lower_priority()
    exit_with_parent(parent_pid)

    from webapp.core.datasets import local_mnist_path
    from webapp.core.job_progress import EventStream, tensorboard_folder
    from webapp.core.modelstore import ModelStore
    from webapp.core.training import JobSpec, run_job

    store = ModelStore(settings.home / "models", shipped=[settings.models], owner=False)
    emit = EventStream(job_id, events.put, start_seq=start_seq)
    # A web job never downloads: it reads the file the server named, or Keras's cache (checked at POST time).
    run_job(JobSpec(**spec_dict), emit, stop.is_set, store, mnist_path=local_mnist_path(settings.mnist),
            tensorboard_dir=tensorboard_folder(settings.home, job_id))
    events.close()
    events.join_thread()  # every event is in the pipe before the process ends


def lower_priority(own_session=True):
    """Nice 19 for this process. Linux ranks nice values only among the
    processes of one session (autogroup), so the job also takes a session of
    its own at autogroup nice 19: otherwise it would get a full share against
    everything else on the machine, the teacher's browser included.
    `own_session=False` keeps the process in its session (a Celery pool process must stay in the worker's
    process group), whose autogroup then gets nice 19 as a whole."""
    if hasattr(os, "setsid"):
        try:
            if own_session:
                os.setsid()
            with open("/proc/self/autogroup", "w") as f:
                f.write(str(NICENESS))
        except OSError:  # no autogroup here, or not allowed: plain nice still applies
            pass
    try:
        os.nice(NICENESS)
        for thread_id in os.listdir("/proc/self/task"):  # threads started before now keep their nice
            os.setpriority(os.PRIO_PROCESS, int(thread_id), NICENESS)
    except (OSError, AttributeError):  # no /proc (not Linux): os.nice was enough
        pass


def exit_with_parent(parent_pid):
    """If the web process dies, nobody reads our events: stop at once."""

    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            threading.Event().wait(1.0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
