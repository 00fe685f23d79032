"""Labelled 28x28 drawings as a file: Keras's MNIST npz layout, plus the labels' names.

The class's datasets leave the server in this form (export), come back in it (import), and reach a training
job in it (the web side writes one, the runner reads it; the CLI reads one given with --data):
- `x_train`: uint8, N x 28 x 28, ink = 255, background = 0 (as `mnist.npz`);
- `y_train`: uint8, N, each an index into `labels`;
- `labels`: the labels' names, in order (a network's output i means labels[i]).

The rules for a list of labels live here too, so that the API, the store and the runner say the same thing.
"""
import io
import zipfile

import numpy as np

from webapp.core.modelstore import atomic_write_bytes

DIGIT_LABELS = tuple(str(d) for d in range(10))
MAX_LABELS = 62  # 0-9, A-Z and a-z: as many symbols as a class could sensibly draw
MAX_LABEL_CHARS = 16
MIN_DRAWINGS_PER_LABEL = 5  # a job on a dataset needs this many of every label (one or more are held out)
MAX_FILE_DRAWINGS = 100_000  # an imported file holds at most this many drawings


class BadLabelledData(ValueError):
    """The labels or the file break a rule; the text says which, for the user."""


def check_labels(labels):
    """A list of labels as stored: 1 to 62 distinct, non-empty, short strings (surrounding spaces dropped)."""
    if not isinstance(labels, (list, tuple)) or not labels:
        raise BadLabelledData("labels must be a non-empty list of strings")
    if len(labels) > MAX_LABELS:
        raise BadLabelledData(f"at most {MAX_LABELS} labels; got {len(labels)}")
    cleaned = []
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            raise BadLabelledData("every label must be a non-empty string")
        label = label.strip()
        if len(label) > MAX_LABEL_CHARS or not label.isprintable():
            raise BadLabelledData(f"a label is at most {MAX_LABEL_CHARS} printable characters")
        cleaned.append(label)
    if len(set(cleaned)) != len(cleaned):
        raise BadLabelledData("labels must be different from each other")
    return cleaned


def too_few(counts, labels, needed=MIN_DRAWINGS_PER_LABEL):
    """Why a dataset cannot train yet (its words), or None. `counts` maps label -> drawings."""
    short = [label for label in labels if counts.get(label, 0) < needed]
    if not short:
        return None
    shown = ", ".join(f"{label!r} has {counts.get(label, 0)}" for label in short[:8])
    more = f" (and {len(short) - 8} more)" if len(short) > 8 else ""
    return f"every label needs at least {needed} drawings to train on: {shown}{more}"


def write_npz(path, images, label_indices, labels):
    """Write the file atomically: a temporary file in the same folder, then a rename."""
    atomic_write_bytes(path, npz_bytes(images, label_indices, labels))


def npz_bytes(images, label_indices, labels):
    """The file's bytes (for a download, or a job spec that travels without a shared disk)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:  # floats in [0, 1], ink = 1, as preprocessing gives them
        images = np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x_train=images.reshape(-1, 28, 28),
                        y_train=np.asarray(label_indices, dtype=np.uint8),
                        labels=np.asarray(list(labels), dtype=str))
    return buffer.getvalue()


def read_npz(source, max_drawings=MAX_FILE_DRAWINGS):
    """(images uint8 N x 28 x 28, label indices int N, labels list) from a path or bytes; BadLabelledData on
    anything else. Never unpickles; a file without `labels` whose y are 0-9 is read as digits (mnist.npz)."""
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        with np.load(source, allow_pickle=False) as npz:
            names = set(npz.files)
            if not {"x_train", "y_train"} <= names:
                raise BadLabelledData("the file needs x_train and y_train, as in Keras's mnist.npz")
            x, y = npz["x_train"], npz["y_train"]
            labels = [str(label) for label in npz["labels"].tolist()] if "labels" in names else list(DIGIT_LABELS)
    except BadLabelledData:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError):
        raise BadLabelledData("not an npz file in Keras's MNIST layout") from None
    labels = check_labels(labels)
    if x.ndim != 3 or x.shape[1:] != (28, 28) or x.dtype != np.uint8:
        raise BadLabelledData(f"x_train must be uint8 N x 28 x 28; got {x.dtype} {tuple(x.shape)}")
    if len(x) > max_drawings:
        raise BadLabelledData(f"at most {max_drawings:,} drawings in a file; got {len(x):,}")
    if y.shape != (len(x),) or y.dtype.kind not in "iu":
        raise BadLabelledData("y_train must be N whole numbers, one for each image")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(labels)):
        raise BadLabelledData(f"y_train must be label numbers from 0 to {len(labels) - 1}")
    return x, y.astype(np.int64), labels
