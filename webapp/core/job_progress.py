"""What every kind of training job shares, whatever it trains: how it stops (Cancelled, JobFailed), how its
events are numbered (EventStream), the Keras callbacks that report its progress and write TensorBoard files, the
metrics file a job's epochs make, and the test report of a digit model. The runners (core.training for MNIST,
core.class_training for a class's drawings, core.xor) all use it, and it imports none of them.

Events are dicts: {"job", "seq", "type", ...}, with seq counting 1, 2, 3, ...
- state: {"state": "running", "device": ...}; then, while a step before the
         first batch takes long, {"state": "running", "stage": "what it is doing"}; a digit job's
         first says whether it writes TensorBoard files: "tensorboard": {"on": bool, "why"?}
- batch: {"epoch", "batch", "batches", "loss", "accuracy", "samples_per_s", "eta_s", ...}
- epoch: {"epoch", "epochs", "logs": {...Keras logs, plus "learning_rate" when it is scheduled}, "seconds"}
- done:  {"state": "succeeded" | "failed" | "cancelled", "error"?, "result"?}; a dataset job's result
         (core.class_training) adds "per_label" and "held_out_accuracy"
"""
import base64
import csv
import io
import math
import os
import time

import numpy as np

BATCH_EVENT_INTERVAL = 0.1  # seconds: at most ~10 batch events a second
GALLERY_SIZE = 24


class JobFailed(Exception):
    """Training could not finish; the message is for the user."""


class Cancelled(Exception):
    pass


class EventStream:
    """Numbers a job's events 1, 2, 3, ... and hands them to `sink`."""

    def __init__(self, job_id, sink, start_seq=0):
        self.job_id, self.sink, self.seq = job_id, sink, start_seq

    def __call__(self, type_, **fields):
        self.seq += 1
        event = {"job": self.job_id, "seq": self.seq, "type": type_, **fields}
        self.sink(event)
        return event


def _floats(logs):
    return {k: float(v) for k, v in (logs or {}).items()}


def make_progress_callback(emit, should_stop, epochs, batches, batch_size, scheduled=False):
    """`scheduled`: the learning rate changes as it trains, so each epoch's logs carry it (as Keras's
    LearningRateScheduler puts it in the logs, and so into CSVLogger's file)."""
    import keras

    class Progress(keras.callbacks.Callback):
        """Streams throttled batch events and every epoch event; stops on request or NaN."""

        def on_train_begin(self, logs=None):
            self.started = time.perf_counter()
            self.last_emit = 0.0
            self.last_batch_total = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1
            self.epoch_started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            # Raising (rather than setting stop_training) skips the epoch's
            # validation pass, so a cancel takes effect within one batch.
            if should_stop():
                raise Cancelled()
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(loss):
                raise JobFailed(
                    f"the loss became NaN or infinite in epoch {self.epoch}, batch {batch + 1}: "
                    "the learning rate is probably too high"
                )
            now = time.perf_counter()
            if now - self.last_emit < BATCH_EVENT_INTERVAL:
                return
            logs = _floats(logs)
            done_batches = (self.epoch - 1) * batches + batch + 1
            elapsed = now - self.started
            rate = (done_batches - self.last_batch_total) * batch_size / max(now - self.last_emit, 1e-9)
            if self.last_emit == 0.0:
                rate = done_batches * batch_size / max(elapsed, 1e-9)
            remaining = epochs * batches - done_batches
            emit(
                "batch",
                epoch=self.epoch,
                epochs=epochs,
                batch=batch + 1,
                batches=batches,
                loss=logs.get("loss"),
                accuracy=logs.get("accuracy"),
                samples_per_s=round(rate, 1),
                elapsed_s=round(elapsed, 2),
                eta_s=round(elapsed / done_batches * remaining, 1),
            )
            self.last_emit, self.last_batch_total = now, done_batches

        def on_test_batch_end(self, batch, logs=None):
            if should_stop():  # cancelled during the validation pass
                raise Cancelled()

        def on_epoch_end(self, epoch, logs=None):
            logs = _floats(logs)
            if not all(math.isfinite(v) for v in logs.values()):
                raise JobFailed(
                    f"the loss became NaN or infinite in epoch {epoch + 1}: the learning rate is probably too high"
                )
            if should_stop():
                raise Cancelled()
            if scheduled:  # the value TensorBoard's epoch_learning_rate reads, at the same moment
                logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            emit(
                "epoch",
                epoch=epoch + 1,
                epochs=epochs,
                logs=logs,
                seconds=round(time.perf_counter() - self.epoch_started, 3),
            )

    return Progress()


