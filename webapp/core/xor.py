"""The XOR net opened up: a fast trainer of the tutorial's recipe, the forward
pass written out step by step, and the convergence study.

The network is Dense(hidden, relu) -> Dense(1, sigmoid) on the four XOR cases.
The trainer follows Keras's `model.fit(x, y, batch_size=1, epochs=1000)` with
SGD(0.1) and binary cross-entropy step for step, in float32:

- weights start glorot-uniform, U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)),
  and biases start at zero;
- every epoch the four samples are reshuffled and each one makes an SGD step
  w -= lr * dloss/dw;
- the loss is binary cross-entropy; inside `fit` Keras computes it from the
  sigmoid's logits (the sigmoid caches them), so its gradient is exactly
  sigmoid(z) - y, with no clipping;
- ReLU's gradient at exactly 0 is 0, as in TensorFlow, so a unit whose input
  is 0 (a zero bias on the input [0, 0]) learns nothing from that sample;
- the epoch's loss and accuracy are means over its four steps, each measured
  before its update, as Keras logs them.

Many runs train at once: every array has a leading "run" axis, so 300 seeds
cost little more than one. Runs of different hidden sizes share a batch by
padding with zero units, which stay exactly zero (no input, no gradient).

This module needs only NumPy; Keras is imported only to save a trained model.
"""
import math
import time

import numpy as np
from scipy.special import expit

from webapp.core.modelstore import model_name

XOR_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_TARGETS = np.array([0, 1, 1, 0], dtype=np.float32)
TUTORIAL_SUCCESS = {2: 0.20, 4: 0.60, 6: 0.90}  # what the tutorial reports
MAX_HIDDEN = 64  # the breakdown's limit; training jobs allow 1..16
BOUNDARY_SIZE = 21  # the decision-boundary grid is 21 x 21 points over [0, 1]^2
DEVICE = "CPU (NumPy)"
MINUS, TIMES = "\u2212", "\u00d7"


# -- the recipe's starting point ---------------------------------------------

def glorot_limit(fan_in, fan_out):
    return math.sqrt(6.0 / (fan_in + fan_out))


def initial_run(hidden, seed, epochs):
    """Starting weights and every epoch's sample order for one (hidden, seed) run.

    Each run has its own random stream, so a run is the same whether it trains
    alone (the page, the CLI) or among hundreds (the study)."""
    rng = np.random.default_rng(seed)
    limit1, limit2 = glorot_limit(2, hidden), glorot_limit(hidden, 1)
    weights = {
        "W1": rng.uniform(-limit1, limit1, (2, hidden)).astype(np.float32),
        "b1": np.zeros(hidden, np.float32),
        "W2": rng.uniform(-limit2, limit2, (hidden, 1)).astype(np.float32),
        "b2": np.zeros(1, np.float32),
    }
    orders = rng.permuted(np.tile(np.arange(4), (epochs, 1)), axis=1)
    return weights, orders


def stack_runs(runs, hidden):
    """Stack single runs into batched arrays, padding every net to `hidden` units.

    Shapes keep a leading run axis and matrix axes, so a whole layer is one
    np.matmul: W1 (runs, 2, H), b1 (runs, 1, H), W2 (runs, H, 1), b2 (runs, 1, 1)."""
    count = len(runs)
    W1 = np.zeros((count, 2, hidden), np.float32)
    b1 = np.zeros((count, 1, hidden), np.float32)
    W2 = np.zeros((count, hidden, 1), np.float32)
    b2 = np.zeros((count, 1, 1), np.float32)
    for i, (weights, _) in enumerate(runs):
        h = weights["b1"].shape[0]
        W1[i, :, :h], b1[i, 0, :h], W2[i, :h], b2[i, 0] = weights["W1"], weights["b1"], weights["W2"], weights["b2"]
    orders = np.stack([order for _, order in runs])  # (runs, epochs, 4)
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}, orders


