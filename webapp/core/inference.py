"""The one inference path: a single thread that owns every loaded model.

Keras's TensorFlow backend is not thread-safe, and `model.predict` spends
~70 ms setting up a loop for one image. So requests from any thread are queued
to one inference thread, which calls a compiled forward pass; requests that
arrive together for the same model are run as one batch.
"""
import queue
import threading
from concurrent.futures import Future

import numpy as np

from webapp.core.networks import shape_inputs

MAX_BATCH = 64


class Predictor:
    def __init__(self, load):
        """`load(model_id)` returns a Keras model (or raises)."""
        from webapp.core.device import use_one_cpu_thread

        use_one_cpu_thread()
        self._load = load
        self._models = {}  # model id -> (model, compiled forward pass); inference thread only
        self._requests = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="inference", daemon=True)
        self._thread.start()

    def probabilities(self, model_id, image, timeout=30):
        """Ten probabilities for one 28x28 image; raises what loading raised."""
        return self.batch_probabilities(model_id, image[None], timeout)[0]

    def batch_probabilities(self, model_id, images, timeout=30):
        future = Future()
        self._requests.put(("predict", model_id, np.asarray(images, dtype=np.float32), future))
        return future.result(timeout)

    def forget(self, model_id):
        """Drop a cached model (deleted or replaced); the next call reloads it."""
        future = Future()
        self._requests.put(("forget", model_id, None, future))
        return future.result(30)

    def close(self):
        self._requests.put(None)

    def _serve(self):
        while True:
            first = self._requests.get()
            if first is None:
                return
            pending = [first]
            while len(pending) < MAX_BATCH:  # take whatever else is already waiting
                try:
                    pending.append(self._requests.get_nowait())
                except queue.Empty:
                    break
            by_model = {}
            for request in pending:
                if request is None:
                    self._requests.put(None)
                    continue
                kind, model_id, images, future = request
                if kind == "forget":
                    self._models.pop(model_id, None)
                    future.set_result(None)
                else:
                    by_model.setdefault(model_id, []).append((images, future))
            for model_id, requests in by_model.items():
                self._run(model_id, requests)

    def _run(self, model_id, requests):
        try:
            model, forward = self._model(model_id)
            images = np.concatenate([images for images, _ in requests])
            probabilities = np.asarray(forward(shape_inputs(model, images)))
        except Exception as exc:  # loading or running failed: every caller hears why
            for _, future in requests:
                future.set_exception(exc)
            return
        start = 0
        for images, future in requests:
            future.set_result(probabilities[start : start + len(images)])
            start += len(images)

    def _model(self, model_id):
        if model_id not in self._models:
            model = self._load(model_id)
            self._models[model_id] = (model, compile_forward(model))
        return self._models[model_id]


XLA_BATCH_SIZES = (1, 2)  # small batches run XLA-compiled (padded to these: XLA compiles once per shape)


def compile_forward(model):
    """A fast forward pass. On TensorFlow's CPU, measured for the CNN with one
    thread: XLA costs 383 us for one image against 498 us for the plain graph,
    but scales worse (1961 against 1230 us for eight). So batches of one or two
    run XLA-compiled and larger ones as a graph. Other backends: a plain call."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return lambda x: keras.ops.convert_to_numpy(model(x, training=False))
    import tensorflow as tf

    def forward(x):
        return model(x, training=False)

    # Concrete functions: calling one skips tf.function's signature matching.
    input_shape = tuple(model.input_shape[1:])
    xla = tf.function(forward, jit_compile=True, autograph=False)
    by_size = {size: xla.get_concrete_function(tf.TensorSpec((size,) + input_shape, tf.float32))
               for size in XLA_BATCH_SIZES}
    graph = tf.function(forward, autograph=False).get_concrete_function(
        tf.TensorSpec((None,) + input_shape, tf.float32))

    call = flat_call if flat_call_works(graph, input_shape) else (lambda function, x: function(x))

    def fast_forward(x):
        n = len(x)
        if n > XLA_BATCH_SIZES[-1]:
            return call(graph, x).numpy()
        size = next(b for b in XLA_BATCH_SIZES if b >= n)
        if size > n:
            x = np.concatenate([x, np.zeros((size - n,) + x.shape[1:], dtype=x.dtype)])
        return call(by_size[size], x).numpy()[:n]

    for size in XLA_BATCH_SIZES + (XLA_BATCH_SIZES[-1] + 1,):  # compile now, not mid-request
        fast_forward(np.zeros((size,) + input_shape, dtype=np.float32))
    return fast_forward


def flat_call(function, x):
    """Call a concrete function with one tensor, skipping the binding of Python
    arguments to its signature: under a busy server's load that binding was a
    fifth of the web process's GIL time. `_call_flat` is TensorFlow's own
    internal entry point, so flat_call_works() checks it before it is used."""
    import tensorflow as tf

    return function._call_flat([tf.constant(x)], function.captured_inputs)


def flat_call_works(function, input_shape):
    x = np.random.default_rng(0).random((3,) + input_shape, dtype=np.float32)
    try:
        return bool(np.allclose(flat_call(function, x).numpy(), function(x).numpy()))
    except Exception:  # another TensorFlow version: use the public call
        return False
