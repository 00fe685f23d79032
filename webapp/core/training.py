"""The training runner: a job spec in, ordered progress events out.

`run_job` knows nothing of Flask, processes or sockets. It is given a function
to emit events and one that says whether to stop; the CLI, the local worker
process or a remote worker can all drive it.

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
import contextlib
import csv
import io
import math
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from webapp.core.recipes import OPTIMIZER_NAMES, RECIPES

BATCH_EVENT_INTERVAL = 0.1  # seconds: at most ~10 batch events a second
GALLERY_SIZE = 24
DRAWINGS_PER = 10  # with augment, one synthetic canvas drawing joins every 10 MNIST digits
DATASET_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # a class's dataset, as `data` (the web fills spec.dataset)

# Allowed ranges: (low, high) inclusive. The web layer reports them on bad input.
LIMITS = {
    "epochs": (1, 100),
    "xor_epochs": (1, 10000),
    "batch_size": (1, 4096),
    "learning_rate": (1e-6, 1000.0),
    "hidden": (1, 4096),
    "xor_hidden": (1, 16),
    "seed": (0, 2**31 - 1),
}


class SpecError(ValueError):
    """A job parameter is invalid; `field` names it."""

    def __init__(self, field, message):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class JobFailed(Exception):
    """Training could not finish; the message is for the user."""


class Cancelled(Exception):
    pass


@dataclass
class JobSpec:
    net: str
    epochs: int
    batch_size: int
    optimizer: str
    learning_rate: float
    hidden: int
    seed: int = 0
    augment: bool = False
    lr_schedule: str = "constant"  # or "cosine": decay the rate to 1% over the run
    data: str = "mnist"  # "mnist" (full, via the loader), "sample" (the bundled slice) or a dataset's id
    extra: dict = field(default_factory=dict)
    # For a dataset job: {"id", "name", "labels", "npz": absolute path of its labelled_data file,
    # "base_model": the model to fine-tune (class-digits) or None}; see core.class_training.
    dataset: dict | None = None

    def to_dict(self):
        return asdict(self)

    def public_dict(self):
        """to_dict without the server's path to the dataset's file: for events and model metadata."""
        params = self.to_dict()
        if params["dataset"]:
            params["dataset"] = {key: value for key, value in params["dataset"].items() if key != "npz"}
        return params


def parse_spec(params, limits=LIMITS):
    """Validate user parameters into a JobSpec, filling in the tutorial's recipe."""
    if not isinstance(params, dict):
        raise SpecError("body", "expected a JSON object")
    net = params.get("net")
    if not isinstance(net, str) or net not in RECIPES:  # a list or dict would not even hash
        raise SpecError("net", f"must be one of {', '.join(RECIPES)}")
    recipe = RECIPES[net]
    prefix = "xor_" if net == "xor" else ""

    def number(name, default, kind, limit_key=None):
        value = params.get(name, default)
        if value is None:
            value = default
        low, high = limits[limit_key or name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not math.isfinite(value)):  # isfinite(10**400) raises
            raise SpecError(name, f"must be a number from {low} to {high}")
        if kind is int and value != int(value):
            raise SpecError(name, f"must be a whole number from {low} to {high}")
        if not (low <= value <= high):
            raise SpecError(name, f"must be from {low} to {high}")
        return kind(value)

    optimizer = params.get("optimizer", recipe.optimizer)
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZER_NAMES:
        raise SpecError("optimizer", f"must be one of {', '.join(OPTIMIZER_NAMES)}")
    data = params.get("data", "mnist")
    if not isinstance(data, str) or not (data in ("mnist", "sample") or DATASET_ID.match(data)):
        raise SpecError("data", "must be 'mnist' (full MNIST), 'sample' (the small bundled slice) or a dataset's id")
    if net == "xor" and data not in ("mnist", "sample"):
        raise SpecError("data", "XOR learns its four points; a dataset needs mlp, mlp2 or cnn")
    augment = params.get("augment", False)
    if not isinstance(augment, bool):
        raise SpecError("augment", "must be true or false")
    lr_schedule = params.get("lr_schedule", "constant")
    if lr_schedule not in ("constant", "cosine"):
        raise SpecError("lr_schedule", "must be 'constant' or 'cosine'")
    return JobSpec(
        net=net,
        epochs=number("epochs", recipe.epochs, int, prefix + "epochs"),
        batch_size=number("batch_size", recipe.batch_size, int),
        optimizer=optimizer,
        learning_rate=number("learning_rate", recipe.learning_rate, float),
        hidden=number("hidden", recipe.hidden, int, prefix + "hidden"),
        seed=number("seed", 0, int),
        augment=augment,
        lr_schedule=lr_schedule,
        data=data,
    )


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


