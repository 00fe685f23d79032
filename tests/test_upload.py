"""Uploading and deleting models (teacher only), against a real server."""
import os
import shutil

import pytest
import requests

from conftest import TOKEN, ServerProcess
from digit_models import make_model_files

TEACHER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    return make_model_files(tmp_path_factory.mktemp("model-files"))


UPLOAD_LIMIT = 1_000_000


@pytest.fixture(scope="module")
def shipped(tmp_path_factory, model_files):
    """A models/ folder as the repo ships it, with one CNN."""
    folder = tmp_path_factory.mktemp("shipped")
    shutil.copy(model_files["cnn_keras"], folder / "cnn.keras")
    (folder / "cnn.json").write_text('{"network": "cnn"}')
    return folder


@pytest.fixture(scope="module")
def lan_server(tmp_path_factory, shipped):
    env = {"NEURONLAB_TRUST_LOCALHOST": "0", "NEURONLAB_MODELS": str(shipped),
           "NEURONLAB_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)}
    process = ServerProcess(tmp_path_factory.mktemp("upload"), env=env).start()
    yield process
    process.stop()


def upload(server, path, filename=None, headers=TEACHER, **data):
    with open(path, "rb") as f:
        return requests.post(server.url + "/api/models", headers=headers, data=data,
                             files={"file": (filename or path.name, f)})


def all_files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def store_files(server):
    return all_files(server.home / "models")


def test_the_tutorials_h5_and_a_keras_file_upload_and_join_the_picker(lan_server, model_files):
    mlp = upload(lan_server, model_files["mlp_h5"])
    assert mlp.status_code == 201, mlp.text
    meta = mlp.json()["model"]
    assert meta["id"] == "mlp_digits_28x28" and meta["source"] == "uploaded" and meta["input"] == "flat"
    cnn = upload(lan_server, model_files["cnn_keras"], name="Our CNN")
    assert cnn.status_code == 201, cnn.text
    assert cnn.json()["model"]["input"] == "image" and cnn.json()["model"]["name"] == "Our CNN"

    listed = {m["id"]: m for m in requests.get(lan_server.url + "/api/models").json()["models"]}
    assert {"mlp_digits_28x28", cnn.json()["model"]["id"]} <= set(listed)
    assert {"mlp_digits_28x28.keras", "mlp_digits_28x28.json"} <= set(store_files(lan_server))

    for model_id in ("mlp_digits_28x28", cnn.json()["model"]["id"]):
        answer = requests.post(lan_server.url + "/api/predict", json={"image": STROKE_PNG, "model": model_id})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["probabilities"]) == 10 and answer.json()["model"] == model_id

    activated = requests.post(lan_server.url + "/api/models/mlp_digits_28x28/activate", headers=TEACHER)
    assert activated.status_code == 200 and activated.json()["active"]["default"] == "mlp_digits_28x28"


def test_the_same_name_twice_gets_a_new_id_not_an_overwrite(lan_server, model_files):
    first = upload(lan_server, model_files["mlp_h5"], filename="twice.h5").json()["model"]["id"]
    second = upload(lan_server, model_files["mlp_h5"], filename="twice.h5").json()["model"]["id"]
    assert first == "twice" and second == "twice-2"
    network_name = upload(lan_server, model_files["mlp_h5"], filename="cnn.h5").json()["model"]["id"]
    assert network_name != "cnn"  # never shadows a network's name


@pytest.mark.parametrize("key, reason", [
    ("xor_keras", "784 or 28x28x1"),
    ("five_out_keras", "gives 10"),
    ("lambda_keras", "cannot load"),  # safe_mode refuses the Lambda layer's Python code
    ("garbage_h5", "garbage.h5 is neither a .keras file"),
])
def test_anything_else_is_refused_with_a_reason_and_leaves_nothing(lan_server, model_files, key, reason):
    before = all_files(lan_server.home)
    response = upload(lan_server, model_files[key])
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert reason in error
    assert ".tmp-" not in error and str(lan_server.home) not in error  # the user's file name, never ours
    if key == "lambda_keras":
        assert error.startswith("cannot load sneaky.keras as a Keras model"), error
    assert all_files(lan_server.home) == before


