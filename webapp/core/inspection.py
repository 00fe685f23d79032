"""Looking inside a digit model: every layer's output for a drawing, a saliency map, and a layer's weights.

The maths knows nothing of the screen: numbers go out as little-endian float16 bytes with their shapes, and the
web side only base64-encodes them. An inference worker builds one `Inspector` per model, once, and keeps it next
to the model's forward pass (`webapp.core.inference.LoadedModels`); its one compiled function returns every
layer's output and the saliency map together.

Saliency is gradient x input (Simonyan et al. 2013, "Deep Inside Convolutional Networks"; Shrikumar et al. 2016,
"Not Just a Black Box"): the gradient of the predicted digit's score with respect to each input pixel, times the
pixel. Positive pixels pushed the network towards its answer, negative ones away from it. The score is the one
before the softmax when the last layer applies one (a probability near 1 has a gradient near 0 everywhere, so
its map would be blank): for a ReLU network with no biases, the scores are then exactly the sum of the map. It
costs one backward pass in the same compiled function as the forward one. Integrated gradients averages the
same over N scaled copies of the input (N forward and backward passes, N = 20 to 300 in its paper); occlusion
needs one forward pass per patch. Measured on one CPU thread, see ARCHITECTURE.md.

Keras and TensorFlow are imported inside the functions: the web process imports this module for its errors only.
"""
import numpy as np

SALIENCY_METHOD = "gradient x input"
MAX_LAYER_VALUES = 1 << 18  # a layer output beyond this (512 KB as float16) is listed, not sent
MAX_WEIGHT_VALUES = 1 << 22  # a layer's weights beyond this (8 MB as float16) are refused
FLOAT16_MAX = float(np.finfo(np.float16).max)
XLA_BATCH_SIZE = 1  # one drawing at a time runs XLA-compiled; several together run as a plain graph


class UnknownLayer(LookupError):
    """The model has no layer of that name."""


class TooLarge(ValueError):
    """Too many numbers to send."""


class NotInspectable(ValueError):
    """The model answers predictions, but its layers cannot be looked at."""


def float16_bytes(values):
    """Little-endian float16 bytes, row-major. Values beyond float16's range are clipped to it (not infinite);
    NaN stays NaN."""
    values = np.clip(np.asarray(values, np.float32), -FLOAT16_MAX, FLOAT16_MAX)
    return np.ascontiguousarray(values, dtype="<f2").tobytes()


def encoded(values):
    values = np.asarray(values)
    return {"shape": [int(n) for n in values.shape], "data": float16_bytes(values)}


def static_shape(tensor):
    """A symbolic tensor's shape without the batch axis (None where unknown)."""
    return [None if n is None else int(n) for n in tuple(tensor.shape)[1:]]


def layer_weights(model, name):
    """{"layer", "type", "weights": [{"name", "shape", "data"}]} for one top-level layer, in the order of
    `layer.get_weights()`. UnknownLayer, or TooLarge beyond MAX_WEIGHT_VALUES."""
    layer = next((layer for layer in model.layers if layer.name == name), None)
    if layer is None:
        raise UnknownLayer(f"the model has no layer called {str(name)[:80]!r}")
    variables = layer.weights
    count = sum(int(np.prod(v.shape)) for v in variables)
    if count > MAX_WEIGHT_VALUES:
        raise TooLarge(f"layer {name!r} has {count:,} weights: at most {MAX_WEIGHT_VALUES:,} are sent")
    weights = [{"name": variable.name, **encoded(value)} for variable, value in zip(variables, layer.get_weights())]
    return {"layer": layer.name, "type": type(layer).__name__, "weights": weights}


