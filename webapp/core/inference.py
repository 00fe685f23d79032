"""The one inference path: worker processes that own the compiled models.

The web process does no TensorFlow, and no image work while others wait: it
serves many idle connections on one event loop, and any CPU it spends there
delays every other client. So drawings go to `processes` workers (started with spawn). Each worker
prepares drawings with the MNIST recipe, owns every model it has loaded (Keras's
TensorFlow backend is not thread-safe: a worker runs one request at a time),
and runs requests that arrive together for the same model as one batch through
its fast forward pass (webapp/core/forward.py; `model.predict` spends ~70 ms
setting up a loop for one image).

The web side, `InferenceWorkers`, sends each request to the worker with the
fewest waiting and reads answers on one reader per worker. It uses only
`threading` primitives, so it works with real threads and, once gevent has
patched them, with greenlets; pipes are read only when readable. A connection
drawing alone, with nothing at a worker, is read in the web process itself with
the model a worker converted (webapp/core/inline.py): two process wake-ups fewer.
"""
import itertools
import logging
import multiprocessing
import os
import threading

import numpy as np

from webapp.core.inline import InlineReader
from webapp.core.inspection import NotInspectable, TooLarge, UnknownLayer
from webapp.core.model_files import ModelFileRefused
from webapp.core.models import LoadError
from webapp.core.preprocess import BadImage, BlankImage

log = logging.getLogger(__name__)

MAX_BATCH = 64
MAX_WAITING = 32  # requests in one worker's pipe at most: a full pipe would block the event loop on write
TIMEOUT_S = 60  # far beyond any real request (a first load compiles the model): a worker this slow is stuck
UPLOAD_TIMEOUT_S = 300  # loading and saving a large uploaded model

# What a worker answers, for each batch of requests: a list of (request id, status, value); an error travels
# as its kind and its arguments.
OK, BUG = "ok", "bug"
ERRORS = {"blank": BlankImage, "bad": BadImage, "refused": ModelFileRefused, "load_error": LoadError,
          "os_error": OSError, "unknown_layer": UnknownLayer, "too_large": TooLarge,
          "not_inspectable": NotInspectable}


def error_answer(request_id, exc):
    """An exception as an answer the web side raises again; anything unexpected is a bug."""
    for status, kind in ERRORS.items():
        if isinstance(exc, kind):
            args = (str(exc), exc.status) if isinstance(exc, ModelFileRefused) else \
                (exc.errno, exc.strerror or str(exc)) if isinstance(exc, OSError) else (str(exc),)
            return (request_id, status, args)
    return (request_id, BUG, f"{type(exc).__name__}: {exc}")


# -- the worker process ------------------------------------------------------------

def serve(connection, settings):
    """A worker's loop: read what is waiting, answer it, repeat. Ends when the web process goes."""
    from webapp.config import model_store

    models = LoadedModels(model_store(settings, owner=False), settings.inference_runtime)
    while True:
        try:
            requests = [connection.recv()]
            while len(requests) < MAX_BATCH and connection.poll(0):
                requests.append(connection.recv())
        except (EOFError, OSError):
            return
        # a batch's answers go as one message (one wake-up of the reader); inspections, slower, in one of their
        # own after it, so that no prediction waits for them
        quick = [request for request in requests if request[1] != "inspect"]
        looks = [request for request in requests if request[1] == "inspect"]
        for group in (quick, looks):
            if group:
                connection.send(answer_all(group, models, settings.max_image_pixels))


def answer_all(requests, models, max_pixels):
    """The answers to a batch of requests; predictions for one model run as one batch, then inspections
    (after them: a look inside never delays a plain prediction waiting in the same batch)."""
    from webapp.core.preprocess import preprocess

    answers, predictions, images_read, inspections = [], {}, {}, {}
    for request_id, op, payload in requests:
        try:
            if op == "prepare":
                answers.append((request_id, OK, preprocess(payload, max_pixels).astype(np.float32)))
            elif op == "predict":
                model_id, images = payload
                predictions.setdefault(model_id, []).append((request_id, images))
            elif op == "read":  # a drawing in, its 28x28 image and the model's probabilities out
                model_id, image_bytes = payload
                image = preprocess(image_bytes, max_pixels).astype(np.float32)
                predictions.setdefault(model_id, []).append((request_id, image[None]))
                images_read[request_id] = image
            elif op == "inspect":  # a drawing in, every layer's output and the saliency map out
                model_id, image_bytes = payload
                image = preprocess(image_bytes, max_pixels).astype(np.float32)
                inspections.setdefault(model_id, []).append((request_id, image))
            elif op == "weights":  # one layer's weights (webapp/core/inspection.py)
                answers.append((request_id, OK, models.weights(*payload)))
            elif op == "flatbuffer":  # the model's LiteRT flatbuffer, for the web process (webapp/core/inline.py)
                answers.append((request_id, OK, getattr(models.get(payload)[1], "flatbuffer", None)))
            elif op == "forget":
                models.forget(payload)
                answers.append((request_id, OK, None))
            elif op == "accept_upload":
                answers.append((request_id, OK, accept_upload(models.store, *payload)))
            elif op == "xor_net":
                answers.append((request_id, OK, models.xor_net(*payload)))
            elif op == "export":  # a model file in another format, for download (webapp/core/export.py)
                from webapp.core.export import export_model

                answers.append((request_id, OK, export_model(models.store, *payload)))
            elif op == "save_xor_run":
                from webapp.core.xor import save_run

                recipe, result, model_id, extra = payload
                answers.append((request_id, OK, save_run(models.store, recipe, result, model_id=model_id, **extra)))
            else:
                answers.append((request_id, BUG, f"unknown request {op!r}"))
        except Exception as exc:  # the caller hears what went wrong
            answers.append(error_answer(request_id, exc))
    for model_id, waiting in predictions.items():
        for request_id, status, value in run_batch(models, model_id, waiting):
            if status == OK and request_id in images_read:
                value = (images_read[request_id], value[0])
            answers.append((request_id, status, value))
    for model_id, waiting in inspections.items():
        answers.extend(run_inspections(models, model_id, waiting))
    return answers


