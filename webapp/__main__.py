"""Command line: `python -m webapp [serve|worker|train|predict|xor|xor-study] ...`.

The commands mirror the tutorial's scripts: train a network, recognise a
picture from a file, open up the XOR net. With no command it serves the app.
"""
import argparse
import os
import re
import sys

from webapp import config
from webapp.core import xor_cli


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m webapp",
        description="Neuron Lab: draw digits, train networks, step through XOR. "
        "With no command, starts the web app.",
    )
    parser.add_argument("--mnist", metavar="PATH", help="MNIST in Keras npz format (default: $NEURONLAB_MNIST, "
                        "else keras.datasets)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="start the web app (the default)")
    serve.add_argument("--host", default=None, help="address to listen on (default 0.0.0.0, or $NEURONLAB_HOST)")
    serve.add_argument("--port", type=int, default=None, help="port (default 5000, or $PORT)")
    serve.add_argument("--workers", type=int, default=None, metavar="N",
                       help="web processes (default 1, or $NEURONLAB_WEB_PROCESSES); more than one needs "
                       "NEURONLAB_REDIS_URL")

    worker = commands.add_parser(
        "worker",
        help="train the web's jobs here: a Celery worker on $NEURONLAB_REDIS_URL",
        description="Take training jobs from the web processes that share NEURONLAB_REDIS_URL, one at a time, "
        "on this host's GPU when it has one. Run one per accelerator (CUDA_VISIBLE_DEVICES=0, 1, ...). "
        "No shared folder is needed: the job comes with its data and the model goes back through Redis.",
    )
    worker.add_argument("--name", default="neuronlab@%h", help="the Celery node name (default neuronlab@%%h); "
                        "give each worker on one host its own")
    worker.add_argument("--loglevel", default="INFO")

    train = commands.add_parser(
        "train",
        help="train a network on MNIST and save it into models/",
        description="Train one of the tutorial's networks with its recipe, showing a progress bar, "
        "and save it (with a metadata file) into models/ as NET.keras.",
    )
    train.add_argument("net", choices=["xor", "mlp", "mlp2", "cnn"])
    train.add_argument("--epochs", type=int, help="default: the tutorial's recipe")
    train.add_argument("--batch-size", type=int)
    train.add_argument("--optimizer", choices=["sgd", "rmsprop", "adam"])
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--hidden", type=int, help="hidden units")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--augment", action="store_true",
                       help="train for digits drawn in a browser: mix in synthetic canvas drawings (one per "
                       "ten MNIST digits) and distort half of all digits each epoch (slant, squash, brush width)")
    train.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant",
                       help="'cosine' decays the learning rate to 1%% of its start over the run")
    train.add_argument("--data", default="mnist", metavar="mnist|sample|FILE.npz",
                       help="'sample' trains on the small bundled MNIST slice (for trying things out); FILE.npz "
                       "trains on labelled drawings (a class's dataset as exported: x_train, y_train, labels): "
                       "letters or other labels give a network with one output per label, saved as NET-FILE; "
                       "the digits 0-9 fine-tune the digit model --base on MNIST plus the drawings")
    train.add_argument("--base", metavar="MODEL",
                       help="with a FILE.npz of digits: the model to fine-tune (default: NET, from --out or the "
                       "shipped models); 'none' trains a new one on MNIST plus the drawings")
    train.add_argument("--mnist", dest="train_mnist", metavar="PATH", help="MNIST in Keras npz format")
    train.add_argument("--out", default=str(config.SHIPPED_MODELS), help="folder to save into (default: models/)")
    train.add_argument("--name", help="model id to save as (default: the network's name)")
    train.add_argument("--tensorboard", metavar="DIR",
                       help="write TensorBoard event files into DIR (needs requirements-tensorboard.txt)")

    predict = commands.add_parser(
        "predict",
        help="recognise a digit in an image file",
        description="Print the digit a model sees in a PNG, JPEG, WebP or GIF file, and its probability.",
    )
    predict.add_argument("model", help="a model id (mlp, mlp2, cnn or a trained one) or a .keras/.h5 file")
    predict.add_argument("image", help="the picture of a digit")

    xor_cli.add_commands(commands)

    args = parser.parse_args(argv)
    command = args.command or "serve"
    if command == "serve":
        from webapp.web.server import serve

        return serve(host=getattr(args, "host", None), port=getattr(args, "port", None), mnist=args.mnist,
                     workers=getattr(args, "workers", None))
    if command == "worker":
        return worker_command(args)
    if command == "train":
        return train_command(args)
    if command == "predict":
        return predict_command(args)
    return xor_cli.run(args)


def worker_command(args):
    """A Celery worker for the distributed mode (webapp.core.execution.celery_app)."""
    from webapp.core.execution.redis_link import RedisUnavailable, check_redis

    url = config.Settings.from_env().redis_url
    if not url:
        return fail("the worker takes its jobs from Redis: set NEURONLAB_REDIS_URL (e.g. redis://HOST:6379/0), "
                    "the same as the web processes'")
    try:
        check_redis(url)
    except RedisUnavailable as exc:
        return fail(str(exc))
    from webapp.core.execution.celery_app import make_celery
    from webapp.core.execution.redis_link import QUEUE

    make_celery(url).worker_main(["worker", f"--loglevel={args.loglevel}", "--concurrency=1", "--pool=prefork",
                                  "-Q", QUEUE, "-n", args.name, "--without-gossip", "--without-mingle"])
    return 0


