"""Training on a class's own drawings: the runner's dataset job (training.run_job calls `train_on_dataset`).

The job reads the drawings from the labelled_data npz named in `spec.dataset["npz"]`, holds out a stratified part
of every label to test on, and then either
- fine-tunes the class's digit model (`spec.dataset["base_model"]`, set for the built-in class-digits) on MNIST
  plus the class's drawings, at a tenth of the job's learning rate so that it keeps what it knew; or
- builds `spec.net` with one output per label and trains it on the class's drawings plus synthetic drawings of the
  labels the project can draw (A-Z, 0-9: core.letters); a digit dataset with no model to start from trains on
  MNIST plus the drawings instead.
The class's drawings are repeated so that they make up a third of every epoch (a fifth when fine-tuning, so that
MNIST keeps its weight): a few dozen drawings beside thousands of others would otherwise hardly count. Half of the
drawings in every batch are distorted afresh (core.augment).
"""
import math
import time

import keras
import numpy as np

from webapp.core.job_progress import (Cancelled, JobFailed, make_progress_callback, make_tensorboard_callback,
                                      predict_in_batches, test_report)
from webapp.core.labelled_data import DIGIT_LABELS, BadLabelledData, read_npz, too_few

HOLD_OUT = 0.2  # of each label's drawings, kept to test on (at least one)
CLASS_SHARE = 1 / 3  # of every epoch: the class's drawings, repeated as needed
MIN_EPOCH = 2000  # drawings an epoch has at least (a dataset of labels nobody can draw has only its own)
SYNTHETIC_PER_LABEL = 100  # made-up drawings of each label the project can draw
FINE_TUNE_RATE = 0.1  # fine-tuning trains at this fraction of the job's learning rate
FINE_TUNE_MNIST_PER_EPOCH = 4000  # MNIST digits in each fine-tuning epoch, drawn afresh from all of them
FINE_TUNE_CLASS_SHARE = 0.2  # less than from scratch: more MNIST keeps the model reading MNIST as well as before
DISTORTED = 0.5  # the fraction of each batch distorted afresh


