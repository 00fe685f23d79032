"""Limits: the prediction rate per address, request sizes, image pixels, job
parameters and the job queue, each a setting, checked against a real server.
Clients that must not share a prediction bucket come from source addresses of
their own on loopback."""
import base64
import io
import time
from types import SimpleNamespace

import pytest
import requests
import socketio
from flask import Flask
from PIL import Image

from conftest import ServerProcess
from digit_models import make_model_files
from loopback import connect_from
from webapp.web import limits
from webapp.web.limits import RateLimiter

RATE = 2  # predictions a second, in bursts of 2


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory):
    env = {"NEURONLAB_PREDICT_RATE": str(RATE), "NEURONLAB_MAX_REQUEST_BYTES": "200000",
           "NEURONLAB_MAX_IMAGE_PIXELS": "1000000", "NEURONLAB_MAX_QUEUED_JOBS": "1"}
    process = ServerProcess(tmp_path_factory.mktemp("limits"), env=env).start()
    files = make_model_files(tmp_path_factory.mktemp("limit-models"))
    with open(files["mlp_h5"], "rb") as f:
        assert requests.post(process.url + "/api/models", files={"file": f}).status_code == 201
    yield process
    process.stop()


def png(width, height):
    buffer = io.BytesIO()
    Image.new("L", (width, height), 255).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_the_token_bucket_allows_a_burst_then_the_rate():
    now = [0.0]
    bucket = RateLimiter(rate=2, clock=lambda: now[0])
    assert [bucket.allow("a")[0] for _ in range(3)] == [True, True, False]
    assert bucket.allow("b")[0]  # another client has its own bucket
    allowed, wait = bucket.allow("a")
    assert not allowed and wait == pytest.approx(0.5)
    now[0] += 0.5
    assert bucket.allow("a")[0] and not bucket.allow("a")[0]
    assert RateLimiter(rate=0).allow("a") == (True, 0.0)  # 0 turns it off


def test_predictions_from_one_address_share_one_bucket_whatever_the_connection():
    app = Flask(__name__)
    app.extensions["neuronlab"] = SimpleNamespace(limiter=limits.RateLimiter(2))

    def allowed_from(address, sid):  # a REST request, or an event on any one of an address's connections
        with app.test_request_context(environ_base={"REMOTE_ADDR": address}):
            from flask import request

            request.sid = sid
            return limits.allow_prediction()[0]

    assert [allowed_from("10.0.0.1", sid) for sid in ("a", "b", "c", None)] == [True, True, False, False]
    assert allowed_from("10.0.0.2", "d")  # another address has its own bucket


def test_rest_predictions_beyond_the_rate_get_429(limited_server):
    statuses = [requests.post(limited_server.url + "/api/predict", json={"image": png(28, 28)}).status_code
                for _ in range(RATE + 3)]
    assert statuses[:RATE] == [200] * RATE and 429 in statuses[RATE:]
    refused = requests.post(limited_server.url + "/api/predict", json={"image": png(28, 28)})
    assert refused.status_code == 429
    assert "too many predictions" in refused.json()["error"] and refused.json()["retry_after"] > 0
    assert int(refused.headers["Retry-After"]) >= 1


def test_socket_predictions_beyond_the_rate_get_an_error_ack_per_address(limited_server):
    greedy, other = connect_from("127.0.0.41", limited_server.url), connect_from("127.0.0.42", limited_server.url)
    try:
        answers = [greedy.call("predict", {"image": png(28, 28)}, timeout=20) for _ in range(RATE + 3)]
        assert all("probabilities" in a for a in answers[:RATE]), answers[:RATE]
        assert any(a.get("status") == 429 for a in answers[RATE:])
        assert "probabilities" in other.call("predict", {"image": png(28, 28)}, timeout=20)  # not slowed down
    finally:
        greedy.disconnect()
        other.disconnect()


def test_request_size_limit_for_rest_and_socket_io(limited_server):
    big = {"image": "A" * 300_000}
    time.sleep(2 / RATE + 0.5)  # refill this address's prediction bucket after the rate test
    response = requests.post(limited_server.url + "/api/predict", json=big)
    assert response.status_code == 413 and "200,000 bytes" in response.json()["error"]

    client = socketio.Client(reconnection=False)
    client.connect(limited_server.url, transports=["websocket"], wait_timeout=20)
    try:
        client.emit("predict", big)  # over max_http_buffer_size: the server drops this connection
        client.sleep(2)
        assert not client.connected
    finally:
        client.disconnect()
    assert requests.get(limited_server.url + "/healthz").ok


def test_image_pixel_limit_refuses_decompression_bombs(limited_server):
    bomb = png(2000, 2000)  # 4 megapixels in a few kilobytes of PNG
    assert len(bomb) < 100_000
    client = connect_from("127.0.0.43", limited_server.url)  # an address of its own: a full rate bucket
    try:
        answer = client.call("predict", {"image": bomb}, timeout=20)
    finally:
        client.disconnect()
    assert answer["status"] == 400 and "pixels" in answer["error"]


def test_hyperparameter_ranges_and_queue_length(limited_server):
    for bad in ({"net": "mlp", "epochs": -1}, {"net": "mlp", "epochs": 10**9}, {"net": "cnn", "batch_size": 0},
                {"net": "mlp", "learning_rate": "NaN"}, {"net": "mlp", "hidden": 10**7}):
        response = requests.post(limited_server.url + "/api/jobs", json={**bad, "data": "sample"})
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"]
    job = {"net": "mlp", "epochs": 100, "data": "sample", "hidden": 8}
    statuses = [requests.post(limited_server.url + "/api/jobs", json=job).status_code for _ in range(3)]
    assert statuses[0] == 202 and statuses[-1] == 429  # one running, one queued, then the queue is full
    for listed in requests.get(limited_server.url + "/api/jobs").json()["jobs"]:
        if listed["state"] not in ("succeeded", "failed", "cancelled", "interrupted"):
            requests.delete(f"{limited_server.url}/api/jobs/{listed['id']}")