def accept_upload(store, path, model_id, meta, limits):
    """Check, load and try an uploaded model file, then save it into the store as `model_id`; its metadata."""
    from webapp.core.model_files import load_upload
    from webapp.core.models import check_digit_model, check_runs

    model = load_upload(path, limits)
    check_digit_model(model)
    check_runs(model)
    meta = {**meta, "input": "flat" if tuple(model.input_shape[1:]) == (784,) else "image",
            "parameters": int(model.count_params())}
    store.save(model, meta, model_id)
    return meta


def run_batch(models, model_id, waiting):
    try:
        _, forward = models.get(model_id)
        probabilities = np.asarray(forward(np.concatenate([x for _, x in waiting])))
    except Exception as exc:  # loading or running failed: every caller hears why
        return [error_answer(request_id, exc) for request_id, _ in waiting]
    answers, start = [], 0
    for request_id, images in waiting:
        answers.append((request_id, OK, probabilities[start : start + len(images)]))
        start += len(images)
    return answers


def run_inspections(models, model_id, waiting):
    """(request id, status, (the 28x28 image, what Inspector.inspect says)) for drawings of one model."""
    try:
        inspector = models.inspector(model_id)
        results = inspector.inspect(np.stack([image for _, image in waiting]))
    except Exception as exc:  # loading, building or running failed: every caller hears why
        return [error_answer(request_id, exc) for request_id, _ in waiting]
    return [(request_id, OK, (image, result)) for (request_id, image), result in zip(waiting, results)]


class LoadedModels:
    """A worker's models by id, each with its compiled forward pass and, once asked for, its Inspector."""

    def __init__(self, store, runtime):
        self.store = store
        self.runtime = runtime  # webapp/core/forward.py
        self._models = {}
        self._inspectors = {}  # id -> webapp.core.inspection.Inspector: every layer's output in one function
        self._xor = {}  # id -> (file's modification time, model, weights), or (time, None, why it is no XOR net)

    def get(self, model_id):
        if model_id not in self._models:
            from webapp.core.device import use_one_cpu_thread
            from webapp.core.forward import compile_forward
            from webapp.core.models import check_digit_model, load_file
            from webapp.core.modelstore import UnknownModel, temporary_files_in

            use_one_cpu_thread()  # one worker per core: TensorFlow's own pool only added CPU for images this small

            self.store.refresh()  # a model saved a moment ago by a job
            try:
                path = self.store.path(model_id)
            except UnknownModel:
                raise LoadError(f"no model called {model_id!r}") from None
            model = load_file(path)
            check_digit_model(model, self.store.metadata(model_id).get("labels"))  # letters: one output each
            # TensorFlow's converter writes a file it keeps till exit; a full or read-only disk must not stop reading
            with temporary_files_in(self.store.folder, required=False):
                forward = compile_forward(model, self.runtime)
            self._models[model_id] = (model, forward)
        return self._models[model_id]

    def inspector(self, model_id):
        """The model's Inspector, built (and compiled) the first time it is asked for."""
        model, _ = self.get(model_id)
        if model_id not in self._inspectors:
            from webapp.core.inspection import Inspector

            self._inspectors[model_id] = Inspector(model)
        return self._inspectors[model_id]

    def weights(self, model_id, layer):
        from webapp.core.inspection import layer_weights

        return layer_weights(self.get(model_id)[0], layer)

    def forget(self, model_id):
        self._models.pop(model_id, None)
        self._inspectors.pop(model_id, None)

    def xor_net(self, model_id, inputs):
        """(weights, Keras's outputs for `inputs`) of an XOR model; LoadError if it is not one. Reloaded
        when its file changes; a file that is no XOR net is remembered as such (a big digit model is not
        reloaded each time)."""
        from webapp.core import xor
        from webapp.core.models import load_file

        path = self.store.path(model_id)
        stamp = path.stat().st_mtime_ns
        cached = self._xor.get(model_id)
        if not cached or cached[0] != stamp:
            try:
                model = load_file(path)
                cached = (stamp, model, xor.weights_of(model))
            except (LoadError, xor.NotXorModel) as exc:
                cached = (stamp, None, str(exc))
            self._xor[model_id] = cached
        if cached[1] is None:
            raise LoadError(cached[2])
        import keras  # convert_to_numpy: a torch tensor that needs grad, or sits on the GPU, refuses np.asarray

        outputs = keras.ops.convert_to_numpy(cached[1](np.asarray(inputs, np.float32), training=False))
        outputs = outputs.astype(np.float64)[:, 0]
        return cached[2], outputs