def unstack(batch, i, hidden):
    """One run's weights, in Keras's shapes, out of a batch."""
    return {
        "W1": batch["W1"][i, :, :hidden].copy(),
        "b1": batch["b1"][i, 0, :hidden].copy(),
        "W2": batch["W2"][i, :hidden].copy(),
        "b2": batch["b2"][i, 0].copy(),
    }


# -- training ------------------------------------------------------------------

def bce_from_logits(z, y):
    """Binary cross-entropy of sigmoid(z) against y, computed stably from z."""
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))


sigmoid = expit  # 1 / (1 + e^-z), one ufunc call


def train(batch, orders, learning_rate=0.1, on_epoch=None):
    """Per-sample SGD on XOR for every run in `batch`, in place.

    batch: W1, b1, W2, b2 as made by stack_runs (float32).
    orders: (runs, epochs, 4) sample indices.
    on_epoch(epoch, losses, accuracies) is called after each epoch with that
    epoch's per-run mean loss and accuracy (it may raise to stop).
    Returns the per-run loss of every epoch, (runs, epochs).
    """
    W1, b1, W2, b2 = batch["W1"], batch["b1"], batch["W2"], batch["b2"]
    lr = np.float32(learning_rate)
    runs, epochs = orders.shape[0], orders.shape[1]
    xs = XOR_INPUTS[orders][:, :, :, None, :]  # (runs, epochs, 4, 1, 2): each step's sample as a row
    ys = XOR_TARGETS[orders][:, :, :, None, None]
    logits = np.empty((runs, epochs, 4), np.float32)  # each step's L2 before its update: the logged loss
    for epoch in range(epochs):
        for step in range(4):
            x, y = xs[:, epoch, step], ys[:, epoch, step]
            # forward: L1 = x.W1 + b1, ReLU, L2 = X2.W2 + b2, sigmoid
            l1 = np.matmul(x, W1) + b1
            x2 = np.maximum(l1, 0)
            l2 = np.matmul(x2, W2) + b2
            logits[:, epoch, step] = l2[:, 0, 0]
            # backward: dloss/dL2 = sigmoid(L2) - y, then the chain rule, times the learning rate
            d_l2 = (expit(l2) - y) * lr
            d_l1 = d_l2 * W2.transpose(0, 2, 1) * (l1 > 0)
            W2 -= x2.transpose(0, 2, 1) * d_l2
            b2 -= d_l2
            W1 -= x.transpose(0, 2, 1) * d_l1
            b1 -= d_l1
        if on_epoch is not None:
            z, y = logits[:, epoch], XOR_TARGETS[orders[:, epoch]]
            on_epoch(epoch + 1, bce_from_logits(z, y).mean(axis=1), ((z > 0) == (y > 0.5)).mean(axis=1))
    return bce_from_logits(logits, XOR_TARGETS[orders]).mean(axis=2)


def forward(weights, inputs):
    """The network's outputs for `inputs` (n, 2), in float64: the reference pass."""
    X = np.asarray(inputs, np.float64)
    W1, b1 = np.asarray(weights["W1"], np.float64), np.asarray(weights["b1"], np.float64)
    W2, b2 = np.asarray(weights["W2"], np.float64), np.asarray(weights["b2"], np.float64)
    return sigmoid(np.maximum(X @ W1 + b1, 0) @ W2 + b2)[:, 0]


def batch_outputs(batch, inputs=XOR_INPUTS):
    """Every run's outputs on `inputs`: (runs, n)."""
    l1 = np.matmul(inputs, batch["W1"]) + batch["b1"]
    return sigmoid(np.matmul(np.maximum(l1, 0), batch["W2"]) + batch["b2"])[:, :, 0]


def solved(outputs):
    """True where all four outputs sit on the right side of 0.5 (strictly)."""
    return np.all(np.where(XOR_TARGETS > 0.5, outputs > 0.5, outputs < 0.5), axis=-1)


