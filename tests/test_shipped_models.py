"""The models in models/ meet the issue's targets, on MNIST and on drawn digits."""
import json

import keras
import numpy as np
import pytest

from bench.drawn_digits import predict, prepare
from bench.strokes import drawn_set
from conftest import ROOT
from webapp.core.datasets import load_mnist

MODELS = ROOT / "models"
FULL_MNIST_SHA256 = "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64"  # keras.datasets' mnist.npz


@pytest.fixture(scope="module")
def drawings():
    images, labels = drawn_set(50, seed=7)  # 500 drawings in the check's styles, which training never sees
    return prepare(images), labels


@pytest.mark.parametrize("name, target", [("cnn", 0.993), ("mlp", 0.982)])
def test_trained_on_full_mnist_to_the_target(name, target):
    meta = json.loads((MODELS / f"{name}.json").read_text())
    assert meta["test_accuracy"] >= target
    assert meta["data"]["sha256"] == FULL_MNIST_SHA256 and meta["data"]["sample"] is False
    assert meta["recipe"]["net"] == meta["network"] == name


@pytest.mark.parametrize("name", ["cnn", "mlp", "mlp2"])
def test_reads_the_bundled_mnist_test_digits(name):
    mnist = load_mnist("sample")
    model = keras.models.load_model(MODELS / f"{name}.keras", compile=False)
    assert (predict(model, mnist.x_test) == mnist.y_test).mean() >= 0.97


def test_the_cnn_reads_digits_drawn_in_a_browser(drawings):
    images, labels = drawings
    model = keras.models.load_model(MODELS / "cnn.keras", compile=False)
    assert (predict(model, images) == labels).mean() >= 0.98