def train_command(args):
    from webapp.core.modelstore import ModelStore
    from webapp.core.job_progress import EventStream
    from webapp.core.training import SpecError, parse_spec, run_job

    dataset = None
    if args.data not in ("mnist", "sample"):
        try:
            dataset = dataset_from_file(args.data, args.net, args.base)
        except ValueError as exc:
            return fail(f"--data {exc}")
    params = {"net": args.net, "seed": args.seed, "augment": args.augment,
              "data": dataset["id"] if dataset else args.data, "lr_schedule": args.lr_schedule}
    for name in ("epochs", "batch_size", "optimizer", "learning_rate", "hidden"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    try:
        spec = parse_spec(params)
    except SpecError as exc:
        return fail(f"--{exc.field.replace('_', '-')} {exc.message}")
    spec.dataset = dataset

    def show(event):
        if event["type"] == "state" and event.get("stage"):
            print(f"Preparing: {event['stage']}")
        elif event["type"] == "state" and event.get("state") == "running":
            print(f"Training {spec.net} on {event.get('device', 'CPU')} with {event.get('data', '?')} data")
            if event.get("tensorboard", {}).get("on") is False:
                print(f"No TensorBoard files: {event['tensorboard'].get('why')}")

    emit = EventStream("cli", show)
    mnist_path = args.train_mnist or args.mnist
    if dataset:  # the model to fine-tune may be a shipped one; MNIST beside the drawings only from a file
        from webapp.core.datasets import local_mnist_path

        store = ModelStore(args.out, shipped=[config.SHIPPED_MODELS])
        mnist_path = local_mnist_path(mnist_path or os.environ.get("NEURONLAB_MNIST"))
    else:
        store = ModelStore(args.out)
    model_id = args.name or (f"{spec.net}-{dataset['id']}" if dataset else spec.net)
    final = run_job(spec, emit, lambda: False, store, mnist_path=mnist_path,
                    verbose=1 if spec.net != "xor" else 0, model_id=model_id, tensorboard_dir=args.tensorboard)
    if final["state"] != "succeeded":
        return fail(final.get("error", final["state"]))
    result = final["result"]
    scores = f"test accuracy {result['test_accuracy']:.2%}"
    if "per_label" in result:
        show_per_label(result["per_label"])
        scores = f"held-out accuracy {result['held_out_accuracy']:.2%}" + (
            f", MNIST test accuracy {result['test_accuracy']:.2%}" if "confusion" in result else "")
    print(f"Saved {args.out}/{result['model']}.keras: {scores} in {result['seconds']:.0f} s")
    return 0


def dataset_from_file(path, net, base):
    """spec.dataset for a labelled_data npz named on the command line; ValueError says what is wrong."""
    from webapp.core.labelled_data import DIGIT_LABELS, BadLabelledData, read_npz

    if not os.path.isfile(path):
        raise ValueError(f"must be mnist, sample or an npz file of labelled drawings; there is no file {path}")
    try:
        labels = read_npz(path)[2]
    except BadLabelledData as exc:
        raise ValueError(f"{path}: {exc}") from None
    stem = re.sub(r"[^a-z0-9_-]+", "-", os.path.splitext(os.path.basename(path))[0].lower()).strip("-_")
    digits = sorted(labels) == sorted(DIGIT_LABELS)
    return {"id": stem[:48] or "dataset", "name": os.path.basename(path), "labels": labels,
            "npz": os.path.abspath(path),
            "base_model": (None if (base or "").lower() == "none" else base or net) if digits else None}


def show_per_label(per_label):
    """Accuracy per label on the held-out drawings: before (the model fine-tuned) and after."""
    before = per_label.get("before")
    for label in per_label["labels"]:
        was = f"{before[label]:.0%} -> " if before else ""
        print(f"  {label}: {was}{per_label['after'][label]:.0%} of {per_label['held_out'][label]} held out")


def predict_command(args):
    from webapp.core.preprocess import BadImage, BlankImage, preprocess
    from webapp.core.models import LoadError, load_model

    try:
        with open(args.image, "rb") as f:
            image = preprocess(f.read())
    except OSError as exc:
        return fail(f"cannot read {args.image}: {exc.strerror}")
    except (BadImage, BlankImage) as exc:
        return fail(f"{args.image}: {exc}")
    try:
        model = load_model(args.model, config.model_store())
    except LoadError as exc:
        return fail(str(exc))
    from webapp.core.networks import shape_inputs

    probabilities = [float(p) for p in model(shape_inputs(model, image[None]), training=False)[0]]
    digit = max(range(10), key=probabilities.__getitem__)
    print(f"{digit} ({probabilities[digit]:.1%})")
    return 0


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
