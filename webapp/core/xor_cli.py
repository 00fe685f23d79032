"""`python -m webapp xor` and `python -m webapp xor-study`: the tutorial's XOR chapter in a terminal."""
import json
import sys

import numpy as np

from webapp.core import xor


def add_commands(subparsers):
    one = subparsers.add_parser(
        "xor",
        help="train the XOR net once and print its weights and forward pass",
        description="Train Dense(hidden, relu) -> Dense(1, sigmoid) on XOR with the tutorial's recipe "
        "(SGD 0.1, batch 1, binary cross-entropy, 1000 epochs) and print what the tutorial prints: "
        "the model summary, the four predictions, W1, b1, W2, b2 and the forward pass for [0, 1].",
    )
    one.add_argument("--hidden", type=int, default=2, help="hidden units, 1 to 16 (default 2)")
    one.add_argument("--seed", type=int, default=0, help="random seed for the weights and the shuffling")
    one.add_argument("--epochs", type=int, default=1000)
    one.add_argument("--input", default="0,1", help="the input to write out (default 0,1)")

    study = subparsers.add_parser(
        "xor-study",
        help="how often does the XOR net train? success rates over many seeds",
        description="Train the tutorial's XOR recipe for each hidden size over many seeds and report the "
        "share of runs that solve XOR (all four outputs on the right side of 0.5), with 95%% Wilson "
        "intervals, beside the tutorial's 20/60/90%%.",
    )
    study.add_argument("--seeds", type=int, default=100, help="runs per hidden size (default 100)")
    study.add_argument("--sizes", type=int, nargs="+", default=[2, 4, 6], help="hidden sizes (default 2 4 6)")
    study.add_argument("--epochs", type=int, default=1000)
    study.add_argument("--first-seed", type=int, default=0, help="seeds run from this one up (default 0)")
    study.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args):
    if args.command == "xor":
        return train_and_show(args)
    return run_study(args)


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 1


def parse_input(text):
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 2 or not all(np.isfinite(values)):
        raise ValueError(f"--input must be two numbers like 0,1, not {text!r}")
    return values


def matrix_text(name, value):
    rows = np.atleast_2d(np.asarray(value, np.float64))
    body = "\n".join("  [" + "  ".join(f"{v:8.4f}" for v in row) + "]" for row in rows)
    return f"{name} =\n{body}".replace("-", xor.MINUS)


def train_and_show(args):
    if not 1 <= args.hidden <= 16:
        return fail("--hidden must be from 1 to 16")
    if not 1 <= args.epochs <= 10000:
        return fail("--epochs must be from 1 to 10000")
    try:
        point = parse_input(args.input)
    except ValueError as exc:
        return fail(str(exc))
    weights, losses, outputs = xor.train_one(args.hidden, args.seed, args.epochs)

    model = xor.keras_model(weights)
    model.summary()
    print(f"\nTrained {args.epochs} epochs (seed {args.seed}): final loss {losses[-1]:.4f}")
    for p in xor.predictions(weights):
        mark = "right" if p["correct"] else "WRONG"
        print(f"  {p['input']} -> {p['output']:.4f}  (want {p['target']}: {mark})")
    if xor.solved(outputs):
        print("It learned XOR.")
    else:
        print(f"It did not learn XOR: an output is on the wrong side of 0.5. "
              f"Try another seed, e.g. --seed {args.seed + 1}, or more hidden units.")

    print()
    for name in ("W1", "b1", "W2", "b2"):
        print(matrix_text(name, weights[name]))
    print(f"\nThe forward pass for X = [{xor.fmt(point[0])}, {xor.fmt(point[1])}]:")
    for step in xor.breakdown(weights, [point])["steps"]:
        print(f"\n{step['formula']}")
        for element in step["elements"]:
            print(f"  {step['name']}[{element['index'][1]}] = {element['text']}")
    import keras  # convert_to_numpy: a torch tensor that needs grad refuses np.asarray

    keras_out = float(keras.ops.convert_to_numpy(model(np.array([point], np.float32), training=False))[0, 0])
    print(f"\nKeras's own output for the same input: {keras_out:.4f}")
    return 0


def run_study(args):
    if not 1 <= args.seeds <= 10000:
        return fail("--seeds must be from 1 to 10000")
    if any(not 1 <= size <= 64 for size in args.sizes):
        return fail("--sizes must be from 1 to 64")
    if not 1 <= args.epochs <= 10000:
        return fail("--epochs must be from 1 to 10000")
    sizes = list(dict.fromkeys(args.sizes))
    progress = None if args.json else (lambda event: "result" in event and print(row_text(event["result"]),
                                                                                  flush=True))
    if not args.json:
        print(f"Training the XOR recipe {args.seeds} times per hidden size ({args.epochs} epochs, SGD 0.1, batch 1)")
        print(f"{'hidden':>6}  {'solved':>9}  {'rate':>5}  {'95% CI':>13}  {'tutorial':>8}")
    report = xor.study(sizes, args.seeds, args.epochs, first_seed=args.first_seed, progress=progress)
    if args.json:
        print(json.dumps({
            "results": {str(size): {"success_rate": r["success_rate"], "ci95": r["ci95"], "successes": r["successes"],
                                    "runs": r["runs"], "tutorial": r["tutorial"]}
                        for size, r in report["results"].items()},
            "seconds": report["seconds"],
            "seeds": report["seeds"],
            "first_seed": report["first_seed"],
            "epochs": report["epochs"],
        }))
    else:
        print(f"{len(sizes) * args.seeds} runs in {report['seconds']:.2f} s")
    return 0


def row_text(result):
    low, high = result["ci95"]
    tutorial = f"{result['tutorial']:.0%}" if result["tutorial"] is not None else "-"
    return (f"{result['hidden']:>6}  {result['successes']:>4}/{result['runs']:<4}  {result['success_rate']:>5.0%}  "
            f"{low:>5.0%} - {high:<5.0%}  {tutorial:>8}")