# -- the web side ----------------------------------------------------------------------

def wait_readable(connection):
    """Under gevent, yield to the event loop until the pipe has data; with threads, recv() just blocks."""
    try:
        from gevent import monkey
    except ImportError:
        return
    if monkey.is_module_patched("select"):
        from gevent.socket import wait_read

        wait_read(connection.fileno())


class NoAnswer(Exception):
    """The worker did not answer in time."""


class Reply:
    """A request's answer, waited for on an Event: gevent's own under the server. A concurrent.futures.Future
    waits on a Python Condition over gevent's locks: measured in a gevent loop with a greenlet answering, a
    Future and the pipe's semaphore cost ~90 us a request, this Reply and the semaphore ~54 us."""

    __slots__ = ("ready", "value")

    def __init__(self):
        self.ready = threading.Event()
        self.value = None

    def set(self, value):
        self.value = value
        self.ready.set()

    def wait(self, timeout):
        if not self.ready.wait(timeout):
            raise NoAnswer()
        if isinstance(self.value, BaseException):
            raise self.value
        return self.value


class Worker:
    """One worker process, its pipe, and the requests it has not answered yet."""

    def __init__(self, context, settings, number):
        self.connection, theirs = context.Pipe()
        for end in (self.connection, theirs):  # gevent's sockets are non-blocking; these ends read whole messages
            os.set_blocking(end.fileno(), True)
        self.process = context.Process(target=serve, args=(theirs, settings), name=f"neuronlab-inference-{number}",
                                       daemon=True)
        self.process.start()
        theirs.close()
        self.waiting = {}  # request id -> Reply
        self.slots = threading.BoundedSemaphore(MAX_WAITING)
        self.write_lock = threading.Lock()
        self.alive = True
        threading.Thread(target=self._read, name=f"inference-reader-{number}", daemon=True).start()

    def ask(self, request_id, op, payload):
        reply = Reply()
        self.slots.acquire()
        try:
            with self.write_lock:
                if not self.alive:
                    raise EOFError("the worker has stopped")
                self.waiting[request_id] = reply
                self.connection.send((request_id, op, payload))
        except BaseException as exc:
            self.waiting.pop(request_id, None)
            self.slots.release()
            if isinstance(exc, OSError):  # a broken pipe: the worker has gone
                self.alive = False
                raise EOFError("the worker has stopped") from None
            raise
        return reply

    def _read(self):
        while True:
            try:
                wait_readable(self.connection)
                answers = self.connection.recv()  # a batch's answers at once
            except (EOFError, OSError):
                break
            for request_id, status, value in answers:
                reply = self.waiting.pop(request_id, None)
                self.slots.release()
                if reply is not None:
                    reply.set((status, value))
        with self.write_lock:  # the worker died: every caller still waiting hears so
            self.alive = False
            waiting, self.waiting = self.waiting, {}
        for reply in waiting.values():
            reply.set(EOFError("the inference worker stopped"))

    def stop(self):
        self.process.kill()
        self.process.join(5)
        self.connection.close()


