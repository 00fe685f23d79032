"""The JSON API, through a real server."""
import base64
import io

import pytest
import requests
from PIL import Image

from drawing import data_url, drawn_png


def predict(server, **body):
    return requests.post(server.url + "/api/predict", json=body, timeout=30)


def test_predict_a_drawn_digit_from_a_data_url(server):
    response = predict(server, image=data_url(drawn_png(3, seed=1)))
    assert response.status_code == 200
    answer = response.json()
    assert answer["digit"] == 3
    assert len(answer["probabilities"]) == 10 and sum(answer["probabilities"]) == pytest.approx(1, abs=1e-3)
    assert answer["model"] and answer["network"] == "cnn"
    assert len(answer["input"]) == 28 and all(len(row) == 28 for row in answer["input"])
    assert max(max(row) for row in answer["input"]) <= 1 and min(min(row) for row in answer["input"]) >= 0


def test_predict_bare_base64_and_model_choice(server):
    answer = predict(server, image=base64.b64encode(drawn_png(7, seed=2)).decode(), model="cnn").json()
    assert answer["digit"] == 7 and answer["network"] == "cnn"


def test_predict_multipart_upload(server):
    response = requests.post(server.url + "/api/predict", files={"image": ("digit_8.png", drawn_png(8, seed=3))},
                             data={"model": "cnn"}, timeout=30)
    assert response.status_code == 200 and response.json()["digit"] == 8


def test_each_digit_model_answers(server):
    for model in [m for m in requests.get(server.url + "/api/models").json()["models"] if m["network"] != "xor"]:
        answer = predict(server, image=data_url(drawn_png(0, seed=4)), model=model["id"]).json()
        assert answer["model"] == model["id"] and len(answer["probabilities"]) == 10


def test_blank_canvas_is_nothing_drawn_not_a_guess(server):
    buffer = io.BytesIO()
    Image.new("RGB", (280, 280), "white").save(buffer, "PNG")
    answer = predict(server, image=data_url(buffer.getvalue())).json()
    assert answer["digit"] is None and answer["blank"] is True and "nothing drawn" in answer["message"]


def test_models_list(server):
    body = requests.get(server.url + "/api/models").json()
    by_id = {m["id"]: m for m in body["models"]}
    assert by_id["cnn"]["network"] == "cnn" and by_id["cnn"]["parameters"] == 130_890
    assert 0.99 < by_id["cnn"]["test_accuracy"] <= 1
    assert body["active"]["default"] in by_id


@pytest.mark.parametrize(
    "kwargs, status, words",
    [
        ({"json": {}}, 400, "no image"),
        ({"json": {"image": ""}}, 400, "no image"),
        ({"json": {"image": 42}}, 400, "base64"),
        ({"json": {"image": "%%%not base64%%%"}}, 400, "base64"),
        ({"json": {"image": base64.b64encode(b"just text").decode()}}, 400, "not a PNG"),
        ({"json": ["image"]}, 400, "JSON object"),
        ({"data": "{broken json", "headers": {"Content-Type": "application/json"}}, 400, "JSON object"),
        ({"files": {"file": ("x.png", b"123")}}, 400, "no image"),
        ({"data": "hello", "headers": {"Content-Type": "text/plain"}}, 415, "send JSON"),
    ],
)
def test_bad_requests_get_clear_json_errors(server, kwargs, status, words):
    response = requests.post(server.url + "/api/predict", timeout=30, **kwargs)
    assert response.status_code == status
    assert words in response.json()["error"]


@pytest.mark.parametrize("model", ["nope", "../models/cnn", "xor", "", 5])
def test_unknown_or_wrong_models(server, model):
    response = predict(server, image=data_url(drawn_png(1)), model=model)
    if model == "":  # empty means "the default"
        assert response.status_code == 200
        return
    assert 400 <= response.status_code < 500 and "error" in response.json()


def test_too_large_payload(server):
    response = predict(server, image="A" * (6 * 1024 * 1024))
    assert response.status_code == 413 and "too large" in response.json()["error"]


def test_unknown_api_route_is_json(server):
    response = requests.get(server.url + "/api/nothing-here")
    assert response.status_code == 404 and "error" in response.json()
