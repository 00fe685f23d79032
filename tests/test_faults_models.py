"""Broken models against a real server: a truncated shipped model and an active trained model corrupted after
activation. Predictions fall back to the next working model and say so, naming models, never server paths."""
import base64
import json
import re
import shutil

import pytest
import requests

from conftest import ROOT, TOKEN
from test_faults import predict_default

TEACHER = {"Authorization": f"Bearer {TOKEN}"}
TRAINED = "mlp2-20261101-120000-beef"  # a trained MLP2, as a job would have saved it


def predict_image():
    """A small drawn digit, as the page sends it."""
    return ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAAAJklEQVR4nGP8z4AbMOGRo5Uk"
            "CwqPkYEB2YED4aBRyQGSZBxsSRMAokMDN7S0rUcAAAAASUVORK5CYII=")


def predict(server, model=None):
    return requests.post(server.url + "/api/predict", json={"image": predict_image(), "model": model}, timeout=120)


def no_server_paths(text, *folders):
    for folder in folders:
        assert str(folder) not in text, text
    assert not re.search(r"filepath=/|/(tmp|work|root|home|srv)/", text), text


def broken_log_lines(server, model_id):
    return server.log.read_text().count(f"model {model_id} cannot be loaded")


@pytest.fixture
def broken_shipped(tmp_path):
    """A copy of models/ with cnn.keras cut to half its size, and a trained MLP2 in the instance folder."""
    shipped = tmp_path / "shipped"
    shutil.copytree(ROOT / "models", shipped)
    data = (shipped / "cnn.keras").read_bytes()
    (shipped / "cnn.keras").write_bytes(data[: len(data) // 2])
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    shutil.copy(shipped / "mlp2.keras", home / "models" / f"{TRAINED}.keras")
    meta = {**json.loads((shipped / "mlp2.json").read_text()), "id": TRAINED, "source": "trained",
            "date": "2026-11-01T12:00:00+0000", "name": "MLP2 for Monday"}
    (home / "models" / f"{TRAINED}.json").write_text(json.dumps(meta))
    return shipped, home


def test_a_truncated_shipped_model_falls_back_and_names_the_model(start_server, broken_shipped, page):
    shipped, home = broken_shipped
    server = start_server(env={"NEURONLAB_MODELS": str(shipped), "NEURONLAB_TRUST_LOCALHOST": "0"}, home=home)

    # The default (the shipped CNN) is broken: an MLP answers, and the answer says so.
    for model in (None, "cnn"):  # the page asks for the default by its id
        answer = predict(server, model)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == "mlp" and body["network"] == "mlp" and len(body["probabilities"]) == 10
        fallback = body["fallback"]
        assert fallback["broken"] == "cnn" and "CNN · shipped" in fallback["message"], fallback
        assert "cnn.keras" in fallback["error"] and "MLP · shipped" in fallback["message"], fallback
        no_server_paths(answer.text, shipped, home, ROOT)

    # The teacher's list marks it; a broken file is tried once, not on every prediction.
    listed = {m["id"]: m for m in requests.get(server.url + "/api/models", timeout=30).json()["models"]}
    assert "cnn.keras" in listed["cnn"]["broken"] and "broken" not in listed["mlp"]
    no_server_paths(json.dumps(listed), shipped, home, ROOT)
    for _ in range(3):
        assert predict(server).json()["model"] == "mlp"
    assert broken_log_lines(server, "cnn") == 1

    # Another network's own models are unaffected.
    assert "fallback" not in predict(server, "mlp2").json()

    # Socket.IO answers the same way.
    import socketio

    client = socketio.Client(reconnection=False)
    client.connect(server.url, transports=["websocket"], wait_timeout=20)
    try:
        ack = client.call("predict", {"image": predict_image(), "model": "cnn"}, timeout=60)
    finally:
        client.disconnect()
    assert ack["model"] == "mlp" and ack["fallback"]["broken"] == "cnn", ack
    no_server_paths(json.dumps(ack), shipped, home, ROOT)

    # The Draw page says which model answered instead.
    picture = home.parent / "digit.png"
    picture.write_bytes(base64.b64decode(predict_image().split(",", 1)[1]))
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    page.set_input_files("#upload", str(picture))
    page.wait_for_selector("#fallback:not([hidden])", timeout=60_000)
    assert "MLP · shipped" in page.text_content("#fallback") and "cnn" in page.text_content("#fallback")

    # Repaired (a new modification time): the CNN answers again.
    shutil.copy(ROOT / "models" / "cnn.keras", shipped / "cnn.keras")
    answer = predict(server).json()
    assert answer["model"] == "cnn" and "fallback" not in answer, answer


def test_an_active_trained_model_corrupted_after_activation_falls_back_within_its_network(start_server,
                                                                                        broken_shipped):
    shipped, home = broken_shipped
    shutil.copy(ROOT / "models" / "cnn.keras", shipped / "cnn.keras")  # only the trained model breaks here
    server = start_server(env={"NEURONLAB_MODELS": str(shipped), "NEURONLAB_TRUST_LOCALHOST": "0"}, home=home)
    activated = requests.post(f"{server.url}/api/models/{TRAINED}/activate", headers=TEACHER, timeout=30)
    assert activated.status_code == 200, activated.text
    model_file = home / "models" / f"{TRAINED}.keras"
    good = model_file.read_bytes()
    model_file.write_bytes(b"PK\x03\x04" + b"\0" * 4096)  # a zip header, then nothing a zip needs

    for model in (None, "mlp2", TRAINED):
        answer = predict(server, model)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == "mlp2" and body["network"] == "mlp2", body  # the shipped MLP2: same network
        assert body["fallback"]["broken"] == TRAINED and "MLP2 for Monday" in body["fallback"]["message"], body
        no_server_paths(answer.text, shipped, home, ROOT)
    assert broken_log_lines(server, TRAINED) == 1

    model_file.write_bytes(good)  # the teacher puts the file back: it answers again
    answer = predict(server).json()
    assert answer["model"] == TRAINED and "fallback" not in answer, answer


def test_with_every_model_broken_the_answer_is_a_clear_503(start_server, tmp_path):
    shipped = tmp_path / "shipped"
    shutil.copytree(ROOT / "models", shipped)
    for network in ("cnn", "mlp", "mlp2"):
        (shipped / f"{network}.keras").write_bytes(b"not a model\n")
    server = start_server(env={"NEURONLAB_MODELS": str(shipped)}, home=tmp_path / "home")
    answer = predict_default(server)
    assert answer.status_code == 503, answer.text
    assert "CNN · shipped" in answer.json()["error"] and answer.json()["model"] == "cnn"
    no_server_paths(answer.text, shipped, tmp_path, ROOT)
    assert requests.get(server.url + "/healthz", timeout=30).ok