def train_one(hidden=2, seed=0, epochs=1000, learning_rate=0.1, on_epoch=None):
    """Train one net; returns (weights, per-epoch losses, outputs on the four cases)."""
    batch, orders = stack_runs([initial_run(hidden, seed, epochs)], hidden)
    losses = train(batch, orders, learning_rate, on_epoch=on_epoch and (
        lambda epoch, loss, accuracy: on_epoch(epoch, float(loss[0]), float(accuracy[0]), batch)))
    return unstack(batch, 0, hidden), losses[0], batch_outputs(batch)[0]


def decision_boundary(weights, size=BOUNDARY_SIZE):
    """The net's output on a size x size grid over [0, 1]^2; row i is y = i / (size - 1)."""
    axis = np.linspace(0, 1, size)
    xs, ys = np.meshgrid(axis, axis)
    return forward(weights, np.column_stack([xs.ravel(), ys.ravel()])).reshape(size, size)


# -- the breakdown -------------------------------------------------------------

def fmt(value):
    """A number as the tutorial prints it: 4 decimals, a real minus sign."""
    value = float(value)
    if value == int(value) and abs(value) < 1e15:
        text = str(int(value))
    else:
        text = f"{value:.4f}"
        if float(text) == 0:
            text = "0.0000"
    return text.replace("-", MINUS)


def term(value):
    """A number inside a sum: negative ones go in parentheses."""
    text = fmt(value)
    return f"({text})" if text.startswith(MINUS) else text


def weighted_sum(xs, ws, b, result):
    products = " + ".join(f"{term(x)}{TIMES}{term(w)}" for x, w in zip(xs, ws))
    return f"{products} + {term(b)} = {fmt(result)}"


def as_rows(matrix):
    return np.asarray(matrix, np.float64).tolist()


def breakdown(weights, inputs):
    """The forward pass for `inputs` (n, 2) as the tutorial writes it out.

    Every step names its formula, the matrices going in, the value coming out,
    and for every element of that value the arithmetic behind it and the
    elements it came from (as [matrix, row, column])."""
    X = np.asarray(inputs, np.float64)
    W1, b1 = np.asarray(weights["W1"], np.float64), np.asarray(weights["b1"], np.float64).reshape(-1)
    W2, b2 = np.asarray(weights["W2"], np.float64), np.asarray(weights["b2"], np.float64).reshape(-1)
    hidden = W1.shape[1]
    L1 = X @ W1 + b1
    X2 = np.maximum(L1, 0)
    L2 = X2 @ W2 + b2
    out = sigmoid(L2)
    rows = range(X.shape[0])

    def dense_elements(inp, name_in, W, name_w, b, name_b, result):
        return [
            {
                "index": [r, c],
                "text": weighted_sum(inp[r], W[:, c], b[c], result[r, c]),
                "from": [[name_in, r, k] for k in range(inp.shape[1])]
                + [[name_w, k, c] for k in range(W.shape[0])] + [[name_b, 0, c]],
            }
            for r in rows for c in range(result.shape[1])
        ]

    steps = [
        {
            "name": "L1",
            "title": "First layer: weighted sums",
            "formula": "L1 = X\u00b7W1 + b1",
            "inputs": {"X": as_rows(X), "W1": as_rows(W1), "b1": [b1.tolist()]},
            "operands": ["X", "W1", "b1"],
            "operators": ["\u00b7", "+"],
            "output": as_rows(L1),
            "elements": dense_elements(X, "X", W1, "W1", b1, "b1", L1),
        },
        {
            "name": "X2",
            "title": "ReLU: negatives become 0",
            "formula": "X2 = ReLU(L1) = max(0, L1)",
            "inputs": {"L1": as_rows(L1)},
            "operands": ["L1"],
            "apply": "ReLU",
            "output": as_rows(X2),
            "elements": [
                {"index": [r, c], "text": f"max(0, {fmt(L1[r, c])}) = {fmt(X2[r, c])}", "from": [["L1", r, c]]}
                for r in rows for c in range(hidden)
            ],
        },
        {
            "name": "L2",
            "title": "Second layer: weighted sum",
            "formula": "L2 = X2\u00b7W2 + b2",
            "inputs": {"X2": as_rows(X2), "W2": as_rows(W2), "b2": [b2.tolist()]},
            "operands": ["X2", "W2", "b2"],
            "operators": ["\u00b7", "+"],
            "output": as_rows(L2),
            "elements": dense_elements(X2, "X2", W2, "W2", b2, "b2", L2),
        },
        {
            "name": "output",
            "title": "Sigmoid: squash into (0, 1)",
            "formula": "output = sigmoid(L2) = 1 / (1 + e^(\u2212L2))",
            "inputs": {"L2": as_rows(L2)},
            "operands": ["L2"],
            "apply": "sigmoid",
            "output": as_rows(out),
            "elements": [
                {"index": [r, 0], "text": f"1 / (1 + e^({fmt(-L2[r, 0])})) = {fmt(out[r, 0])}", "from": [["L2", r, 0]]}
                for r in rows
            ],
        },
    ]
    return {
        "input": as_rows(X),
        "hidden": hidden,
        "weights": weights_json(weights),
        "steps": steps,
        "output": out[:, 0].tolist(),
    }


