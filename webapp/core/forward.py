"""A model's forward pass for the inference workers: images in, the model's outputs out, fast.

Two runtimes, one model: the Keras model read from its .keras file stays the truth.
- "litert": the model converted in memory, once per worker, to a LiteRT flatbuffer
  (TensorFlow's converter) and run by LiteRT's interpreter with XNNPACK, one image at a
  time. On one CPU thread (docs/ARCHITECTURE.md): CNN 137 us an image against 560 us
  XLA-compiled, MLP 60 against 406, MLP2 160 against 480; even eight images one at a time
  beat the graph's batch of eight. The conversion takes 0.3-0.6 s, and its answers are
  checked against Keras's before it is used.
- "keras": a compiled TensorFlow function (XLA for one or two images, the plain graph for
  more), and a plain call on the other backends. It answers whenever the first cannot:
  another backend, no ai-edge-litert, a layer the converter refuses, answers that differ.

Both take 28x28 images and shape them as the model wants (Keras's input_shape costs ~20 us
a call).
"""
import logging

import numpy as np

log = logging.getLogger(__name__)

RUNTIMES = ("litert", "keras")  # NEURONLAB_INFERENCE_RUNTIME (webapp/config.py) picks one
XLA_BATCH_SIZES = (1, 2)  # small batches run XLA-compiled (padded to these: XLA compiles once per shape)
AGREEMENT = 1e-4  # largest difference from Keras's own answer for a converted model to be used


def compile_forward(model, runtime):
    """fn(images) -> the model's outputs as a float32 array, one row per image."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown inference runtime {runtime!r}: one of {', '.join(RUNTIMES)}")
    if runtime == "litert":
        try:
            return litert_forward(model)
        except Exception as exc:  # noqa: BLE001 -- any refusal: the Keras path answers the same
            log.info("model %r runs in Keras, not LiteRT: %s", model.name, exc)
    return keras_forward(model)


class Disagrees(Exception):
    """The converted model does not answer as the Keras model does."""


def litert_forward(model):
    """The model converted to a LiteRT flatbuffer and run by LiteRT; its bytes are the result's `flatbuffer`."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError("the LiteRT converter needs the TensorFlow backend")
    import tensorflow as tf

    input_shape = tuple(model.input_shape[1:])
    spec = tf.TensorSpec((1,) + input_shape, tf.float32)
    function = tf.function(lambda x: model(x, training=False), input_signature=[spec], autograph=False)
    weights = tf.Module()
    weights.variables_to_freeze = [v.value for v in model.variables]  # how the converter finds them
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], weights)
    forward = flatbuffer_forward(converter.convert())

    probe = np.random.default_rng(0).random((2,) + input_shape, dtype=np.float32)
    expected = keras.ops.convert_to_numpy(model(probe, training=False))
    difference = float(np.max(np.abs(forward(probe) - expected)))
    if not difference <= AGREEMENT:  # NaN too
        raise Disagrees(f"its answers differ from Keras's by {difference:.2g}")
    return forward


def flatbuffer_forward(content):
    """fn(images) -> outputs for a LiteRT flatbuffer, run on one thread, one image at a time. Needs only
    ai-edge-litert, not TensorFlow: the web process runs a lone drawer's model this way (webapp/core/inline.py)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    given = interpreter.get_input_details()[0]
    shape, given = tuple(given["shape"]), given["index"]  # (1, 28, 28, 1) or (1, 784)
    answer = interpreter.get_output_details()[0]["index"]

    def forward(x):
        x = np.ascontiguousarray(x, dtype=np.float32).reshape((-1,) + shape)
        rows = []
        for image in x:
            interpreter.set_tensor(given, image)
            interpreter.invoke()
            rows.append(interpreter.get_tensor(answer)[0])
        return np.stack(rows)

    forward.flatbuffer = content
    return forward


def keras_forward(model):
    """On TensorFlow's CPU, measured for the CNN with one thread: XLA costs 383 us for one image against
    498 us for the plain graph, but scales worse (1961 against 1230 us for eight). So batches of one or two
    run XLA-compiled and larger ones as a graph. Other backends: a plain call."""
    import keras

    input_shape = tuple(model.input_shape[1:])
    if keras.backend.backend() != "tensorflow":
        return lambda x: keras.ops.convert_to_numpy(model(x.reshape((-1,) + input_shape), training=False))
    import tensorflow as tf

    def forward(x):
        return model(x, training=False)

    xla = tf.function(forward, jit_compile=True, autograph=False)
    by_size = {size: xla.get_concrete_function(tf.TensorSpec((size,) + input_shape, tf.float32))
               for size in XLA_BATCH_SIZES}
    graph = tf.function(forward, autograph=False).get_concrete_function(
        tf.TensorSpec((None,) + input_shape, tf.float32))

    def fast_forward(x):
        x = x.reshape((-1,) + input_shape)
        n = len(x)
        if n > XLA_BATCH_SIZES[-1]:
            return graph(tf.constant(x)).numpy()
        size = next(b for b in XLA_BATCH_SIZES if b >= n)
        if size > n:
            x = np.concatenate([x, np.zeros((size - n,) + x.shape[1:], dtype=x.dtype)])
        return by_size[size](tf.constant(x)).numpy()[:n]

    for size in XLA_BATCH_SIZES + (XLA_BATCH_SIZES[-1] + 1,):  # compile now, not mid-request
        fast_forward(np.zeros((size,) + input_shape, dtype=np.float32))
    return fast_forward
