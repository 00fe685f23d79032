"""MNIST loading: a given npz, the bundled sample, and clear errors."""
import subprocess
import sys

import numpy as np
import pytest

from webapp.core.datasets import SAMPLE_PATH, MnistUnavailable, load_mnist

from conftest import ROOT


def test_sample_loads_as_unit_floats():
    mnist = load_mnist("sample")
    assert mnist.x_train.shape == (2000, 28, 28) and mnist.x_test.shape == (500, 28, 28)
    assert mnist.x_train.dtype == np.float32
    assert 0.0 <= mnist.x_train.min() and mnist.x_train.max() == pytest.approx(1.0)
    assert set(np.unique(mnist.y_train)) == set(range(10))
    assert mnist.is_sample and len(mnist.sha256) == 64


def test_a_given_path_is_used(tmp_path):
    path = tmp_path / "tiny.npz"
    x = np.zeros((3, 28, 28), np.uint8)
    x[:, 10:20, 14] = 255
    np.savez(path, x_train=x, y_train=np.array([1, 1, 1]), x_test=x[:1], y_test=np.array([1]))
    mnist = load_mnist(str(path))
    assert mnist.source == str(path) and mnist.x_train.max() == 1.0


def test_environment_variable_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURONLAB_MNIST", str(SAMPLE_PATH))
    assert len(load_mnist().x_test) == 500


def test_missing_file_says_how_to_provide_one(tmp_path):
    with pytest.raises(MnistUnavailable) as error:
        load_mnist(str(tmp_path / "nope.npz"))
    assert "--mnist PATH" in str(error.value) and "NEURONLAB_MNIST" in str(error.value)


@pytest.mark.parametrize("content", [b"not a zip", b""])
def test_unreadable_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(MnistUnavailable, match="--mnist PATH"):
        load_mnist(str(path))


def test_wrong_keys_are_a_clear_error(tmp_path):
    path = tmp_path / "keys.npz"
    np.savez(path, images=np.zeros((2, 28, 28)))
    with pytest.raises(MnistUnavailable, match="x_train"):
        load_mnist(str(path))


def test_offline_download_fails_with_instructions_not_a_traceback(tmp_path):
    """No file and no internet: the CLI prints how to provide MNIST, no traceback."""
    env = {"HOME": str(tmp_path), "KERAS_HOME": str(tmp_path / "keras"), "PATH": "/usr/bin:/bin",
           "NEURONLAB_MNIST": "", "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "-m", "webapp", "train", "mlp", "--epochs", "1", "--out", str(tmp_path / "m")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1
    assert "NEURONLAB_MNIST" in result.stderr and "--mnist PATH" in result.stderr
    assert "Traceback" not in result.stderr