class InferenceWorkers:
    """`processes` inference workers. A worker that dies is replaced."""

    def __init__(self, settings, processes=None):
        from webapp.core.forward import RUNTIMES

        if settings.inference_runtime not in RUNTIMES:  # refuse to start rather than fail every prediction
            raise ValueError(f"NEURONLAB_INFERENCE_RUNTIME is {settings.inference_runtime!r}: it must be one of "
                             f"{', '.join(RUNTIMES)}")
        self.settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._ids = itertools.count()
        self._lock = threading.Lock()
        count = max(1, processes if processes is not None else settings.inference_processes)
        self._workers = [Worker(self._context, settings, n) for n in range(count)]
        self.inline = InlineReader(self.flatbuffer) if settings.lone_drawer_inline else None
        self._last_caller = None

    def _pick(self):
        with self._lock:
            for n, worker in enumerate(self._workers):
                if not worker.alive:
                    log.warning("inference worker %d stopped (exit code %s): starting another", n,
                                worker.process.exitcode)
                    worker.stop()
                    self._workers[n] = Worker(self._context, self.settings, n)
            return min(self._workers, key=lambda w: len(w.waiting))  # the first idle one keeps batches together

    def _call(self, op, payload, worker=None, timeout=None):
        timeout = timeout or TIMEOUT_S
        for attempt in (1, 2):
            target = worker or self._pick()
            try:
                status, value = target.ask(next(self._ids), op, payload).wait(timeout)
                break
            except EOFError:  # it died while idle or on this request: once more, on a fresh one
                if attempt == 2 or worker is not None:
                    raise RuntimeError("the inference worker stopped") from None
            except NoAnswer:  # stuck (on a hostile image, say): replace it, refuse the request
                target.alive = False
                target.process.kill()
                if op in ("prepare", "read", "inspect"):
                    raise BadImage("the image could not be read") from None
                raise RuntimeError("the inference worker did not answer") from None
        if status == OK:
            return value
        if status in ERRORS:
            raise ERRORS[status](*value)
        raise RuntimeError(f"inference failed: {value}")

    def read(self, model_id, image_bytes, caller=None):
        """(the 28x28 image, ten probabilities) for a drawing, in one round trip; raises BadImage, BlankImage,
        or LoadError when the model cannot be loaded.

        `caller` names the connection (any hashable). A connection drawing alone, whose previous drawing was
        the last one read with nothing at a worker since, is read here (webapp/core/inline.py)."""
        lone = self.inline is not None and caller is not None and caller == self._last_caller and not self._busy()
        self._last_caller = caller
        if lone:
            answer = self.inline.read(model_id, image_bytes)
            if answer is not None:
                return answer
        return self._call("read", (model_id, bytes(image_bytes)))

    def _busy(self):
        return any(worker.waiting for worker in self._workers)

    def flatbuffer(self, model_id):
        """The LiteRT flatbuffer a worker runs `model_id` with, or None when it runs in Keras; raises LoadError."""
        return self._call("flatbuffer", model_id)

    def inspect(self, model_id, image_bytes):
        """(the 28x28 image, {"probabilities", "layers", "saliency", "kernels"}) for a drawing, numbers as float16
        bytes (webapp/core/inspection.py); raises BadImage, BlankImage, LoadError, or NotInspectable."""
        return self._call("inspect", (model_id, bytes(image_bytes)))

    def weights(self, model_id, layer):
        """{"layer", "type", "weights": [{"name", "shape", "data"}]}; raises LoadError, UnknownLayer, TooLarge."""
        return self._call("weights", (model_id, str(layer)))

    def preprocess(self, image_bytes):
        """Image bytes -> the 28x28 image the network sees; raises BadImage or BlankImage."""
        return self._call("prepare", bytes(image_bytes))

    def probabilities(self, model_id, image):
        """Ten probabilities for one 28x28 image; raises LoadError when the model cannot be loaded."""
        return self.batch_probabilities(model_id, np.asarray(image, np.float32)[None])[0]

    def batch_probabilities(self, model_id, images):
        return self._call("predict", (model_id, np.asarray(images, dtype=np.float32)))

    def accept_upload(self, path, model_id, meta, limits):
        """Check, load and save an uploaded model file in a worker (Keras's memory stays there); its metadata.
        Raises ModelFileRefused, LoadError, or OSError when the store cannot be written."""
        return self._call("accept_upload", (str(path), model_id, meta, limits), timeout=UPLOAD_TIMEOUT_S)

    def export(self, model_id, fmt, folder):
        """The path of `model_id` saved as `fmt` under `folder` (webapp/core/export.py, in a worker)."""
        return self._call("export", (model_id, fmt, str(folder)), timeout=UPLOAD_TIMEOUT_S)

    def xor_net(self, model_id, inputs):
        """(weights, Keras's outputs for `inputs`) of an XOR model; raises LoadError if it is not one."""
        return self._call("xor_net", (model_id, np.asarray(inputs, np.float32)))

    def save_xor_run(self, recipe, result, model_id, **extra):
        """Save an XOR run's weights as a Keras model (xor.save_run, in a worker); raises OSError if it cannot."""
        return self._call("save_xor_run", (recipe, result, model_id, extra))

    def forget(self, model_id):
        """Drop a cached model (deleted or replaced) here and in every worker; the next call reloads it."""
        if self.inline is not None:
            self.inline.forget(model_id)
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            try:
                self._call("forget", model_id, worker=worker)
            except RuntimeError:
                pass  # a dead worker has forgotten everything anyway

    def close(self):
        with self._lock:
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()