def run_job(spec, emit, should_stop, store, mnist_path=None, verbose=0, model_id=None, tensorboard_dir=None):
    """Train `spec`, save the model into `store`, and emit events to the end.

    `tensorboard_dir`: a digit job writes TensorBoard event files there (train/ and validation/).
    Never raises for a training problem: every ending is a `done` event.
    """
    try:
        if spec.net == "xor":
            from webapp.core import xor

            result = xor.run_job(spec, emit, should_stop, store, model_id=model_id)
        elif spec.dataset is not None or spec.data not in ("mnist", "sample"):  # the class's own drawings
            from webapp.core.class_training import train_on_dataset

            result = train_on_dataset(spec, emit, should_stop, store, mnist_path, verbose, model_id, tensorboard_dir)
        else:
            result = _train_digits(spec, emit, should_stop, store, mnist_path, verbose, model_id, tensorboard_dir)
    except Cancelled:
        return emit("done", state="cancelled")
    except JobFailed as exc:
        return emit("done", state="failed", error=str(exc))
    except MemoryError:
        return emit("done", state="failed", error="out of memory: try a smaller batch size or network")
    except Exception as exc:  # a bug or a library error: fail this job, keep its reason
        from webapp.core.datasets import MnistUnavailable

        if isinstance(exc, MnistUnavailable):
            return emit("done", state="failed", error=str(exc))
        if isinstance(exc, OSError):
            return emit("done", state="failed", error=f"could not save the model: {exc.strerror or exc}")
        text = str(exc).splitlines()[0][:300] if str(exc) else ""
        name = type(exc).__name__
        if "OOM" in text or "ResourceExhausted" in name:
            text = "out of memory: try a smaller batch size or network"
        return emit("done", state="failed", error=f"{name}: {text}" if text else name)
    if should_stop():
        return emit("done", state="cancelled")
    return emit("done", state="succeeded", result=result)


