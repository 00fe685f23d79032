"""The XOR maths: the breakdown against NumPy and Keras, the trainer against Keras's
own SGD steps, the study against fixed seeds, the training job and the CLI."""
import json
import subprocess
import sys

import numpy as np
import pytest

from webapp.core import xor
from webapp.core.modelstore import ModelStore
from webapp.core.models import load_file
from webapp.core.job_progress import Cancelled
from webapp.core.training import JobSpec
from tests.conftest import ROOT


def random_weights(hidden, rng):
    return {
        "W1": rng.normal(0, 2, (2, hidden)).astype(np.float32),
        "b1": rng.normal(0, 1, hidden).astype(np.float32),
        "W2": rng.normal(0, 2, (hidden, 1)).astype(np.float32),
        "b2": rng.normal(0, 1, 1).astype(np.float32),
    }


def numpy_forward(w, X):
    """An independent forward pass, written the long way round."""
    out = []
    for x in np.asarray(X, np.float64):
        hidden = [max(0.0, x[0] * float(w["W1"][0, j]) + x[1] * float(w["W1"][1, j]) + float(w["b1"][j]))
                  for j in range(w["W1"].shape[1])]
        z = sum(h * float(w["W2"][j, 0]) for j, h in enumerate(hidden)) + float(w["b2"][0])
        out.append(1 / (1 + np.exp(-z)))
    return np.array(out)


@pytest.mark.parametrize("hidden", range(1, 17))
def test_breakdown_matches_numpy_and_keras(hidden):
    rng = np.random.default_rng(hidden)
    weights = random_weights(hidden, rng)
    inputs = np.vstack([xor.XOR_INPUTS, rng.uniform(-1, 2, (3, 2))])
    answer = xor.breakdown(weights, inputs)

    assert [s["name"] for s in answer["steps"]] == ["L1", "X2", "L2", "output"]
    np.testing.assert_allclose(answer["output"], numpy_forward(weights, inputs), atol=1e-12)
    model = xor.keras_model(weights)
    keras_output = np.asarray(model(inputs.astype(np.float32), training=False))[:, 0]
    np.testing.assert_allclose(answer["output"], keras_output, atol=1e-6)
    # every element of every step is written out and names its sources
    for step in answer["steps"]:
        rows, cols = len(step["output"]), len(step["output"][0])
        assert sorted(tuple(e["index"]) for e in step["elements"]) == [(r, c) for r in range(rows) for c in range(cols)]
    l1 = answer["steps"][0]
    np.testing.assert_allclose(l1["output"], inputs @ weights["W1"].astype(np.float64) + weights["b1"], atol=1e-12)
    assert len(l1["elements"][0]["from"]) == 2 + 2 + 1


def test_arithmetic_is_written_like_the_tutorial():
    weights = {"W1": np.array([[0.5, 2.8668], [0.25, -2.87146]]), "b1": np.array([0.0, -0.00125]),
               "W2": np.array([[1.0], [-1.0]]), "b2": np.array([0.0])}
    answer = xor.breakdown(weights, [[0, 1]])
    l1, relu, l2, out = answer["steps"]
    assert l1["elements"][1]["text"] == "0\u00d72.8668 + 1\u00d7(\u22122.8715) + (\u22120.0013) = \u22122.8727"
    assert relu["elements"][1]["text"] == "max(0, \u22122.8727) = 0"
    assert l2["elements"][0]["text"] == "0.2500\u00d71 + 0\u00d7(\u22121) + 0 = 0.2500"
    assert out["elements"][0]["text"] == "1 / (1 + e^(\u22120.2500)) = 0.5622"
    assert l1["elements"][1]["from"] == [["X", 0, 0], ["X", 0, 1], ["W1", 0, 1], ["W1", 1, 1], ["b1", 0, 1]]


def test_initial_weights_are_glorot_uniform_with_zero_biases():
    draws = np.concatenate([xor.initial_run(6, seed, 1)[0]["W1"].ravel() for seed in range(300)])
    limit = np.sqrt(6 / (2 + 6))
    assert np.all(np.abs(draws) <= limit) and draws.max() > 0.95 * limit and draws.min() < -0.95 * limit
    assert abs(draws.mean()) < 0.05
    weights, orders = xor.initial_run(6, 0, 50)
    assert not weights["b1"].any() and not weights["b2"].any()
    assert orders.shape == (50, 4) and all(sorted(row) == [0, 1, 2, 3] for row in orders)
    assert len({tuple(row) for row in orders}) > 5  # reshuffled every epoch


