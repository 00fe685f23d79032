"""MNIST, from a Keras-format npz the user names or from keras.datasets.

Images come back as float32 in [0, 1] with ink = 1, background = 0, which is
what every network and the preprocessor use.
"""
import hashlib
import os
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


def _load_from_keras():
    import keras

    try:
        keras.datasets.mnist.load_data()
    except Exception as exc:  # offline, a proxy, a broken cache: all say the same
        raise MnistUnavailable(
            f"Could not download MNIST through keras.datasets ({_short(exc)}). " + HOW_TO_PROVIDE
        ) from None
    cached = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "mnist.npz"
    return _load_npz(cached, source="keras.datasets")


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