def _train_digits(spec, emit, should_stop, store, mnist_path, verbose, model_id, tensorboard_dir=None):
    import keras

    from webapp.core import networks
    from webapp.core.augment import AugmentedDigits
    from webapp.core.datasets import load_mnist
    from webapp.core.device import device_name, setup_accelerator
    from webapp.core.drawings import drawn_digits_in_parallel

    setup_accelerator()
    device = device_name()
    mnist = load_mnist("sample" if spec.data == "sample" else mnist_path)
    tensorboard, tensorboard_status = make_tensorboard_callback(tensorboard_dir)
    emit("state", state="running", device=device, data=mnist.source, data_sha256=mnist.sha256,
         train_samples=int(len(mnist.x_train)), **({"tensorboard": tensorboard_status} if tensorboard_status else {}))

    keras.utils.set_random_seed(spec.seed)
    started = time.perf_counter()
    images, labels = mnist.x_train, mnist.y_train
    if spec.augment:  # MNIST and synthetic canvas drawings, each distorted afresh every epoch
        count = len(images) // DRAWINGS_PER
        emit("state", state="running", stage=f"drawing {count:,} digits to train on")  # takes a while on one core
        made = drawn_digits_in_parallel(count, spec.seed, should_stop)
        if made is None:
            raise Cancelled()
        images = np.concatenate([images, made[0]])
        labels = np.concatenate([labels, made[1].astype(labels.dtype)])
    drawings = len(images) - len(mnist.x_train)

    batches = math.ceil(len(images) / spec.batch_size)
    learning_rate = spec.learning_rate
    if spec.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, spec.epochs * batches, alpha=0.01)
    model = networks.build(spec.net, spec.hidden, spec.optimizer, learning_rate)
    x_test = networks.shape_inputs(model, mnist.x_test)
    progress = make_progress_callback(emit, should_stop, spec.epochs, batches, spec.batch_size,
                                      scheduled=spec.lr_schedule != "constant")
    callbacks = [progress] if tensorboard is None else [tensorboard, progress]  # an epoch is written, then told

    try:
        if spec.augment:
            flat = model.input_shape[1:] == (784,)
            data = AugmentedDigits(images, labels, spec.batch_size, seed=spec.seed, workers=2,
                                   reshape=(-1, 784) if flat else (-1, 28, 28, 1))
            model.fit(data, epochs=spec.epochs, validation_data=(x_test, mnist.y_test),
                      callbacks=callbacks, verbose=verbose)
        else:
            model.fit(networks.shape_inputs(model, images), labels, epochs=spec.epochs, batch_size=spec.batch_size,
                      validation_data=(x_test, mnist.y_test), callbacks=callbacks, verbose=verbose)
    except BaseException:
        if tensorboard is not None:  # cancelled or failed: close its files, so the epochs so far are on disk
            with contextlib.suppress(Exception):  # the training's own error is the one to tell
                tensorboard.on_train_end()
        raise
    seconds = time.perf_counter() - started
    if should_stop():
        raise Cancelled()

    report = test_report(model, mnist.x_test, mnist.y_test)
    meta = {
        "network": spec.net,
        "recipe": spec.public_dict(),
        "epochs": spec.epochs,
        "drawings": drawings,
        "seconds": round(seconds, 1),
        "test_accuracy": report["test_accuracy"],
        "parameters": int(model.count_params()),
        "data": {"source": mnist.source, "sha256": mnist.sha256, "sample": mnist.is_sample},
        "device": device,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }
    saved_id = store.save(model, meta, model_id=model_id)
    return {**report, "model": saved_id, "seconds": round(seconds, 1), "device": device,
            "data": mnist.source, "parameters": meta["parameters"]}


# -- in a worker's child process -------------------------------------------------

NICENESS = 19  # the lowest priority: training yields the CPU to the web process, so predictions stay fast


def child_main(job_id, spec_dict, start_seq, events, stop, settings, parent_pid):
    """The entry point of a worker's child process (webapp.web.worker.LocalWorker):
    train one job at low CPU priority and put its events on the queue `events`;
    `stop` is the cancel flag."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    lower_priority()
    exit_with_parent(parent_pid)

    from webapp.core.datasets import local_mnist_path
    from webapp.core.modelstore import ModelStore

    store = ModelStore(settings.home / "models", shipped=[settings.models], owner=False)
    emit = EventStream(job_id, events.put, start_seq=start_seq)
    # A web job never downloads: it reads the file the server named, or Keras's cache (checked at POST time).
    run_job(JobSpec(**spec_dict), emit, stop.is_set, store, mnist_path=local_mnist_path(settings.mnist),
            tensorboard_dir=tensorboard_folder(settings.home, job_id))
    events.close()
    events.join_thread()  # every event is in the pipe before the process ends


def lower_priority():
    """Nice 19 for this process. Linux ranks nice values only among the
    processes of one session (autogroup), so the job also takes a session of
    its own at autogroup nice 19: otherwise it would get a full share against
    everything else on the machine, the teacher's browser included."""
    if hasattr(os, "setsid"):
        try:
            os.setsid()
            with open("/proc/self/autogroup", "w") as f:
                f.write(str(NICENESS))
        except OSError:  # no autogroup here, or not allowed: plain nice still applies
            pass
    try:
        os.nice(NICENESS)
        for thread_id in os.listdir("/proc/self/task"):  # threads started before now keep their nice
            os.setpriority(os.PRIO_PROCESS, int(thread_id), NICENESS)
    except (OSError, AttributeError):  # no /proc (not Linux): os.nice was enough
        pass


def exit_with_parent(parent_pid):
    """If the web process dies, nobody reads our events: stop at once."""

    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            threading.Event().wait(1.0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