def test_trainer_follows_keras_sgd_step_for_step():
    """Keras's own train_on_batch, fed our sample order from the same start, lands on the same weights."""
    hidden, epochs = 3, 60
    weights, orders = xor.initial_run(hidden, 5, epochs)
    model = xor.keras_model(weights)
    keras_losses = []
    for epoch in range(epochs):
        losses = [float(np.ravel(model.train_on_batch(xor.XOR_INPUTS[[k]], xor.XOR_TARGETS[[k]]))[0])
                  for k in orders[epoch]]
        keras_losses.append(np.mean(losses))
    batch, stacked = xor.stack_runs([(weights, orders)], hidden)
    our_losses = xor.train(batch, stacked)[0]
    ours = xor.unstack(batch, 0, hidden)
    for name, keras_value in zip(("W1", "b1", "W2", "b2"), model.get_weights()):
        np.testing.assert_allclose(ours[name], keras_value, atol=1e-5)
    np.testing.assert_allclose(our_losses, keras_losses, atol=1e-5)
    assert not np.allclose(ours["W1"], weights["W1"])  # it did train


def test_study_matches_the_fixed_seed_expectation():
    report = xor.study((2, 4, 6), seeds=100)
    rates = {size: r["successes"] for size, r in report["results"].items()}
    assert rates == {2: 13, 4: 56, 6: 82}
    assert report["results"][2]["ci95"] == [0.0776, 0.2098]
    # a run is the same alone as inside the study's batch
    for size in (2, 4):
        seeds = report["results"][size]["successful_seeds"]
        assert all(xor.solved(xor.train_one(size, seed)[2]) for seed in seeds[:3])
        failed = next(s for s in range(100) if s not in seeds)
        assert not xor.solved(xor.train_one(size, failed)[2])


def test_wilson_interval_matches_scipy():
    from scipy.stats import binomtest

    for successes, trials in ((20, 100), (13, 100), (3, 7)):
        expected = binomtest(successes, trials).proportion_ci(method="wilson")
        np.testing.assert_allclose(xor.wilson_interval(successes, trials), (expected.low, expected.high), atol=1e-6)
    assert xor.wilson_interval(0, 10)[0] == 0 and xor.wilson_interval(10, 10)[1] == pytest.approx(1)


def spec(**changes):
    fields = dict(net="xor", epochs=1000, batch_size=1, optimizer="sgd", learning_rate=0.1, hidden=4, seed=7)
    return JobSpec(**{**fields, **changes})


def test_run_job_streams_snapshots_and_saves_a_real_keras_model(tmp_path):
    events = []
    store = ModelStore(tmp_path)
    result = xor.run_job(spec(), lambda type_, **f: events.append({"type": type_, **f}), lambda: False, store)

    assert events[0]["type"] == "state" and events[0]["device"] == xor.DEVICE
    epochs = [e for e in events if e["type"] == "epoch"]
    assert [e["epoch"] for e in epochs] == sorted({e["epoch"] for e in epochs}) and epochs[-1]["epoch"] == 1000
    assert 100 <= len(epochs) <= 250
    snapshots = [e for e in epochs if "boundary" in e]
    assert 20 <= len(snapshots) <= 60
    grid = np.array(snapshots[-1]["boundary"])
    assert grid.shape == (21, 21) and grid[0, 0] < 0.5 and grid[0, -1] > 0.5 and grid[-1, -1] < 0.5
    assert epochs[-1]["logs"]["loss"] < epochs[0]["logs"]["loss"]

    assert result["success"] and result["test_accuracy"] == 1.0
    model = load_file(store.path(result["model"]))
    weights = xor.weights_of(model)
    np.testing.assert_allclose(weights["W1"], result["weights"]["W1"], atol=1e-7)
    meta = store.metadata(result["model"])
    assert meta["network"] == "xor" and meta["hidden"] == 4 and meta["parameters"] == 17
    assert meta["success"] is True and meta["name"] == "XOR \u00b7 4 hidden \u00b7 seed 7" == result["name"]
    keras_out = np.asarray(model(xor.XOR_INPUTS, training=False))[:, 0]
    np.testing.assert_allclose(keras_out, [p["output"] for p in result["predictions"]], atol=1e-6)


