"""Look inside the networks: /api/inspect, the Socket.IO `inspect` event and /api/models/<id>/weights against a
real server. Every layer's output and every weight is checked against Keras's own, computed here, for the shipped
CNN, MLP and MLP2 and for an uploaded functional model; errors and limits are /api/predict's. The rate is low, so
that the limit is reached at once; every other request comes from a loopback address of its own (a fresh bucket)."""
import base64
import itertools

import numpy as np
import pytest
import requests

from conftest import ROOT, TOKEN, ServerProcess
from drawing import data_url, drawn_png
from loopback import connect_from, session_from

RATE = 2  # predictions (and inspections) a second per address, in bursts of 2
MAX_REQUEST_BYTES = 300_000
SHIPPED = ("cnn", "mlp", "mlp2")


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


@pytest.fixture(scope="module")
def functional_file(tmp_path_factory, keras):
    """A functional model with two branches, a BatchNormalization with weights of its own, and the softmax as a
    layer of its own (so the saliency follows the scores before it)."""
    from keras import layers

    keras.utils.set_random_seed(3)
    image = keras.Input((28, 28, 1), name="digit")
    wide = layers.Conv2D(6, 3, padding="same", activation="relu", name="wide")(image)
    point = layers.Conv2D(6, 1, padding="same", name="point")(image)
    joined = layers.Add(name="joined")([wide, point])
    normal = layers.BatchNormalization(name="normal")(joined)
    pooled = layers.MaxPooling2D(4, name="pooled")(normal)
    scores = layers.Dense(10, name="scores")(layers.Flatten(name="flat")(pooled))
    model = keras.Model(image, layers.Activation("softmax", name="softmax")(scores), name="branches")
    rng = np.random.default_rng(3)
    bn = model.get_layer("normal")
    bn.set_weights([rng.uniform(0.5, 2, 6), rng.normal(0, 0.5, 6), rng.normal(0, 0.2, 6), rng.uniform(0.5, 2, 6)])
    path = tmp_path_factory.mktemp("functional") / "branches.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def inspect_server(tmp_path_factory, functional_file):
    env = {"NEURONLAB_PREDICT_RATE": str(RATE), "NEURONLAB_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES)}
    process = ServerProcess(tmp_path_factory.mktemp("inspect"), env=env).start()
    with open(functional_file, "rb") as f:
        uploaded = requests.post(process.url + "/api/models", headers={"Authorization": f"Bearer {TOKEN}"},
                                 files={"file": ("branches.keras", f)}, timeout=300)
    assert uploaded.status_code == 201, uploaded.text
    process.functional_id = uploaded.json()["model"]["id"]
    yield process
    process.stop()


ADDRESSES = (f"127.0.{n // 250 + 1}.{n % 250 + 2}" for n in itertools.count())


def fresh():
    """A requests session from a loopback address nobody has used yet."""
    return session_from(next(ADDRESSES))


def socket_call(server, event, data):
    client = connect_from(next(ADDRESSES), server.url)
    try:
        return client.call(event, data, timeout=120)
    finally:
        client.disconnect()


def decoded(block):
    """A {"shape", "data": base64 float16} block as a float32 array."""
    return np.frombuffer(base64.b64decode(block["data"]), "<f2").astype(np.float32).reshape(block["shape"])


def assert_float16_close(got, want, what):
    """Equal within float16 rounding (half a unit in the last place, 2**-11, with room for one more unit where the
    server's and this process's float32 sums differ in the last bits), and float32 noise near zero."""
    want = np.asarray(want, np.float32)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=2 ** -10, atol=1e-5 * max(1.0, float(np.abs(want).max())),
                               err_msg=what)


def model_file(server, model_id):
    return ROOT / "models" / f"{model_id}.keras" if model_id in SHIPPED else server.home / "models" / f"{model_id}.keras"


def scores_gradient_times_input(keras, model, x):
    """gradient x input of the predicted digit's score before the softmax, computed here with a GradientTape."""
    import tensorflow as tf

    last = model.layers[-1]
    before = keras.Model(model.inputs[0], last.input)
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        hidden = before(x, training=False)
        if isinstance(last, keras.layers.Dense):
            scores = tf.matmul(hidden, last.kernel) + last.bias
        else:  # the Activation("softmax") layer: its input is the scores
            scores = hidden
        digit = int(np.argmax(model(x, training=False)[0]))
        chosen = scores[0, digit]
    return (tape.gradient(chosen, x) * x).numpy().reshape(28, 28)


def inspect(session, server, image, model, **kwargs):
    return session.post(server.url + "/api/inspect", json={"image": image, "model": model}, timeout=120, **kwargs)


