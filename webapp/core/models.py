"""Loading saved models safely, and checking that they read digits (or a class's own labels)."""
import re
from pathlib import Path

from webapp.core.modelstore import UnknownModel


class LoadError(ValueError):
    """A model could not be loaded or is not the right kind; the text says why."""


def load_file(path):
    """Load a .keras or legacy .h5 file with safe_mode (no arbitrary code)."""
    import keras

    try:
        return keras.models.load_model(str(path), compile=False, safe_mode=True)
    except Exception as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LoadError(f"cannot load {Path(path).name} as a Keras model: {without_paths(text)[:200]}") from None


ABSOLUTE_PATH = re.compile(r"(?<![\w./])(?:/[^/\s:;,'\"()]+)+/?")


def without_paths(text):
    """Keras's messages name files by absolute path ("File not found: filepath=/srv/...");
    clients see the last part only, never where the server keeps its files."""
    return ABSOLUTE_PATH.sub(lambda m: Path(m.group(0)).name or "/", text)


def check_digit_model(model, labels=None):
    """A digit model takes 784 numbers or a 28x28(x1) image and gives 10 outputs; a model whose metadata has
    `labels` (a class's letters) gives one output per label instead."""
    try:
        inputs = tuple(model.input_shape[1:])
        outputs = tuple(model.output_shape[1:])
    except (AttributeError, ValueError, TypeError):
        raise LoadError("the model must have one input and one output") from None
    if inputs not in ((784,), (28, 28), (28, 28, 1)):
        raise LoadError(f"the model's input is {inputs}; a digit model takes 784 or 28x28x1")
    if labels:
        if outputs != (len(labels),):
            raise LoadError(f"the model's output is {outputs}; for its {len(labels)} labels it must give {len(labels)}")
    elif outputs != (10,):
        raise LoadError(f"the model's output is {outputs}; a digit model gives 10")


def check_runs(model, outputs=10):
    """One forward pass on a blank drawing: the model must give `outputs` finite numbers (10 for digits)."""
    import keras
    import numpy as np

    from webapp.core.networks import shape_inputs

    try:  # convert_to_numpy: a torch tensor that needs grad, or sits on the GPU, refuses np.asarray
        out = keras.ops.convert_to_numpy(model(shape_inputs(model, np.zeros((1, 28, 28), np.float32)),
                                               training=False))
    except Exception as exc:  # any layer may fail on real input
        raise LoadError(f"the model fails on a 28x28 image: {type(exc).__name__}") from None
    if out.shape != (1, outputs) or not np.all(np.isfinite(out)):
        raise LoadError(f"the model does not give {outputs} finite numbers for a 28x28 image")


def load_model(name, store):
    """A model by id from the store, or from a .keras/.h5 path."""
    path = Path(name)
    if path.suffix in (".keras", ".h5") and path.is_file():
        return load_file(path)
    try:
        return load_file(store.path(name))
    except UnknownModel:
        known = ", ".join(m["id"] for m in store.list()) or "none yet"
        raise LoadError(f"no model called {name!r} (known: {known})") from None
