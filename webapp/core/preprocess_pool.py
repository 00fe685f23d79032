"""The MNIST recipe in worker processes, off the web process's GIL.

Preparing one drawing costs ~0.8 ms, half of it interpreter time (the rest is
PNG decoding). In the one web process that time competes with every other
request for the GIL: with the recipe skipped, the server answered twice as many
predictions a second. So a few worker processes run it instead. A request
thread borrows an idle worker, sends the image bytes down its pipe and reads
back the 28x28 image: raw bytes both ways, no pickling, no helper threads.
"""
import multiprocessing
import queue
import threading

import numpy as np

from webapp.core.preprocess import FIELD, BadImage, BlankImage, preprocess

TIMEOUT_S = 30  # far beyond any real image: a worker this slow is stuck

# The first byte of a worker's answer says what follows.
IMAGE, BAD, BLANK, BUG = b"I", b"X", b"B", b"!"


def serve(connection, max_pixels):
    """A worker's loop: image bytes in, a status byte and the 28x28 image (or a message) out."""
    while True:
        try:
            data = connection.recv_bytes()
        except (EOFError, OSError):
            return  # the web process has gone
        try:
            answer = IMAGE + preprocess(data, max_pixels).astype(np.float32).tobytes()
        except BlankImage as exc:
            answer = BLANK + str(exc).encode()
        except BadImage as exc:
            answer = BAD + str(exc).encode()
        except Exception as exc:  # a bug: the web process reports it as one
            answer = BUG + f"{type(exc).__name__}: {exc}".encode()
        connection.send_bytes(answer)


class PreprocessPool:
    """`pool.preprocess(data)` is `preprocess(data, max_pixels)`, run in one of
    `processes` worker processes (started with spawn: the web process has
    TensorFlow's threads, which fork does not copy)."""

    def __init__(self, processes, max_pixels):
        self.max_pixels = max_pixels
        self._context = multiprocessing.get_context("spawn")
        self._idle = queue.LifoQueue()  # the most recently used worker is the warmest
        self._workers = []
        self._lock = threading.Lock()
        for _ in range(processes):
            self._idle.put(self._start())

    def _start(self):
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=serve, args=(theirs, self.max_pixels), name="neuronlab-preprocess",
                                        daemon=True)
        process.start()
        theirs.close()
        with self._lock:
            self._workers.append(process)
        return process, ours

    def preprocess(self, data):
        worker = self._idle.get()
        try:
            try:
                answer = self._ask(worker, data)
            except TimeoutError:
                raise
            except (EOFError, OSError):  # it had died while idle (killed, say): once more on a fresh one
                worker = self._replace(worker)
                answer = self._ask(worker, data)
        except (EOFError, OSError):  # it died or hung on this very image: replace it, refuse the image
            worker = self._replace(worker)
            raise BadImage("the image could not be read") from None
        finally:
            self._idle.put(worker)
        status, body = answer[:1], answer[1:]
        if status == IMAGE:
            return np.frombuffer(body, dtype=np.float32).reshape(FIELD, FIELD)
        if status == BLANK:
            raise BlankImage(body.decode())
        if status == BAD:
            raise BadImage(body.decode())
        raise RuntimeError(f"preprocessing failed: {body.decode()}")

    @staticmethod
    def _ask(worker, data):
        _, connection = worker
        connection.send_bytes(data)
        if not connection.poll(TIMEOUT_S):
            raise TimeoutError
        return connection.recv_bytes()

    def _replace(self, worker):
        process, connection = worker
        process.kill()
        process.join(5)
        connection.close()
        with self._lock:
            self._workers.remove(process)
        return self._start()

    def close(self):
        with self._lock:
            workers, self._workers = self._workers, []
        for process in workers:
            process.kill()
            process.join(5)
