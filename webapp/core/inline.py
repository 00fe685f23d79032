"""A lone drawer's drawing read in the calling process: the same recipe and the same LiteRT model as a worker's.

A prediction that goes to an inference worker wakes two processes and waits for both: on a 2-core VM, one
connection's p50 measured 2.04-3.40 ms through a worker and 1.46-2.26 ms read here, in the same runs
(docs/ARCHITECTURE.md; NEURONLAB_LONE_DRAWER_INLINE=0 switches this off). So when
one connection draws alone (InferenceWorkers decides), the web process reads its drawing itself, with the
flatbuffer a worker converted (webapp/core/forward.py) and without TensorFlow. Only small pictures, as the
Draw page sends, are read here: the work stays under a millisecond, and anything larger or stranger goes to
a worker, where a hostile picture cannot hold up the event loop.
"""
import logging
import threading

import numpy as np

from webapp.core.forward import flatbuffer_forward
from webapp.core.models import LoadError
from webapp.core.preprocess import TooManyPixels, preprocess

log = logging.getLogger(__name__)

MAX_BYTES = 64 * 1024  # the Draw page sends ~1.5 KB
MAX_PIXELS = 128 * 128  # the Draw page sends 70x70


class InlineReader:
    """Models by id as LiteRT forward passes, built from the flatbuffer `fetch(model_id)` returns (None: that
    model runs in Keras, in the workers only)."""

    def __init__(self, fetch):
        self._fetch = fetch
        self._lock = threading.Lock()
        self._forwards = {}  # model id -> forward pass, or None
        self.reads = 0  # drawings read here: for tests and benches

    def read(self, model_id, image_bytes):
        """(the 28x28 image, the model's outputs), or None when a worker must read it. Raises BadImage or
        BlankImage as a worker would."""
        # one at a time: a LiteRT interpreter is not thread-safe (with real threads, not gevent's, a second
        # caller goes to a worker)
        if len(image_bytes) > MAX_BYTES or not self._lock.acquire(blocking=False):
            return None
        try:
            forward = self._forward(model_id)
            if forward is None:
                return None
            try:
                image = preprocess(image_bytes, MAX_PIXELS).astype(np.float32)
            except TooManyPixels:
                return None
            probabilities = forward(image[None])[0]
            self.reads += 1
            return image, probabilities
        finally:
            self._lock.release()

    def _forward(self, model_id):
        if model_id not in self._forwards:
            try:
                content = self._fetch(model_id)
                self._forwards[model_id] = None if content is None else flatbuffer_forward(content)
            except LoadError:  # the workers' path answers for a broken model (and its fallback)
                return None
            except Exception:  # noqa: BLE001 -- a worker answers instead, as before this path existed
                log.exception("model %r cannot be read in the web process", model_id)
                self._forwards[model_id] = None
        return self._forwards[model_id]

    def forget(self, model_id):
        self._forwards.pop(model_id, None)