def weights_json(weights):
    return {
        "W1": as_rows(weights["W1"]),
        "b1": np.asarray(weights["b1"], np.float64).reshape(-1).tolist(),
        "W2": as_rows(np.asarray(weights["W2"]).reshape(-1, 1)),
        "b2": np.asarray(weights["b2"], np.float64).reshape(-1).tolist(),
    }


def predictions(weights):
    """The four XOR cases: input, target, output and whether it is right."""
    outputs = forward(weights, XOR_INPUTS)
    return [
        {"input": XOR_INPUTS[i].astype(int).tolist(), "target": int(XOR_TARGETS[i]), "output": float(outputs[i]),
         "correct": bool((outputs[i] > 0.5) == (XOR_TARGETS[i] > 0.5) and outputs[i] != 0.5)}
        for i in range(4)
    ]


# -- Keras models ----------------------------------------------------------------

class NotXorModel(ValueError):
    """The model is not Dense(h, relu) -> Dense(1, sigmoid) on two inputs."""


def weights_of(model):
    """W1, b1, W2, b2 of a Keras model shaped like the XOR net, or NotXorModel."""
    dense = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    kinds = [type(layer).__name__ for layer in dense]
    if kinds != ["Dense", "Dense"]:
        raise NotXorModel(f"the XOR breakdown needs Dense -> Dense; this model has {', '.join(kinds) or 'no layers'}")
    first, second = dense
    activations = [getattr(layer.activation, "__name__", "?") for layer in dense]
    if activations != ["relu", "sigmoid"] or not (first.use_bias and second.use_bias):
        raise NotXorModel(f"the XOR breakdown needs relu then sigmoid with biases; this model has {activations}")
    W1, b1 = first.get_weights()
    W2, b2 = second.get_weights()
    if W1.shape[0] != 2 or W2.shape[1] != 1:
        raise NotXorModel(f"the XOR breakdown needs 2 inputs and 1 output; this model has "
                          f"{W1.shape[0]} inputs and {W2.shape[1]} outputs")
    if not 1 <= W1.shape[1] <= MAX_HIDDEN:
        raise NotXorModel(f"the XOR breakdown shows 1 to {MAX_HIDDEN} hidden units; this model has {W1.shape[1]}")
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}


def keras_model(weights, learning_rate=0.1):
    """The tutorial's Keras model holding `weights`."""
    from webapp.core.networks import build_xor

    model = build_xor(hidden=weights["W1"].shape[1], optimizer="sgd", learning_rate=learning_rate)
    model.set_weights([weights["W1"], weights["b1"], weights["W2"], weights["b2"]])
    return model


# -- the training job ------------------------------------------------------------

