"""The data a training job uses: what the server has (never downloaded, never loaded to find out), what
/api/networks reports, and POST /api/jobs refusing full MNIST where the server has none."""
import zipfile

import numpy as np
import pytest
import requests

from webapp.core.datasets import SAMPLE_PATH, data_choices, local_mnist_path


def test_a_sample_only_server_offers_the_sample():
    choices = data_choices("sample")
    assert choices["mnist"]["available"] is False and choices["default"] == "sample"
    assert "NEURONLAB_MNIST=sample" in choices["mnist"]["why"]
    assert "NEURONLAB_MNIST=/path/to/mnist.npz" in choices["mnist"]["why"]
    assert choices["sample"]["available"] is True
    assert local_mnist_path("sample") == "sample"


def test_a_named_mnist_file_is_full_mnist_when_it_has_the_four_arrays(tmp_path):
    choices = data_choices(str(SAMPLE_PATH))  # the sample's file has MNIST's layout
    assert choices["mnist"]["available"] is True and choices["default"] == "mnist"
    assert local_mnist_path(str(SAMPLE_PATH)) == str(SAMPLE_PATH)

    missing = data_choices(str(tmp_path / "nope.npz"))
    assert missing["mnist"]["available"] is False and missing["default"] == "sample"
    assert "There is no MNIST file called" in missing["mnist"]["why"]

    not_npz = tmp_path / "mnist.npz"
    not_npz.write_text("hello")
    assert "not a readable npz" in data_choices(str(not_npz))["mnist"]["why"]

    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=np.zeros((1, 28, 28), np.uint8), y_train=np.zeros(1, np.uint8))
    why = data_choices(str(partial))["mnist"]["why"]
    assert "lacks the arrays x_test, y_test" in why


def test_it_looks_at_the_zip_directory_only(tmp_path, monkeypatch):
    """Finding out must not load 50 MB of digits: no array is read."""
    path = tmp_path / "mnist.npz"
    np.savez(path, **{key: np.zeros((2, 28, 28) if key.startswith("x") else 2, np.uint8)
                      for key in ("x_train", "y_train", "x_test", "y_test")})
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("np.load was called"))
    monkeypatch.setattr(zipfile.ZipFile, "read", lambda *a, **k: pytest.fail("an array was read"))
    assert data_choices(str(path))["mnist"]["available"] is True


def test_unset_means_keras_cache_and_never_a_download(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cached = tmp_path / "datasets" / "mnist.npz"
    assert local_mnist_path(None) == str(cached)
    choices = data_choices(None)
    assert choices["mnist"]["available"] is False and choices["default"] == "sample"
    assert "mnist.npz" in choices["mnist"]["why"] and "never downloads" in choices["mnist"]["why"]
    assert str(tmp_path) not in choices["mnist"]["why"]  # pages show it: no server path
    cached.parent.mkdir()
    cached.write_bytes(SAMPLE_PATH.read_bytes())
    assert data_choices(None)["mnist"]["available"] is True and data_choices(None)["default"] == "mnist"


def test_the_api_reports_the_data_and_refuses_full_mnist_it_does_not_have(server):
    """The test server runs with NEURONLAB_MNIST=sample."""
    data = requests.get(server.url + "/api/networks", timeout=30).json()["data"]
    assert data["mnist"]["available"] is False and data["default"] == "sample"
    assert data["mnist"]["why"]

    response = requests.post(server.url + "/api/jobs", json={"net": "mlp", "epochs": 1, "data": "mnist"}, timeout=30)
    assert response.status_code == 400
    answer = response.json()
    assert answer["field"] == "data" and data["mnist"]["why"] in answer["error"]

    # Other bad fields are still named first; XOR ignores the data.
    response = requests.post(server.url + "/api/jobs", json={"net": "mlp", "epochs": 0, "data": "mnist"}, timeout=30)
    assert response.status_code == 400 and response.json()["field"] == "epochs"
    response = requests.post(server.url + "/api/jobs", json={"net": "xor", "epochs": 0}, timeout=30)
    assert response.status_code == 400 and response.json()["field"] == "epochs"


def test_a_server_with_no_mnist_setting_looks_in_keras_cache(start_server, tmp_path):
    keras_home = tmp_path / "keras"
    unset = start_server(env={"NEURONLAB_MNIST": "", "KERAS_HOME": str(keras_home)})
    data = requests.get(unset.url + "/api/networks", timeout=30).json()["data"]
    assert data["mnist"]["available"] is False and data["default"] == "sample"
    assert "Keras's cache has no MNIST (mnist.npz)" in data["mnist"]["why"] and str(keras_home) not in data["mnist"]["why"]
    response = requests.post(unset.url + "/api/jobs", json={"net": "cnn", "data": "mnist"}, timeout=30)
    assert response.status_code == 400 and response.json()["field"] == "data"
    assert not (keras_home / "datasets" / "mnist.npz").exists()  # nothing was downloaded