def first_conv_kernels(model):
    """The first Conv2D's kernel (height, width, channels in, filters), encoded, or None."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D) and getattr(layer, "kernel", None) is not None:
            return {"layer": layer.name, **encoded(keras.ops.convert_to_numpy(layer.kernel))}
    return None


def as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def is_softmax(activation):
    return getattr(activation, "__name__", "") == "softmax"


class Inspector:
    """One model's inside, for a batch of 28x28 images: `inspect(images)`.

    `rows` lists every top-level layer but the Input in order, each with its output tensor or the reason it is
    skipped; `index` says where each tensor is among the compiled function's outputs."""

    def __init__(self, model):
        self.model = model
        self.input_shape = tuple(model.input_shape[1:])
        self.rows, tensors = self._list_layers(model)
        probabilities = model.outputs[0]
        score_input, self.score_layer = self._score(model)
        try:
            self.layers_model = self._layers_model(model, tensors, [probabilities, score_input])
            self.probability_index = self.index[id(probabilities)]
        except Exception as exc:
            raise NotInspectable(f"the model's layers cannot be looked at: {type(exc).__name__}") from None
        for row in self.rows:
            if "tensor" in row and id(row["tensor"]) not in self.index:
                row["skipped"] = "its output cannot be computed from the model's input"
            if "skipped" in row:
                row.pop("tensor", None)
        self.score_index = self.index.get(id(score_input))
        if self.score_index is None:
            self.score_layer = None
        self.saliency_of = (f"the predicted digit's score, before the softmax in layer {self.score_layer.name}"
                            if self.score_layer is not None else "the probability of the predicted digit")
        self.kernels = first_conv_kernels(model)
        self.run = self._compile()
        try:
            self.inspect(np.zeros((1, 28, 28), np.float32))  # compile now, not mid-request
        except Exception as exc:
            raise NotInspectable(f"the model's layers cannot be looked at: {type(exc).__name__}") from None

    @staticmethod
    def _list_layers(model):
        """(rows, the tensors to compute): layers whose output can be taken from the model's input."""
        import keras

        rows, tensors = [], []
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            row = {"name": layer.name, "type": type(layer).__name__, "shape": None}
            rows.append(row)
            try:
                output = layer.output
            except (AttributeError, ValueError) as exc:
                row["skipped"] = f"its output cannot be taken ({type(exc).__name__})"
                continue
            if isinstance(output, (list, tuple, dict)):
                outputs = list(output.values()) if isinstance(output, dict) else list(output)
                row["shape"] = [static_shape(t) for t in outputs]
                row["skipped"] = f"it has {len(outputs)} outputs"
                continue
            row["shape"] = static_shape(output)
            known = [n for n in row["shape"] if n is not None]
            if len(known) == len(row["shape"]) and int(np.prod(known)) > MAX_LAYER_VALUES:
                row["skipped"] = f"too large to send ({int(np.prod(known)):,} values)"
                continue
            row["tensor"] = output
            tensors.append(output)
        return rows, tensors

    def _layers_model(self, model, tensors, needed):
        """One keras.Model from the input (one tensor, as it is called) to every tensor, each once; `index` maps
        them to its outputs. A tensor it cannot reach is left out, found one by one only when the whole does not
        build."""
        import keras

        unique = {}
        for tensor in tensors + [t for t in needed if t is not None]:
            unique.setdefault(id(tensor), tensor)
        try:
            built = keras.Model(model.inputs[0], list(unique.values()))
        except Exception:
            reachable = {}
            for key, tensor in unique.items():
                try:
                    keras.Model(model.inputs[0], tensor)
                    reachable[key] = tensor
                except Exception:
                    pass
            unique = reachable
            built = keras.Model(model.inputs[0], list(unique.values()))
        self.index = {key: n for n, key in enumerate(unique)}
        return built

    @staticmethod
    def _score(model):
        """(the tensor that feeds the final softmax, the layer applying it), or (None, None): the map then
        follows the probability itself."""
        import keras

        last = model.layers[-1]
        try:
            if last.output is not model.outputs[0]:
                return None, None
            if is_softmax(getattr(last, "activation", None)) or isinstance(last, keras.layers.Softmax):
                if isinstance(last, (keras.layers.Activation, keras.layers.Softmax)):
                    return last.input, last  # the scores themselves
                if isinstance(last, keras.layers.Dense):
                    return last.input, last  # the scores are kernel . input + bias, made in the function
        except (AttributeError, ValueError):
            pass
        return None, None

    def _scores(self, outputs):
        """The pre-softmax scores (or the probabilities) from the computed outputs."""
        import keras

        if self.score_index is None:
            return outputs[self.probability_index]
        scores = outputs[self.score_index]
        layer = self.score_layer
        if isinstance(layer, keras.layers.Dense):
            scores = keras.ops.matmul(scores, layer.kernel)
            if layer.use_bias:
                scores = scores + layer.bias
        return scores

    def _compile(self):
        """images (n, *input shape) -> (every output, saliency (n, *input shape)) as NumPy arrays. TensorFlow:
        one tf.function with a GradientTape; XLA-compiled for one image. Other backends: outputs only."""
        import keras

        if keras.backend.backend() != "tensorflow":
            def plain(x):
                outputs = as_list(self.layers_model(x, training=False))
                return [keras.ops.convert_to_numpy(o) for o in outputs], None
            return plain
        import tensorflow as tf

        def look(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                outputs = as_list(self.layers_model(x, training=False))
                scores = self._scores(outputs)
                predicted = tf.argmax(outputs[self.probability_index], axis=-1)
                # images are independent at inference: the gradient of the sum is each image's own
                chosen = tf.reduce_sum(tf.gather(scores, predicted, axis=1, batch_dims=1))
            gradient = tape.gradient(chosen, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return outputs, gradient * x

        spec = (XLA_BATCH_SIZE,) + self.input_shape
        many = tf.function(look, autograph=False).get_concrete_function(
            tf.TensorSpec((None,) + self.input_shape, tf.float32))
        try:  # XLA compiles on the first call; a layer it cannot compile leaves the plain graph for all sizes
            one = tf.function(look, jit_compile=True, autograph=False).get_concrete_function(
                tf.TensorSpec(spec, tf.float32))
            one(tf.zeros(spec))
        except Exception:
            one = many

        def run(x):
            outputs, saliency = (one if len(x) == XLA_BATCH_SIZE else many)(tf.constant(x))
            return [o.numpy() for o in outputs], saliency.numpy()

        return run

    def inspect(self, images):
        """For each of `images` (n, 28, 28): {"probabilities", "layers", "saliency", "kernels"}, with every
        number as float16 bytes (see `encoded`)."""
        images = np.asarray(images, np.float32)
        outputs, saliency = self.run(images.reshape((-1,) + self.input_shape))
        answers = []
        for n in range(len(images)):
            layers = []
            for row in self.rows:
                layer = {k: v for k, v in row.items() if k != "tensor"}
                if "tensor" in row:
                    value = outputs[self.index[id(row["tensor"])]][n]
                    layer.update(shape=[int(s) for s in value.shape], data=float16_bytes(value))
                else:
                    layer["data"] = None
                layers.append(layer)
            answers.append({
                "probabilities": np.asarray(outputs[self.probability_index][n], np.float64),
                "layers": layers,
                "saliency": None if saliency is None else {
                    "method": SALIENCY_METHOD, "of": self.saliency_of, **encoded(saliency[n].reshape(28, 28))},
                "kernels": self.kernels,
            })
        return answers
