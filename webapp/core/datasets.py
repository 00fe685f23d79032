"""MNIST, from a Keras-format npz the user names or from keras.datasets.

Images come back as float32 in [0, 1] with ink = 1, background = 0, which is
what every network and the preprocessor use.
"""
import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# A small real slice of MNIST (2,000 training and 500 test digits) that ships
# with the package, for tests and for an explicit `--data sample` run.
SAMPLE_PATH = Path(__file__).resolve().parent.parent / "data" / "mnist-sample.npz"

KEYS = ("x_train", "y_train", "x_test", "y_test")

HOW_TO_PROVIDE = (
    "Give a local copy of MNIST in Keras's npz format (keys x_train, y_train, "
    "x_test, y_test): pass --mnist PATH, or set NEURONLAB_MNIST=PATH. "
    "With internet access, keras.datasets downloads it once into ~/.keras/datasets. "
    "To try things out with the small bundled sample instead, choose the data 'sample'."
)


class MnistUnavailable(Exception):
    """MNIST could not be had; the message says how to provide it."""


@dataclass
class Mnist:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # where it came from: a path, "keras.datasets" or "sample"
    sha256: str

    @property
    def is_sample(self):
        return self.source == "sample"


def load_mnist(path=None, allow_download=True):
    """Load MNIST from `path` (or $NEURONLAB_MNIST), else via keras.datasets.

    `path="sample"` loads the bundled sample. Raises MnistUnavailable with a
    message that says how to provide the data.
    """
    path = path or os.environ.get("NEURONLAB_MNIST") or None
    if path == "sample":
        return _load_npz(SAMPLE_PATH, source="sample")
    if path:
        return _load_npz(Path(path).expanduser(), source=str(path))
    if not allow_download:
        raise MnistUnavailable("No MNIST file was given. " + HOW_TO_PROVIDE)
    return _load_from_keras()


def keras_cache_path():
    """Where keras.datasets.mnist keeps its download (it honours KERAS_HOME)."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets" / "mnist.npz"


def local_mnist_path(setting):
    """The MNIST a server setting names, found without downloading: "sample",
    the file given, or (unset) Keras's cache. Web jobs load exactly this."""
    if setting == "sample":
        return "sample"
    return str(Path(setting).expanduser() if setting else keras_cache_path())


def data_choices(setting):
    """What data this server can train on, without downloading or loading MNIST:

    {"mnist": {"available": bool, "why": "..."}, "sample": {"available": True, "why": "..."},
     "default": "mnist" | "sample"}. `setting` is NEURONLAB_MNIST: a path, "sample" or None."""
    how = "To train on full MNIST, set NEURONLAB_MNIST=/path/to/mnist.npz (Keras's npz layout) and restart the server."
    if setting == "sample":
        available, why = False, "This server is set to train on the bundled sample (NEURONLAB_MNIST=sample). " + how
    else:
        path = Path(local_mnist_path(setting))  # pages show this text: it names the file, never its folder
        where = f"NEURONLAB_MNIST ({path.name})" if setting else f"Keras's cache ({path.name})"
        problem = _npz_problem(path)
        available = problem is None
        if available:
            why = f"Full MNIST from {where}."
        elif setting:
            why = f"{problem} (NEURONLAB_MNIST). {how}"
        else:
            why = (f"No NEURONLAB_MNIST is set and Keras's cache has no MNIST ({path.name}); "
                   f"this server never downloads it. {how}")
    return {
        "mnist": {"available": available, "why": why},
        "sample": {"available": True, "why": "The bundled sample: 2,000 training and 500 test digits."},
        "default": "mnist" if available else "sample",
    }


def _npz_problem(path):
    """None if `path` is an npz with MNIST's four arrays, else what is wrong (naming the file, not its folder).
    Reads only the zip's directory."""
    if not path.is_file():
        return f"There is no MNIST file called {path.name} where it was looked for"
    try:
        with zipfile.ZipFile(path) as archive:  # an npz is a zip of .npy files
            names = {name.removesuffix(".npy") for name in archive.namelist()}
    except (OSError, zipfile.BadZipFile) as exc:
        return f"{path.name} is not a readable npz file ({_short(exc)})"
    missing = [key for key in KEYS if key not in names]
    return f"{path.name} lacks the arrays {', '.join(missing)}" if missing else None


def _load_from_keras():
    import keras

    try:
        keras.datasets.mnist.load_data()
    except Exception as exc:  # offline, a proxy, a broken cache: all say the same
        raise MnistUnavailable(
            f"Could not download MNIST through keras.datasets ({_short(exc)}). " + HOW_TO_PROVIDE
        ) from None
    return _load_npz(keras_cache_path(), source="keras.datasets")


def _load_npz(path, source):
    if not path.is_file():
        raise MnistUnavailable(f"There is no MNIST file at {path}. " + HOW_TO_PROVIDE)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in KEYS}
    except KeyError as exc:
        raise MnistUnavailable(f"{path} lacks the array {exc}. " + HOW_TO_PROVIDE) from None
    except Exception as exc:
        raise MnistUnavailable(f"{path} is not a readable npz file ({_short(exc)}). " + HOW_TO_PROVIDE) from None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) != len(y) or len(x) == 0:
            raise MnistUnavailable(f"{path}: x_{split} must be N x 28 x 28 with N labels. " + HOW_TO_PROVIDE)
    return Mnist(
        x_train=to_unit_range(arrays["x_train"]),
        y_train=arrays["y_train"].astype(np.int64),
        x_test=to_unit_range(arrays["x_test"]),
        y_test=arrays["y_test"].astype(np.int64),
        source=source,
        sha256=file_sha256(path),
    )


def to_unit_range(images):
    """uint8 0..255 -> float32 0..1; float images are taken as already scaled."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32)


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _short(exc):
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