def test_one_hidden_unit_can_never_learn_xor():
    """relu(h) at [0,1] and [1,0] must sit on one side of a threshold and at [0,0], [1,1] on the other, but
    h(0,0) + h(1,1) = h(0,1) + h(1,0): so a 1-unit net fails for every seed, which makes it a reliable failed run."""
    assert not any(xor.solved(xor.train_one(1, seed)[2]) for seed in range(20))


def test_a_failed_run_is_not_saved_but_carries_its_end(tmp_path):
    store = ModelStore(tmp_path)
    result = xor.run_job(spec(hidden=1, seed=3), lambda *a, **k: None, lambda: False, store)
    assert result["success"] is False and result["model"] is None and result["saved"] is False
    assert not list(tmp_path.glob("*.keras")) and store.list() == []
    assert result["name"] == "XOR \u00b7 1 hidden \u00b7 seed 3 \u00b7 failed"
    assert result["parameters"] == 5 and len(result["predictions"]) == 4
    assert not all(p["correct"] for p in result["predictions"])
    np.testing.assert_allclose(xor.forward(xor.weights_from_json(result["weights"]), xor.XOR_INPUTS),
                               [p["output"] for p in result["predictions"]], atol=1e-7)

    # kept later (the /api/xor/keep path): a real model, marked failed, with the same weights
    model_id = xor.save_run(store, spec(hidden=1, seed=3).to_dict(), result, model_id="kept")
    meta = store.metadata(model_id)
    assert meta["success"] is False and meta["name"].endswith("\u00b7 failed") and meta["parameters"] == 5
    weights = xor.weights_of(load_file(store.path(model_id)))
    np.testing.assert_allclose(weights["W1"], result["weights"]["W1"], atol=0)


def test_a_named_run_is_kept_even_when_it_fails(tmp_path):
    """The CLI names its model (`train xor` writes models/xor): what it trains is saved, marked failed."""
    store = ModelStore(tmp_path)
    result = xor.run_job(spec(hidden=1, seed=3), lambda *a, **k: None, lambda: False, store, model_id="xor")
    assert result["model"] == "xor" and result["saved"] is True
    assert store.metadata("xor")["success"] is False
    assert xor.run_job(spec(hidden=1, seed=4), lambda *a, **k: None, lambda: False, store,
                       model_id="other", keep_failed=False)["model"] is None


def test_run_job_stops_when_asked(tmp_path):
    with pytest.raises(Cancelled):
        xor.run_job(spec(), lambda *a, **k: None, lambda: True, ModelStore(tmp_path))
    assert not list(tmp_path.glob("*.keras"))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "webapp", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=180, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})


def test_cli_study_json_shape():
    done = run_cli("xor-study", "--seeds", "10", "--sizes", "2", "5", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["results"]) == {"2", "5"}
    for result in report["results"].values():
        assert 0 <= result["success_rate"] <= 1
        low, high = result["ci95"]
        assert low <= result["success_rate"] <= high
    assert report["results"]["2"]["success_rate"] == xor.study((2,), 10)["results"][2]["success_rate"]
    assert isinstance(report["seconds"], float)
    assert run_cli("xor-study", "--seeds", "0").returncode == 1


def test_cli_train_xor_saves_what_it_trains_marked(tmp_path):
    done = run_cli("train", "xor", "--hidden", "1", "--seed", "3", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    meta = json.loads((tmp_path / "xor.json").read_text())
    assert meta["success"] is False and meta["name"].endswith("failed") and (tmp_path / "xor.keras").is_file()
    assert "Saved" in done.stdout


def test_cli_xor_prints_what_the_tutorial_prints():
    done = run_cli("xor", "--seed", "9")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "Total params: 9" in text
    for name in ("W1 =", "b1 =", "W2 =", "b2 =", "L1 = X\u00b7W1 + b1", "It learned XOR"):
        assert name in text
    assert text.count(" -> ") == 4
    assert "L1[0] = 0\u00d7" in text and "output[0] = 1 / (1 + e^(" in text
