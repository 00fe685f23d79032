"""The embedded mode: each job in a child process on this machine, one at a time (the web's JobManager queues).

`LocalWorker.submit` starts the child with spawn; the child runs `child_main` (webapp.core.training for now: it
moves here) at the lowest CPU priority and puts its events on a multiprocessing queue, which a relay thread hands
to `manager.publish` in order. When the child exits, `manager.worker_finished(job_id, reason)` says why if it
never sent a `done` (killed, out of memory). The remote side of the same interface is webapp.core.execution.remote.
"""
import multiprocessing
import os
import queue
import signal
import threading

from webapp.core.training import child_main, exit_with_parent, lower_priority  # noqa: F401  (moving here)

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