def event_intervals(epochs):
    """Epoch events about 200 times a run; weights and the boundary about 40 times."""
    return max(1, epochs // 200), max(1, epochs // 40)


def run_name(hidden, seed, success):
    """The name the model store gives such a run: "XOR · 2 hidden · seed 3", " · failed" if it did not learn XOR."""
    return model_name({"network": "xor", "hidden": hidden, "seed": seed, "success": bool(success)})


def parameter_count(hidden):
    return 2 * hidden + hidden + hidden + 1  # W1, b1, W2, b2


def weights_from_json(weights):
    """The inverse of weights_json: float32 arrays shaped as the Keras layers hold them."""
    return {
        "W1": np.asarray(weights["W1"], np.float32).reshape(2, -1),
        "b1": np.asarray(weights["b1"], np.float32).reshape(-1),
        "W2": np.asarray(weights["W2"], np.float32).reshape(-1, 1),
        "b2": np.asarray(weights["b2"], np.float32).reshape(-1),
    }


def save_run(store, recipe, result, model_id=None, **extra):
    """Save a finished run (a run_job result: its final weights and figures) as a Keras model; returns the id.

    `recipe` is the job's spec as a dict. The metadata says whether the run learned XOR (`success`) and names
    it so, e.g. "XOR · 1 hidden · seed 3 · failed"."""
    import keras

    weights = weights_from_json(result["weights"])
    model = keras_model(weights, recipe.get("learning_rate", 0.1))
    meta = {
        "network": "xor",
        "name": run_name(result["hidden"], result["seed"], result["success"]),
        "recipe": recipe,
        "epochs": recipe.get("epochs"),
        "hidden": result["hidden"],
        "seed": result["seed"],
        "seconds": result["seconds"],
        "test_accuracy": result["test_accuracy"],
        "success": result["success"],
        "final_loss": result["final_loss"],
        "parameters": int(model.count_params()),
        "device": result.get("device", DEVICE),
        "trainer": "webapp.core.xor (NumPy, the tutorial's recipe step for step)",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "keras": keras.__version__,
        **extra,
    }
    return store.save(model, meta, model_id=model_id)


def run_job(spec, emit, should_stop, store, model_id=None, keep_failed=None):
    """Train the XOR net of `spec` (webapp.core.training.JobSpec); save it into `store` if it learned XOR.

    Emits `state`, then `epoch` events (loss, accuracy; every few with the
    weights, the four outputs and the decision boundary), and returns the result.

    A run that did not learn XOR is not saved (its result still carries the final weights and predictions,
    so the teacher may keep it later: webapp.web.xor_api's /api/xor/keep), unless `keep_failed`. By default
    a caller that names the model (the CLI: `train xor` saves models/xor) keeps it either way: it asked for
    that file; a web job names none, so a failed run never becomes anyone's model by itself."""
    from webapp.core.job_progress import Cancelled, JobFailed

    if keep_failed is None:
        keep_failed = model_id is not None
    if spec.optimizer != "sgd" or spec.batch_size != 1:
        raise JobFailed("the XOR lab trains the tutorial's recipe: optimizer sgd with batch size 1")
    emit("state", state="running", device=DEVICE, data="the four XOR cases", hidden=spec.hidden, seed=spec.seed)
    loss_every, snapshot_every = event_intervals(spec.epochs)
    compute = {"seconds": 0.0, "since": time.perf_counter()}

    def on_epoch(epoch, loss, accuracy, batch):
        last = epoch == spec.epochs
        if epoch % loss_every and epoch != 1 and not last:
            return
        compute["seconds"] += time.perf_counter() - compute["since"]  # event work is not training
        if should_stop():
            raise Cancelled()
        if not math.isfinite(loss):
            raise JobFailed(f"the loss became NaN or infinite in epoch {epoch}: the learning rate is too high")
        fields = {"epoch": epoch, "epochs": spec.epochs, "logs": {"loss": loss, "accuracy": accuracy}}
        if epoch % snapshot_every == 0 or epoch == 1 or last:
            weights = unstack(batch, 0, spec.hidden)
            fields["weights"] = {k: np.round(v, 4).tolist() for k, v in weights_json(weights).items()}
            fields["outputs"] = [round(float(o), 4) for o in forward(weights, XOR_INPUTS)]
            fields["boundary"] = np.round(decision_boundary(weights), 2).tolist()
        emit("epoch", **fields)
        compute["since"] = time.perf_counter()

    weights, losses, outputs = train_one(spec.hidden, spec.seed, spec.epochs, spec.learning_rate, on_epoch)
    compute["seconds"] += time.perf_counter() - compute["since"]
    if should_stop():
        raise Cancelled()

    success = bool(solved(outputs))
    final = predictions(weights)
    result = {
        "model": None,
        "saved": False,
        "success": success,
        "name": run_name(spec.hidden, spec.seed, success),
        "predictions": final,
        "final_loss": float(losses[-1]),
        "test_accuracy": sum(p["correct"] for p in final) / 4,
        "seconds": round(compute["seconds"], 3),
        "device": DEVICE,
        "hidden": spec.hidden,
        "seed": spec.seed,
        "parameters": parameter_count(spec.hidden),
        "weights": weights_json(weights),
    }
    if success or keep_failed:
        result["model"] = save_run(store, spec.to_dict(), result, model_id=model_id)
        result["saved"] = True
    return result


# -- the convergence study -------------------------------------------------------

def wilson_interval(successes, trials, z=1.959964):
    """The Wilson score 95% interval for a success rate."""
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def study(sizes=(2, 4, 6), seeds=100, epochs=1000, learning_rate=0.1, first_seed=0, progress=None,
          should_stop=None):
    """Train every hidden size in `sizes` with seeds first_seed .. first_seed+seeds-1.

    All runs train as one batch (smaller nets padded with zero units).
    progress(event) gets {"epoch", "epochs", "solved": {size: runs solved so far}}
    ten times along the way, then {"size", "result"} for each size.
    Returns {"results": {size: {...}}, "seconds", "seeds", "epochs", ...}."""
    started = time.perf_counter()
    sizes = list(dict.fromkeys(sizes))
    seed_list = range(first_seed, first_seed + seeds)
    runs = [initial_run(size, seed, epochs) for size in sizes for seed in seed_list]
    batch, orders = stack_runs(runs, max(sizes))
    size_of_run = np.repeat(sizes, seeds)
    report_every = max(1, epochs // 10)

    def solved_per_size():
        wins = solved(batch_outputs(batch))
        return wins, {size: int(wins[size_of_run == size].sum()) for size in sizes}

    def on_epoch(epoch, _losses, _accuracies):
        if should_stop is not None and should_stop():
            from webapp.core.job_progress import Cancelled

            raise Cancelled()
        if progress is not None and epoch % report_every == 0 and epoch != epochs:
            progress({"epoch": epoch, "epochs": epochs, "solved": solved_per_size()[1]})

    losses = train(batch, orders, learning_rate, on_epoch=on_epoch)
    wins, _ = solved_per_size()
    results = {}
    for size in sizes:
        mine = size_of_run == size
        successes = int(wins[mine].sum())
        low, high = wilson_interval(successes, seeds)
        results[size] = {
            "hidden": size,
            "successes": successes,
            "runs": seeds,
            "success_rate": successes / seeds,
            "ci95": [round(low, 4), round(high, 4)],
            "tutorial": TUTORIAL_SUCCESS.get(size),
            "successful_seeds": [first_seed + int(i) for i in np.flatnonzero(wins[mine])],
            "median_final_loss": float(np.median(losses[mine, -1])),
        }
        if progress is not None:
            progress({"size": size, "result": results[size]})
    return {
        "results": results,
        "seeds": seeds,
        "first_seed": first_seed,
        "epochs": epochs,
        "learning_rate": learning_rate,
        "seconds": round(time.perf_counter() - started, 3),
    }
