"""The Socket.IO `predict` event answers like POST /api/predict."""
import requests

from drawing import data_url, drawn_png


def test_predict_event_acknowledges_with_the_rest_answer(server, sio):
    image = data_url(drawn_png(4, seed=5))
    answer = sio.call("predict", {"image": image, "model": "cnn"}, timeout=30)
    rest = requests.post(server.url + "/api/predict", json={"image": image, "model": "cnn"}).json()
    assert answer["digit"] == 4
    assert answer == rest


def test_predict_event_errors(sio):
    assert "no image" in sio.call("predict", {}, timeout=30)["error"]
    assert "no image" in sio.call("predict", "just a string", timeout=30)["error"]
    assert sio.call("predict", {"image": "%%%"}, timeout=30)["status"] == 400
    assert sio.call("predict", {"image": data_url(drawn_png(1)), "model": "nope"}, timeout=30)["status"] == 404


def test_many_clients_at_once(server, sio):
    clients = [sio.connect_new() for _ in range(4)]
    image = data_url(drawn_png(2, seed=6))
    answers = [c.call("predict", {"image": image}, timeout=30) for c in clients]
    assert {a["digit"] for a in answers} == {2}
