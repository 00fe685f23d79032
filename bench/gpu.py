"""The tutorial's MLP and CNN recipes on whatever device and Keras backend this machine has, beside the tutorial's GTX 1060.

    .venv/bin/python -m bench.gpu                          # TensorFlow (Keras's default), full MNIST, 8 epochs
    KERAS_BACKEND=jax python -m bench.gpu --mnist PATH     # a JAX host (jax[cuda12]); torch likewise
    python bench/gpu.py --sample --epochs 1                # a quick check on the bundled 2,000-digit sample
    python gpu.py ...                                      # copied beside the webapp package, on a bare GPU host

Builds each network with the app's own builder (webapp.core.networks) and trains it with the tutorial's recipe
(webapp.core.recipes: optimizer, rate, batch size) exactly as a job does: model.fit on MNIST with the test set as
validation. Prints the backend, the device, epoch 1's seconds apart (it includes compiling: XLA, tf.function or
torch's first calls), the later epochs' seconds each, the total and the test accuracy, beside the tutorial's
figures for 8 epochs on a GTX 1060. Asserts nothing.

MNIST: --mnist PATH (Keras's npz), else $NEURONLAB_MNIST, else shared/data/mnist.npz beside or inside the repo.
--budget (default 270 s) stops a network's training after the epoch that would leave too little time for the
rest, so the whole run fits in 5 minutes of a lent GPU; the table then says how many epochs ran.

With KERAS_BACKEND=jax or torch it never imports TensorFlow (a GPU host may have none); the last line says so.
Where KERAS_BACKEND is unset and TensorFlow is not installed, it picks JAX, else PyTorch, and says so.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:
    import webapp  # copied beside the package, or run with -m from the repo
except ImportError:  # run as bench/gpu.py: the repo root is not on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import webapp

# Keras and the builders are imported in import_training_parts(), after the arguments: these two never touch them.
from webapp.core.datasets import SAMPLE_PATH, load_mnist  # noqa: E402
from webapp.core.recipes import RECIPES  # noqa: E402

TUTORIAL_GTX1060_SECONDS = {"mlp": 18, "cnn": 46}  # the tutorial's own figures, 8 epochs on a GTX 1060
TUTORIAL_EPOCHS = 8
NETS = ("mlp", "mlp2", "cnn")


def default_mnist():
    """$NEURONLAB_MNIST, else the shared MNIST beside the repo (or inside it, as a lent machine's copy has it)."""
    if os.environ.get("NEURONLAB_MNIST"):
        return os.environ["NEURONLAB_MNIST"]
    root = Path(webapp.__file__).resolve().parent.parent
    for candidate in (root.parent / "shared" / "data" / "mnist.npz", root / "shared" / "data" / "mnist.npz"):
        if candidate.is_file():
            return str(candidate)
    return None


def choose_backend():
    """KERAS_BACKEND as set; unset on a host without TensorFlow (a JAX or PyTorch image): the one installed, so a
    bare `python -m bench.gpu` runs there. Returns a note for the output, or None."""
    import importlib.util

    if os.environ.get("KERAS_BACKEND") or importlib.util.find_spec("tensorflow"):
        return None
    for name in ("jax", "torch"):
        if importlib.util.find_spec(name):
            os.environ["KERAS_BACKEND"] = name
            return f"KERAS_BACKEND was unset and TensorFlow is not installed: chose {name}"
    return None


def import_training_parts():
    """Keras and the app's builders and device helpers: every webapp module this bench trains with.
    None of them imports TensorFlow unless Keras's backend is TensorFlow."""
    import keras

    from webapp.core import device, networks

    return keras, networks, device


def backend_version(keras):
    name = keras.backend.backend()
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(name)
    version = getattr(sys.modules.get(module), "__version__", "?") if module else "?"
    return f"{name} {version} (keras {keras.__version__})"


def epoch_timer(keras, deadline):
    """Seconds of every epoch; stops training after an epoch when another one would pass `deadline`."""

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            self.seconds.append(now - self.started)
            later = self.seconds[1:] or self.seconds
            if now + statistics.median(later) > deadline:
                self.model.stop_training = True

    return EpochTimer()


def train_one(net, mnist, epochs, deadline, parts):
    keras, networks, _ = parts
    recipe = RECIPES[net]
    keras.utils.set_random_seed(0)
    model = networks.build(net)
    x_train = networks.shape_inputs(model, mnist.x_train)
    x_test = networks.shape_inputs(model, mnist.x_test)
    timer = epoch_timer(keras, deadline)
    started = time.perf_counter()
    model.fit(x_train, mnist.y_train, epochs=epochs, batch_size=recipe.batch_size,
              validation_data=(x_test, mnist.y_test), callbacks=[timer], verbose=0)
    total = time.perf_counter() - started
    scores = model.evaluate(x_test, mnist.y_test, batch_size=1000, verbose=0, return_dict=True)
    later = timer.seconds[1:]
    return {
        "net": net,
        "epochs": len(timer.seconds),
        "first_s": timer.seconds[0],
        "later_s": statistics.median(later) if later else None,
        "total_s": total,
        "test_accuracy": float(scores["accuracy"]),
    }


def seconds(value, width):
    return f"{value:>{width}.1f}" if value is not None else f"{'-':>{width}}"


def print_table(rows):
    print(f"{'net':<5} {'epochs':>6} {'epoch 1 s':>10} {'later s/epoch':>14} {'total s':>8} "
          f"{'8 epochs s':>11} {'test acc':>9} {'GTX 1060, 8 epochs (tutorial)':>30}")
    for row in rows:
        # epoch 1 plus seven later ones: comparable with the tutorial's 8 epochs whatever --epochs was
        eight = row["first_s"] + (TUTORIAL_EPOCHS - 1) * row["later_s"] if row["later_s"] is not None else None
        tutorial = TUTORIAL_GTX1060_SECONDS.get(row["net"])
        print(f"{row['net']:<5} {row['epochs']:>6} {seconds(row['first_s'], 10)} {seconds(row['later_s'], 14)} "
              f"{seconds(row['total_s'], 8)} {seconds(eight, 11)} {row['test_accuracy']:>9.2%} "
              f"{(f'{tutorial} s' if tutorial else '-'):>30}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=None, help="MNIST in Keras's npz layout (default: $NEURONLAB_MNIST, "
                                                      "else shared/data/mnist.npz beside the repo)")
    parser.add_argument("--sample", action="store_true", help=f"the bundled sample ({SAMPLE_PATH.name}): a quick check")
    parser.add_argument("--epochs", type=int, default=TUTORIAL_EPOCHS)
    parser.add_argument("--nets", nargs="+", choices=NETS, default=["mlp", "cnn"])
    parser.add_argument("--budget", type=float, default=270.0,
                        help="seconds for the whole run; training stops early rather than pass it (default 270)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    path = "sample" if args.sample else (args.mnist or default_mnist())
    if path is None:
        print("No MNIST: pass --mnist PATH (Keras's npz) or set NEURONLAB_MNIST, or --sample for the bundled sample.")
        return 2
    mnist = load_mnist(path, allow_download=False)

    chosen = choose_backend()
    parts = import_training_parts()
    keras, _, device = parts
    device.setup_accelerator()
    print(f"backend: {backend_version(keras)}" + (f" ({chosen})" if chosen else ""))
    print(f"device:  {device.device_name()}")
    print(f"data:    {mnist.source} ({len(mnist.x_train):,} training, {len(mnist.x_test):,} test digits)")
    print(f"recipes: {', '.join(f'{net} {RECIPES[net].optimizer} batch {RECIPES[net].batch_size}' for net in args.nets)}; "
          f"{args.epochs} epochs, the test set as validation every epoch", flush=True)

    rows = []
    deadline = started + args.budget
    for net in args.nets:
        rows.append(train_one(net, mnist, args.epochs, deadline, parts))
        print(f"  {net}: {rows[-1]['epochs']} epochs in {rows[-1]['total_s']:.1f} s", flush=True)
    print()
    print_table(rows)
    print("epoch 1 includes compiling; '8 epochs s' = epoch 1 + 7 later epochs, to set beside the tutorial's figure")
    if any(row["epochs"] < args.epochs for row in rows):
        print(f"stopped early to stay within --budget {args.budget:.0f} s: see the epochs column")
    print(f"whole run: {time.perf_counter() - started:.1f} s; "
          f"TensorFlow loaded: {'yes' if 'tensorflow' in sys.modules else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