@pytest.mark.parametrize("which", ["cnn", "mlp", "mlp2", "functional"])
def test_every_layer_and_the_saliency_equal_keras_own(inspect_server, keras, which):
    model_id = inspect_server.functional_id if which == "functional" else which
    response = inspect(fresh(), inspect_server, data_url(drawn_png(7, seed=2)), model_id)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model"] == model_id and answer["digit"] == int(np.argmax(answer["probabilities"]))
    model = keras.models.load_model(model_file(inspect_server, model_id), compile=False)
    x = np.asarray(answer["input"], np.float32).reshape((1,) + tuple(model.input_shape[1:]))

    inner = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert [(layer["name"], layer["type"]) for layer in answer["layers"]] == \
        [(layer.name, type(layer).__name__) for layer in inner]
    expected = keras.Model(model.inputs[0], [layer.output for layer in inner])(x, training=False)
    for layer, want in zip(answer["layers"], expected):
        assert layer["data"] is not None, layer
        assert layer["shape"] == list(want.shape[1:])
        assert_float16_close(decoded(layer), np.asarray(want)[0], layer["name"])
    assert_float16_close(decoded(answer["layers"][-1]), answer["probabilities"], "probabilities")

    saliency = answer["saliency"]
    assert saliency["method"] == "gradient x input" and saliency["shape"] == [28, 28]
    got = decoded(saliency)
    assert np.abs(got).max() > 0
    want = scores_gradient_times_input(keras, model, x)
    np.testing.assert_allclose(got, want, rtol=2 ** -9, atol=1e-3 * float(np.abs(want).max()))

    convolutions = [layer for layer in inner if isinstance(layer, keras.layers.Conv2D)]
    if convolutions:
        assert answer["kernels"]["layer"] == convolutions[0].name
        assert_float16_close(decoded(answer["kernels"]), convolutions[0].get_weights()[0], "kernels")
    else:
        assert answer["kernels"] is None
    if which == "cnn":  # the "near 100 KB instead of a megabyte of JSON numbers"
        assert len(response.content) < 250_000, len(response.content)
        assert answer["kernels"]["shape"] == [3, 3, 1, 32]


@pytest.mark.parametrize("which", ["cnn", "mlp2", "functional"])
def test_weights_equal_get_weights(inspect_server, keras, which):
    model_id = inspect_server.functional_id if which == "functional" else which
    model = keras.models.load_model(model_file(inspect_server, model_id), compile=False)
    sent = []
    for layer in model.layers:
        response = fresh().get(f"{inspect_server.url}/api/models/{model_id}/weights", params={"layer": layer.name},
                               timeout=120)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["model"], body["layer"], body["type"]) == (model_id, layer.name, type(layer).__name__)
        assert [w["name"] for w in body["weights"]] == [v.name for v in layer.weights]
        sent += [decoded(w) for w in body["weights"]]
    assert len(sent) == len(model.get_weights())
    for n, (got, want) in enumerate(zip(sent, model.get_weights())):
        assert_float16_close(got, want, f"weight {n}")


def test_the_socket_event_answers_as_rest_does(inspect_server):
    image = data_url(drawn_png(3, seed=4))
    answer = socket_call(inspect_server, "inspect", {"image": image, "model": "cnn"})
    rest = inspect(fresh(), inspect_server, image, "cnn").json()
    assert answer["digit"] == 3 and answer == rest
    for data, status in [({}, 400), ("just a string", 400), ({"image": "%%%"}, 400),
                         ({"image": image, "model": "nope"}, 404), ({"image": image, "model": 5}, 400)]:
        assert socket_call(inspect_server, "inspect", data)["status"] == status, data
        assert socket_call(inspect_server, "inspect", data) == socket_call(inspect_server, "predict", data)


def test_a_blank_drawing_is_nothing_drawn(inspect_server):
    blank = data_url(white_png())
    answer = inspect(fresh(), inspect_server, blank, "cnn").json()
    assert answer["blank"] is True and answer["digit"] is None and answer["layers"] == []


def white_png():
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (140, 140), 255).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "kwargs, status, words",
    [
        ({"json": {}}, 400, "no image"),
        ({"json": {"image": 42}}, 400, "base64"),
        ({"json": {"image": "%%%not base64%%%"}}, 400, "base64"),
        ({"json": {"image": base64.b64encode(b"just text").decode()}}, 400, "not a PNG"),
        ({"json": ["image"]}, 400, "JSON object"),
        ({"json": {"image": data_url(drawn_png(1)), "model": "nope"}}, 404, "no model"),
        ({"json": {"image": data_url(drawn_png(1)), "model": "xor"}}, 400, "not a digit model"),
        ({"json": {"image": "A" * (MAX_REQUEST_BYTES + 10)}}, 413, "too large"),
        ({"data": "hello", "headers": {"Content-Type": "text/plain"}}, 415, "send JSON"),
    ],
)
def test_bad_requests_get_what_predict_gives(inspect_server, kwargs, status, words):
    session = fresh()
    answers = {path: session.post(inspect_server.url + path, timeout=60, **kwargs)
               for path in ("/api/inspect", "/api/predict")}
    for path, response in answers.items():
        assert response.status_code == status, (path, response.text)
        assert words in response.json()["error"], (path, response.text)
    assert answers["/api/inspect"].json() == answers["/api/predict"].json()


def test_inspections_share_the_predictions_rate_limit(inspect_server):
    image = data_url(drawn_png(5))
    address = next(ADDRESSES)
    session, client = session_from(address), connect_from(address, inspect_server.url)  # connected before the burst
    try:
        statuses = [inspect(session, inspect_server, image, "mlp").status_code for _ in range(RATE + 3)]
        assert statuses[:RATE] == [200] * RATE and 429 in statuses[RATE:]
        refused = client.call("inspect", {"image": image}, timeout=60)
        assert refused["status"] == 429 and "too many" in refused["error"]
        predicted = session.post(inspect_server.url + "/api/predict", json={"image": image}, timeout=60)
        assert predicted.status_code == 429  # one bucket for predictions and inspections
    finally:
        client.disconnect()
    assert inspect(fresh(), inspect_server, image, "mlp").status_code == 200  # another address is not slowed


def test_weights_errors(inspect_server):
    def weights(model_id, **params):
        return fresh().get(f"{inspect_server.url}/api/models/{model_id}/weights", params=params, timeout=60)

    assert weights("cnn", layer="no-such-layer").status_code == 404
    assert "no layer" in weights("cnn", layer="no-such-layer").json()["error"]
    assert weights("nope", layer="dense").status_code == 404
    assert weights("cnn").status_code == 400
    assert weights("xor", layer="dense").status_code == 400
    assert weights("..%2Fcnn", layer="dense").status_code == 404
