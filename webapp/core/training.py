"""The training runner: a job spec in, ordered progress events out.

`run_job` knows nothing of Flask, processes or sockets. It is given a function
to emit events and one that says whether to stop; the CLI, the local worker
process or a remote worker can all drive it. What the events are, and what
every runner shares, is in core.job_progress.
"""
import contextlib
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from webapp.core.job_progress import Cancelled, JobFailed, make_progress_callback, make_tensorboard_callback, test_report
from webapp.core.class_data import DATASET_ID
from webapp.core.recipes import OPTIMIZER_NAMES, RECIPES

DRAWINGS_PER = 10  # with augment, one synthetic canvas drawing joins every 10 MNIST digits

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