def train_on_dataset(spec, emit, should_stop, store, mnist_path, verbose=0, model_id=None, tensorboard_dir=None):
    """Train on `spec.dataset` and save the model into `store`; the `done` event's result."""
    from webapp.core import networks
    from webapp.core.device import device_name, setup_accelerator

    dataset = spec.dataset
    if not dataset or not dataset.get("npz"):
        raise JobFailed(f"the drawings of dataset {spec.data!r} did not reach the job")
    try:
        images, label_indices, labels = read_npz(dataset["npz"])
    except BadLabelledData as exc:
        raise JobFailed(f"the dataset's drawings could not be read: {exc}") from None
    digits = sorted(labels) == sorted(DIGIT_LABELS)
    if digits:  # outputs are digits 0-9, whatever the order in the file
        label_indices = np.array([int(label) for label in labels])[label_indices]
        labels = list(DIGIT_LABELS)
    counts = {label: int((label_indices == i).sum()) for i, label in enumerate(labels)}
    problem = too_few(counts, labels)
    if problem:
        raise JobFailed(problem)
    base_model = dataset.get("base_model") if digits else None

    setup_accelerator()
    device = device_name()
    keras.utils.set_random_seed(spec.seed)
    drawings = images.astype(np.float32) / 255.0
    train, held = hold_out(label_indices, len(labels), spec.seed)
    tensorboard, tensorboard_status = make_tensorboard_callback(tensorboard_dir)
    mnist = load_job_mnist(mnist_path) if digits else None
    learnt_from = data_facts(dataset, mnist)  # now: the web removes the file when the job ends
    beside = {"mnist": "sample" if mnist.is_sample else "mnist"} if mnist else {}  # never the server's path
    emit("state", state="running", device=device, data=dataset.get("name") or spec.data,
         drawings=int(len(train)), held_out=int(len(held)), **beside,
         **({"tensorboard": tensorboard_status} if tensorboard_status else {}))

    started = time.perf_counter()
    before = None
    if base_model:
        model = load_base_model(store, base_model)
        before, _ = read_held_out(model, drawings[held], label_indices[held], labels)
        model.compile(optimizer=networks.make_optimizer(spec.optimizer, spec.learning_rate * FINE_TUNE_RATE),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        pool, pool_labels = mnist.x_train, mnist.y_train
        per_epoch, share = FINE_TUNE_MNIST_PER_EPOCH, FINE_TUNE_CLASS_SHARE
    else:
        model = networks.build(spec.net, spec.hidden, spec.optimizer, spec.learning_rate, outputs=len(labels))
        if digits:
            pool, pool_labels = mnist.x_train, mnist.y_train
        else:
            pool, pool_labels = synthetic(labels, spec.seed, emit, should_stop)
        per_epoch, share = len(pool), CLASS_SHARE

    data = EpochMix(pool, pool_labels, drawings[train], label_indices[train], per_epoch, share, spec.batch_size,
                    seed=spec.seed, flat=model.input_shape[1:] == (784,))
    progress = make_progress_callback(emit, should_stop, spec.epochs, len(data), spec.batch_size)
    callbacks = [progress] if tensorboard is None else [tensorboard, progress]  # an epoch is written, then told
    validation = (networks.shape_inputs(model, drawings[held]), label_indices[held])
    model.fit(data, epochs=spec.epochs, validation_data=validation, callbacks=callbacks, verbose=verbose)
    seconds = round(time.perf_counter() - started, 1)
    if should_stop():
        raise Cancelled()

    after, held_out_accuracy = read_held_out(model, drawings[held], label_indices[held], labels)
    per_label = {"labels": labels, "held_out": {label: int((label_indices[held] == i).sum())
                                                 for i, label in enumerate(labels)},
                 "before": before, "after": after}
    report = test_report(model, mnist.x_test, mnist.y_test) if digits else {
        "test_accuracy": held_out_accuracy, "test_samples": int(len(held))}
    meta = {
        "network": spec.net,
        "recipe": spec.public_dict(),
        "epochs": spec.epochs,
        "dataset": dataset.get("id") or spec.data,
        "dataset_name": dataset.get("name") or spec.data,
        **({} if digits else {"labels": labels}),
        **({"base_model": base_model} if base_model else {}),
        "drawings": int(len(train)),
        "seconds": seconds,
        "test_accuracy": report["test_accuracy"],
        "held_out_accuracy": held_out_accuracy,
        "parameters": int(model.count_params()),
        "data": learnt_from,
        "device": device,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }
    saved_id = store.save(model, meta, model_id=model_id)
    return {**report, "model": saved_id, "seconds": seconds, "device": device, "parameters": meta["parameters"],
            "data": meta["dataset_name"], "dataset": meta["dataset"], "per_label": per_label,
            "held_out_accuracy": held_out_accuracy, **({"labels": labels} if not digits else {}),
            **({"base_model": base_model} if base_model else {}), **beside}


def hold_out(label_indices, n_labels, seed):
    """(train, held) index arrays: HOLD_OUT of every label's drawings, at least one, chosen at random."""
    rng = np.random.default_rng(seed)
    held = []
    for label in range(n_labels):
        mine = rng.permutation(np.flatnonzero(label_indices == label))
        held.extend(mine[: max(1, round(len(mine) * HOLD_OUT))])
    held = np.sort(np.array(held, dtype=np.int64))
    return np.setdiff1d(np.arange(len(label_indices)), held), held


def read_held_out(model, images, label_indices, labels):
    """({label: the fraction of its drawings `model` reads right}, the fraction of all it reads right)."""
    right = predict_in_batches(model, images).argmax(axis=1) == label_indices
    return {label: float(right[label_indices == i].mean()) for i, label in enumerate(labels)}, float(right.mean())


def load_job_mnist(mnist_path):
    """The job's MNIST if it names a file that is there (the full set), else the bundled sample: never a download."""
    from pathlib import Path

    from webapp.core.datasets import load_mnist

    if mnist_path and mnist_path != "sample" and Path(mnist_path).expanduser().is_file():
        return load_mnist(mnist_path)
    return load_mnist("sample")


def load_base_model(store, model_id):
    from webapp.core.models import LoadError, check_digit_model, load_file
    from webapp.core.modelstore import UnknownModel

    try:
        model = load_file(store.path(model_id))
        check_digit_model(model)
    except UnknownModel:
        raise JobFailed(f"the model to fine-tune, {model_id!r}, is not there any more") from None
    except LoadError as exc:
        raise JobFailed(f"the model to fine-tune, {model_id!r}, cannot be used: {exc}") from None
    return model


def synthetic(labels, seed, emit, should_stop):
    """Made-up drawings of the labels the project can draw (none for the others)."""
    from webapp.core.letters import drawable, drawn_labels

    count = len(drawable(labels)) * SYNTHETIC_PER_LABEL
    if count:
        emit("state", state="running", stage=f"drawing {count:,} examples of its labels to train on")
    made = drawn_labels(labels, SYNTHETIC_PER_LABEL, seed, should_stop)
    if made is None:
        raise Cancelled()
    return made


def data_facts(dataset, mnist):
    """What the model learnt from, for its metadata: the dataset's file, and the MNIST beside it."""
    from pathlib import Path

    from webapp.core.datasets import file_sha256

    facts = {"source": f"dataset {dataset.get('id')}", "sha256": file_sha256(Path(dataset["npz"])), "sample": False}
    if mnist is not None:
        facts.update(mnist={"source": mnist.source, "sha256": mnist.sha256}, sample=mnist.is_sample)
    return facts


class EpochMix(keras.utils.PyDataset):
    """Batches for one epoch: `per_epoch` picks from `pool` (MNIST or synthetic drawings; afresh each epoch when
    fewer than all) and the class's drawings, repeated to `share` of the epoch; DISTORTED of them distorted."""

    def __init__(self, pool, pool_labels, drawings, drawing_labels, per_epoch, share, batch_size, seed=0, flat=False):
        super().__init__(workers=2)
        self.images = np.concatenate([pool.astype(np.float32), drawings])
        self.labels = np.concatenate([pool_labels.astype(np.int64), drawing_labels.astype(np.int64)])
        self.pool_size, self.per_epoch = len(pool), min(per_epoch, len(pool))
        wanted = max(self.per_epoch * share / (1 - share), MIN_EPOCH - self.per_epoch, len(drawings))
        self.repeat = math.ceil(wanted / len(drawings))
        self.batch_size, self.reshape = batch_size, (-1, 784) if flat else (-1, 28, 28, 1)
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self):
        return math.ceil(len(self.order) / self.batch_size)

    def __getitem__(self, index):
        from webapp.core.augment import distort

        picked = self.order[index * self.batch_size: (index + 1) * self.batch_size]
        batch = self.images[picked].copy()
        rng = np.random.default_rng(self.rng.integers(1 << 32))
        for i in np.flatnonzero(rng.random(len(batch)) < DISTORTED):
            batch[i] = distort(batch[i], rng)
        return batch.reshape(self.reshape), self.labels[picked]

    def on_epoch_end(self):
        pool = self.rng.choice(self.pool_size, self.per_epoch, replace=False)
        mine = np.tile(np.arange(self.pool_size, len(self.images)), self.repeat)
        self.order = self.rng.permutation(np.concatenate([pool, mine]))
