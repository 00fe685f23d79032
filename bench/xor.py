"""XOR speed and faithfulness, against plain Keras in the same process.

    .venv/bin/python -m bench.xor                 # speed: one run, the 3x100 study, one Keras fit
    .venv/bin/python -m bench.xor --faithful 6    # 6 real model.fit runs beside our trainer
    .venv/bin/python -m bench.xor --lockstep 2    # Keras train_on_batch in our sample order

Speed prints the seconds and the ratios (Keras fit / ours). Faithfulness
starts our trainer from the weights Keras initialised, lets each shuffle on
its own, and prints both loss curves' milestones and outcomes; lockstep also
feeds Keras our sample order, so the two must follow the same trajectory.
"""
import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from webapp.core import xor  # noqa: E402

MILESTONES = (1, 10, 100, 250, 500, 1000)


def time_one_run(repeats=5, hidden=2):
    times = []
    for seed in range(repeats):
        started = time.perf_counter()
        xor.train_one(hidden=hidden, seed=seed)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def time_keras_fit(hidden=2, seed=0, epochs=1000):
    import keras

    from webapp.core.networks import build_xor

    keras.utils.set_random_seed(seed)
    model = build_xor(hidden)
    started = time.perf_counter()
    history = model.fit(xor.XOR_INPUTS, xor.XOR_TARGETS, batch_size=1, epochs=epochs, verbose=0)
    return time.perf_counter() - started, model, history.history["loss"]


def speed(args):
    one = time_one_run()
    study = xor.study(sizes=(2, 4, 6), seeds=100)
    print(f"one app run (hidden 2, 1000 epochs, median of 5): {one:.3f} s")
    print(f"study 3 sizes x 100 seeds:                       {study['seconds']:.3f} s")
    for size, result in study["results"].items():
        low, high = result["ci95"]
        print(f"  hidden {size}: {result['success_rate']:.0%} succeed (95% CI {low:.0%}-{high:.0%}); "
              f"tutorial {xor.TUTORIAL_SUCCESS.get(size, float('nan')):.0%}")
    if args.no_keras:
        return
    keras_s, _, _ = time_keras_fit()
    print(f"one Keras model.fit run (batch 1, 1000 epochs):  {keras_s:.1f} s")
    print(f"ratio Keras fit / one app run: {keras_s / one:.0f}x")
    print(f"ratio Keras fit / whole 300-run study: {keras_s / study['seconds']:.1f}x "
          f"(the study does 300 runs; one fit does 1)")


def outcome(outputs):
    return "solved" if xor.solved(np.asarray(outputs)) else "failed"


def faithful(args):
    """Real model.fit runs; ours from the same initial weights with its own shuffling."""
    import keras

    from webapp.core.networks import build_xor

    rows = []
    sizes = [2, 4, 6]
    for i in range(args.faithful):
        hidden, seed = sizes[i % len(sizes)], 1000 + i
        keras.utils.set_random_seed(seed)
        model = build_xor(hidden)
        W1, b1, W2, b2 = [w.copy() for w in model.get_weights()]
        started = time.perf_counter()
        history = model.fit(xor.XOR_INPUTS, xor.XOR_TARGETS, batch_size=1, epochs=1000, verbose=0)
        keras_s = time.perf_counter() - started
        keras_out = np.asarray(model(xor.XOR_INPUTS, training=False))[:, 0]
        keras_loss = history.history["loss"]

        _, orders = xor.initial_run(hidden, seed, 1000)
        batch, orders = xor.stack_runs([({"W1": W1, "b1": b1, "W2": W2, "b2": b2}, orders)], hidden)
        ours_loss = xor.train(batch, orders)[0]
        ours_out = xor.batch_outputs(batch)[0]
        row = {
            "hidden": hidden, "keras_seed": seed, "keras_seconds": round(keras_s, 1),
            "keras": outcome(keras_out), "ours": outcome(ours_out),
            "keras_outputs": np.round(keras_out, 4).tolist(), "ours_outputs": np.round(ours_out, 4).tolist(),
            "keras_loss": {e: round(float(keras_loss[e - 1]), 4) for e in MILESTONES},
            "ours_loss": {e: round(float(ours_loss[e - 1]), 4) for e in MILESTONES},
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    agree = sum(r["keras"] == r["ours"] for r in rows)
    print(f"outcome agrees in {agree} of {len(rows)} runs")


def lockstep(args):
    """Keras's own SGD steps in our sample order: the trajectories must coincide."""
    for i in range(args.lockstep):
        hidden, seed, epochs = (2, 4, 6)[i % 3], 2000 + i, args.epochs
        weights, orders = xor.initial_run(hidden, seed, epochs)
        model = xor.keras_model(weights)
        keras_loss = []
        started = time.perf_counter()
        for epoch in range(epochs):
            losses = []
            for k in orders[epoch]:
                loss = model.train_on_batch(xor.XOR_INPUTS[[k]], xor.XOR_TARGETS[[k]])
                losses.append(float(loss[0]) if isinstance(loss, (list, tuple)) else float(loss))
            keras_loss.append(float(np.mean(losses)))
        keras_s = time.perf_counter() - started
        batch, stacked = xor.stack_runs([(weights, orders)], hidden)
        ours_loss = xor.train(batch, stacked)[0]
        ours = xor.unstack(batch, 0, hidden)
        keras_weights = dict(zip(("W1", "b1", "W2", "b2"), model.get_weights()))
        weight_diff = max(float(np.max(np.abs(ours[k] - keras_weights[k]))) for k in ours)
        loss_diff = float(np.max(np.abs(np.asarray(keras_loss) - ours_loss)))
        print(json.dumps({"hidden": hidden, "seed": seed, "epochs": epochs, "keras_seconds": round(keras_s, 1),
                          "max_weight_difference": weight_diff, "max_epoch_loss_difference": loss_diff,
                          "keras": outcome(np.asarray(model(xor.XOR_INPUTS))[:, 0]),
                          "ours": outcome(xor.forward(ours, xor.XOR_INPUTS))}), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faithful", type=int, default=0, metavar="N", help="N real model.fit runs (~35 s each)")
    parser.add_argument("--lockstep", type=int, default=0, metavar="N", help="N train_on_batch runs")
    parser.add_argument("--epochs", type=int, default=1000, help="epochs for --lockstep")
    parser.add_argument("--no-keras", action="store_true", help="speed without the Keras fit run")
    args = parser.parse_args(argv)
    if args.faithful:
        faithful(args)
    elif args.lockstep:
        lockstep(args)
    else:
        speed(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