def test_wrong_suffix_content_type_or_missing_file_is_a_4xx(lan_server, model_files):
    before = all_files(lan_server.home)
    assert upload(lan_server, model_files["mlp_h5"], filename="model.pkl").status_code == 400
    assert requests.post(lan_server.url + "/api/models", headers=TEACHER, json={"file": "x"}).status_code == 415
    assert requests.post(lan_server.url + "/api/models", headers=TEACHER, files={"other": ("a.h5", b"x")}).status_code == 400
    assert all_files(lan_server.home) == before


@pytest.mark.parametrize("filename", [
    "../../escape.h5", "..\\..\\escape.h5", "/etc/passwd.h5", "\u2025\u2215escape.h5", "％２ｅ％２ｅ／x.h5",
    "..\u2215..\u2215escape.keras", "\u202eevil.h5", "con.h5", ".h5", "ünïcödé naмe.h5",
])
def test_file_names_become_safe_ids_inside_the_store(lan_server, model_files, filename):
    response = upload(lan_server, model_files["mlp_h5"], filename=filename)
    assert response.status_code in (201, 400), response.text
    if response.status_code == 201:
        model_id = response.json()["model"]["id"]
        assert model_id.replace("-", "").replace("_", "").isalnum() and model_id.isascii()
        assert (lan_server.home / "models" / f"{model_id}.keras").is_file()
    assert not any("escape" in p.name for p in lan_server.home.parent.rglob("*") if "models" not in p.parts)


def test_delete_removes_an_uploaded_model_and_tells_every_page(lan_server, model_files):
    import socketio

    watcher = socketio.Client(reconnection=False)
    heard = []
    watcher.on("models", heard.append)
    watcher.connect(lan_server.url, transports=["websocket"], wait_timeout=20)
    try:
        model_id = upload(lan_server, model_files["cnn_keras"], filename="to-delete.keras").json()["model"]["id"]
        assert requests.delete(f"{lan_server.url}/api/models/{model_id}").status_code == 401
        deleted = requests.delete(f"{lan_server.url}/api/models/{model_id}", headers=TEACHER)
        assert deleted.status_code == 200, deleted.text
        assert not any(f.startswith(model_id + ".") for f in store_files(lan_server))
        gone = requests.post(lan_server.url + "/api/predict", json={"image": STROKE_PNG, "model": model_id})
        assert gone.status_code == 404
        assert requests.delete(f"{lan_server.url}/api/models/{model_id}", headers=TEACHER).status_code == 404
        watcher.sleep(1)
        assert {"added": model_id} in heard and {"deleted": model_id} in heard
    finally:
        watcher.disconnect()


def test_shipped_models_cannot_be_deleted(lan_server, shipped):
    response = requests.delete(lan_server.url + "/api/models/cnn", headers=TEACHER)
    assert response.status_code == 409 and "ships with the app" in response.json()["error"]
    assert sorted(os.listdir(shipped)) == ["cnn.json", "cnn.keras"]


def test_an_upload_over_the_size_limit_is_413(lan_server):
    before = all_files(lan_server.home)
    response = requests.post(lan_server.url + "/api/models", headers=TEACHER,
                             files={"file": ("big.keras", b"PK\x03\x04" + b"x" * UPLOAD_LIMIT)})
    assert response.status_code == 413 and f"{UPLOAD_LIMIT:,} bytes" in response.json()["error"]
    assert all_files(lan_server.home) == before


def test_upload_ids_are_sanitised():
    from webapp.web.api import sanitised_id

    assert sanitised_id("mlp_digits_28x28.h5", set()) == "mlp_digits_28x28"
    assert sanitised_id("../../etc/passwd.keras", set()) == "passwd"
    assert sanitised_id("C:\\models\\My Model.KERAS", set()) == "my-model"
    assert sanitised_id("\uff0e\uff0e\uff0fx.h5", set()) == "x"  # fullwidth ../ folds to ASCII, then goes
    assert sanitised_id("日本語.h5", set()) == "uploaded"
    assert sanitised_id("mlp.h5", {"mlp-2"}) == "mlp-3"


# A vertical stroke: a "1" on a white 28x28 background.
STROKE_PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAAAJklEQVR4nGP8z4AbMOGRo5UkCwqPkYEB2YED"
                 "4aBRyQGSZBxsSRMAokMDN7S0rUcAAAAASUVORK5CYII=")