# -- take the curves home ------------------------------------------------------

CSV_KEYS = ("accuracy", "loss", "val_accuracy", "val_loss")  # a digit job's logs: the header before any epoch


def metrics_csv(epoch_events):
    """A job's epoch events as the file keras.callbacks.CSVLogger writes for the same fit: `epoch`
    counting from 0, the logs' keys sorted (val_* added as NA where there is no validation), CRLF lines."""
    out = io.StringIO()
    keys = sorted((epoch_events[0].get("logs") or {}) if epoch_events else CSV_KEYS)
    if not any(key.startswith("val_") for key in keys):
        keys += [f"val_{key}" for key in keys]
    writer = csv.DictWriter(out, fieldnames=["epoch", *keys], dialect=csv.excel)
    writer.writeheader()
    for event in epoch_events:
        logs = event.get("logs") or {}
        writer.writerow({"epoch": event["epoch"] - 1, **{key: logs.get(key, "NA") for key in keys}})
    return out.getvalue()


TENSORBOARD_MISSING = ("the tensorboard package is not installed on the server "
                       "(pip install -r requirements-tensorboard.txt)")
TENSORBOARD_NEEDS_TENSORFLOW = ("Keras's TensorBoard callback writes through TensorFlow, and this server trains "
                                "with the {backend} backend (KERAS_BACKEND)")


def tensorboard_folder(home, job_id):
    """Where a web job writes its TensorBoard event files: NEURONLAB_HOME/tensorboard/<job id>."""
    return os.path.join(home, "tensorboard", job_id)


def make_tensorboard_callback(folder):
    """(Keras's TensorBoard callback writing into `folder`, or None; {"on": bool, "why"?} for the job's
    events, or None when no folder was asked for). Without the optional tensorboard package
    (requirements-tensorboard.txt), or on a backend other than TensorFlow, the job trains without it."""
    if folder is None:
        return None, None
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":  # the callback's writers are tf.summary's: a JAX or torch host may have no TensorFlow
        return None, {"on": False, "why": TENSORBOARD_NEEDS_TENSORFLOW.format(backend=backend)}
    try:
        import tensorboard  # noqa: F401  (tf.summary's writers live in this package)
    except ImportError:
        return None, {"on": False, "why": TENSORBOARD_MISSING}
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:  # never the path: clients read this
        return None, {"on": False, "why": f"its folder could not be made: {exc.strerror or exc}"}

    class EpochTensorBoard(keras.callbacks.TensorBoard):
        """Keras's own callback, per epoch. Its on_train_batch_end calls tf.summary.scalar for every
        batch's logs even with update_freq="epoch", where nothing is recorded: ~0.2 ms a call, two a
        batch, ~4% of the tutorial MLP's ~9.5 ms batch on 2 cores. Passing no logs keeps the rest
        (the graph, written once)."""

        def on_train_batch_end(self, batch, logs=None):
            super().on_train_batch_end(batch, None)

    # No histograms, no profiling, no per-batch scalars: the overhead target is 1.05 of a plain fit.
    callback = EpochTensorBoard(log_dir=str(folder), histogram_freq=0, write_graph=True, write_images=False,
                                update_freq="epoch", profile_batch=0)
    return callback, {"on": True}


def png_data_url(image):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((255 - np.clip(image, 0, 1) * 255).astype(np.uint8), mode="L").save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def predict_in_batches(model, images, batch_size=1000):
    """Class probabilities for many images, by calling the model on slices."""
    import keras

    from webapp.core.networks import shape_inputs

    parts = [  # convert_to_numpy: a torch tensor that needs grad, or sits on the GPU, refuses np.asarray
        keras.ops.convert_to_numpy(model(shape_inputs(model, images[i : i + batch_size]), training=False))
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(parts)


def test_report(model, images, labels):
    """Test accuracy, confusion matrix and a gallery of mistakes."""
    probabilities = predict_in_batches(model, images)
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    wrong = np.flatnonzero(predicted != labels)
    gallery = [
        {
            "index": int(i),
            "true": int(labels[i]),
            "predicted": int(predicted[i]),
            "confidence": round(float(probabilities[i, predicted[i]]), 4),
            "image": png_data_url(images[i]),
        }
        for i in wrong[:GALLERY_SIZE]
    ]
    return {
        "test_accuracy": float((predicted == labels).mean()),
        "test_samples": int(len(labels)),
        "confusion": confusion.tolist(),
        "misclassified": gallery,
        "misclassified_count": int(len(wrong)),
    }
