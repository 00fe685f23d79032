"""Fuzzing: generated malformed input at every HTTP endpoint and every Socket.IO
event of a real server. Whatever arrives, the answer is never a 5xx, the
server stays up, and no file appears outside the model store and the instance
folder. Runs are reproducible (derandomize) and the total is printed.

The server trusts localhost, so the fuzzer is the teacher and reaches the
deepest code (uploads, activation, jobs, studies). Inputs that the server would
accept as a real job or study are made invalid first, so the fuzzer starts no
training.
"""
import base64
import io
import json
import math
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests
import socketio
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import ROOT, ServerProcess
from digit_models import make_model_files

EXAMPLES = 75  # per fuzzed route or event: 21 of them give over 1,500 inputs
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
SENT = {"http": 0, "socket": 0}
MAX_REQUEST_BYTES = 300_000


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    env = {"NEURONLAB_PREDICT_RATE": "100000", "NEURONLAB_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
           "NEURONLAB_MAX_UPLOAD_BYTES": "2000000", "NEURONLAB_MAX_QUEUED_JOBS": "1",
           "NEURONLAB_DRAWING_RATE": "0"}  # drawings reach the store, not the rate limit
    process = ServerProcess(base / "home", env=env).start()
    files = make_model_files(base / "files")
    with open(files["mlp_h5"], "rb") as f:  # one real model, so predictions run all the way
        assert requests.post(process.url + "/api/models", files={"file": f}).status_code == 201
    created = requests.post(process.url + "/api/datasets", json={"name": "letters", "labels": ["A", "B", "C"]})
    assert created.status_code == 201  # a dataset besides the built-in one, so writes reach real rows
    process.before = outside_files(process)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def client(target):
    holder = {}

    def connected():
        if holder.get("sio") is None or not holder["sio"].connected:
            sio = socketio.Client(reconnection=False)
            sio.connect(target.url, transports=["websocket"], wait_timeout=20)
            holder["sio"] = sio
        return holder["sio"]

    yield connected
    if holder.get("sio") and holder["sio"].connected:
        holder["sio"].disconnect()


# -- what the fuzzer sends ----------------------------------------------------------------

PATH_TRICKS = [
    "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2f", "..\\..\\windows", "/etc/passwd",
    "mlp/../../x", "\u2025\u2215etc", "..\u2215..\u2215x", "\uff0e\uff0e\uff0fx", "\u202emlp", "mlp\x00.keras",
    "MLP", "\uff4d\uff4c\uff50", "mlp\n", " mlp", "con", "nul", ".", "..", "~", "$HOME", "a" * 300, "😀", "",
    ".tmp-x", "mlp.keras", "mlp.json", "instance/active", "%00", "%252e%252e",
]

DATASET_IDS = ["class-digits", "letters", "letters-2", "mnist", "sample", "import"]
names = st.one_of(st.sampled_from(PATH_TRICKS), st.text(max_size=40),
                  st.text(alphabet="./\\%~\x00\u2215\uff0f\u2025abc", max_size=20))
huge_numbers = st.sampled_from([10**30, -(10**30), 2**63, -1, -(2**31), 1e308, -1e308, math.nan, math.inf,
                                -math.inf, 0, 0.5, 1e-320])
scalars = st.one_of(st.none(), st.booleans(), st.integers(), huge_numbers,
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), names)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)


def png_bytes(width, height, colour=255):
    buffer = io.BytesIO()
    Image.new("L", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


VALID_PNG = png_bytes(28, 28, 0)
BOMB_PNG = png_bytes(5000, 5000)  # 25 megapixels in a small file


@st.composite
def image_bytes(draw):
    kind = draw(st.sampled_from(["random", "truncated", "bomb", "tiny", "wide", "valid", "mangled"]))
    if kind == "random":
        return draw(st.binary(max_size=2000))
    if kind == "truncated":
        return VALID_PNG[: draw(st.integers(0, len(VALID_PNG) - 1))]
    if kind == "bomb":
        return BOMB_PNG
    if kind == "tiny":
        return png_bytes(1, 1)
    if kind == "wide":
        return png_bytes(draw(st.integers(1, 4000)), 1)
    if kind == "mangled":
        data = bytearray(VALID_PNG)
        data[draw(st.integers(8, len(data) - 1))] ^= 0xFF
        return bytes(data)
    return VALID_PNG


@st.composite
def image_texts(draw):
    """What arrives as "image" in JSON: data URLs, bad base64, wrong types."""
    kind = draw(st.sampled_from(["data-url", "bare", "bad-base64", "wrong-type", "huge", "prefix"]))
    if kind == "data-url":
        return "data:image/png;base64," + base64.b64encode(draw(image_bytes())).decode()
    if kind == "bare":
        return base64.b64encode(draw(image_bytes())).decode()
    if kind == "bad-base64":
        return draw(st.text(alphabet="ABCD=!*_-\n\u00e9", min_size=1, max_size=50))
    if kind == "huge":
        return "data:image/png;base64," + "A" * draw(st.sampled_from([100_000, MAX_REQUEST_BYTES + 10]))
    if kind == "prefix":
        return draw(st.sampled_from(["data:", "data:;base64,", "data:image/png;base64", "data:x;y;base64,AAAA"]))
    return draw(json_values)


content_types = st.sampled_from([
    "application/json", "text/plain", "image/png", "image/svg+xml", "multipart/form-data",
    "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "", "application/json; charset=utf-16",
    "application/octet-stream", "image/", "\u00e9/\u00e9",
])


@st.composite
def raw_bodies(draw):
    """Bodies of the wrong shape for a JSON endpoint, with any content type."""
    kind = draw(st.sampled_from(["json", "text", "binary", "image"]))
    if kind == "json":
        body = json.dumps(draw(json_values), allow_nan=True).encode()
    elif kind == "text":
        body = draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    elif kind == "binary":
        body = draw(st.binary(max_size=500))
    else:
        body = draw(image_bytes())
    return body, draw(content_types)


def invalid_job(params):
    """Keep the fuzzer from starting real training: make valid specs invalid."""
    from webapp.core.training import SpecError, parse_spec

    try:
        parse_spec(params)
    except SpecError:
        return params
    return {**params, "epochs": -1}


def invalid_study(params):
    from webapp.web.lab import ApiError
    from webapp.web.xor_api import parse_study

    try:
        parse_study(params)
    except ApiError:
        return params
    return {**params, "seeds": -1}


job_bodies = st.fixed_dictionaries(
    {"net": st.one_of(st.sampled_from(["xor", "mlp", "mlp2", "cnn"]), scalars)},
    optional={**{k: st.one_of(scalars, json_values) for k in
                 ("epochs", "batch_size", "learning_rate", "hidden", "optimizer", "seed", "augment")},
              "data": st.one_of(st.sampled_from(DATASET_IDS), scalars, json_values)},
).map(invalid_job)
study_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={"sizes": st.one_of(st.lists(scalars, max_size=10), scalars),
                                        "seeds": scalars, "epochs": scalars}),
).map(lambda p: invalid_study(p) if isinstance(p, dict) else p)


# -- checks -------------------------------------------------------------------------------

def send(target, method, path, **kwargs):
    SENT["http"] += 1
    if "json" in kwargs:  # as JavaScript never could: NaN and Infinity too
        kwargs["data"] = json.dumps(kwargs.pop("json"), allow_nan=True)
        kwargs["headers"] = {"Content-Type": "application/json"}
    try:
        response = requests.request(method, target.url + path, timeout=60, **kwargs)
    except requests.ConnectionError:
        # the server may close a connection whose body it will not read (413): fine, if it is still up
        assert requests.get(target.url + "/healthz", timeout=30).ok
        return None
    assert response.status_code < 500, (method, path, response.status_code, response.text[:300])
    if urlsplit(response.url).path.startswith("/api/") and response.status_code >= 400:  # as the server saw it
        assert "error" in response.json(), response.text[:200]
    return response


def emit(client, event, data):
    SENT["socket"] += 1
    sio = client()
    try:
        answer = sio.call(event, data, timeout=20)
    except socketio.exceptions.TimeoutError:
        answer = None  # e.g. a message over max_http_buffer_size: the server drops the connection
    except socketio.exceptions.BadNamespaceError:
        answer = None
    if isinstance(answer, dict):
        assert not (isinstance(answer.get("status"), int) and answer["status"] >= 500), answer


SOURCE_SUFFIXES = {".py", ".js", ".html", ".css", ".md", ".txt"}


def outside_files(target):
    """Files the app could have written outside the model store and the instance folder."""
    found = set()
    for folder in (ROOT / "models", ROOT / "webapp", ROOT / "static", ROOT / "templates", target.home.parent):
        for path in folder.rglob("*"):
            if target.home in path.parents or "__pycache__" in path.parts or path.suffix in SOURCE_SUFFIXES:
                continue  # (source files: other people may be editing the repo meanwhile)
            found.add(str(path))
    return found


# -- HTTP -----------------------------------------------------------------------------------

@FUZZ
@given(image=image_texts(), model=st.one_of(st.none(), names, json_values))
def test_predict_json(target, image, model):
    send(target, "POST", "/api/predict", json={"image": image, "model": model})


@FUZZ
@given(body=raw_bodies())
def test_predict_raw_bodies_and_content_types(target, body):
    data, content_type = body
    send(target, "POST", "/api/predict", data=data, headers={"Content-Type": content_type})


@FUZZ
@given(image=image_bytes(), field=st.sampled_from(["image", "file", "img"]), model=names,
       filename=names)
def test_predict_multipart(target, image, field, model, filename):
    send(target, "POST", "/api/predict", files={field: (filename or "x", image)}, data={"model": model})


@FUZZ
@given(image=image_texts(), model=st.one_of(st.none(), names, json_values))
def test_inspect_json(target, image, model):
    send(target, "POST", "/api/inspect", json={"image": image, "model": model})


@FUZZ
@given(body=raw_bodies())
def test_inspect_raw_bodies_and_content_types(target, body):
    data, content_type = body
    send(target, "POST", "/api/inspect", data=data, headers={"Content-Type": content_type})


@FUZZ
@given(model=st.one_of(st.sampled_from(["cnn", "mlp", "mlp2", "xor", "mlp_digits_28x28"]), names),
       layer=st.one_of(st.sampled_from(["conv2d", "dense", "dense_1", "flatten", "input_layer"]), names))
def test_weights_by_model_and_layer(target, model, layer):
    send(target, "GET", f"/api/models/{quote(model, safe='') or '%20'}/weights", params={"layer": layer})


@FUZZ
@given(name=names, method=st.sampled_from(["GET", "DELETE", "POST-activate"]))
def test_models_by_name(target, name, method):
    quoted = quote(name, safe="") or "%20"
    if method == "POST-activate":
        send(target, "POST", f"/api/models/{quoted}/activate")
    else:
        send(target, method, f"/api/models/{quoted}")


@FUZZ
@given(name=names)
def test_models_by_raw_path(target, name):
    """Unquoted names: slashes and dots reach the router as they are."""
    send(target, "GET", "/api/models/" + name.replace("\x00", "").replace("#", "").replace("?", ""))


@FUZZ
@given(content=st.one_of(st.binary(max_size=3000), st.builds(lambda b: b"PK\x03\x04" + b, st.binary(max_size=3000)),
                         st.builds(lambda b: b"\x89HDF\r\n\x1a\n" + b, st.binary(max_size=3000))),
       filename=st.one_of(names, names.map(lambda n: n + ".keras"), names.map(lambda n: n + ".h5")),
       name=st.one_of(st.none(), names), field=st.sampled_from(["file", "model", "image"]))
def test_upload(target, content, filename, name, field):
    send(target, "POST", "/api/models", files={field: (filename or "x.h5", content)},
         data={"name": name} if name is not None else {})


@FUZZ
@given(body=raw_bodies())
def test_upload_wrong_content_types(target, body):
    data, content_type = body
    send(target, "POST", "/api/models", data=data, headers={"Content-Type": content_type})


@FUZZ
@given(body=job_bodies)
def test_jobs_create(target, body):
    send(target, "POST", "/api/jobs", json=body)


@FUZZ
@given(body=raw_bodies())
def test_jobs_create_raw(target, body):
    data, content_type = body
    send(target, "POST", "/api/jobs", data=data, headers={"Content-Type": content_type})


@FUZZ
@given(job=names, after=st.one_of(names, st.integers().map(str)), method=st.sampled_from(["GET", "DELETE"]))
def test_jobs_by_id(target, job, after, method):
    send(target, method, f"/api/jobs/{quote(job, safe='') or '%20'}", params={"after": after})


@FUZZ
@given(query=st.dictionaries(st.sampled_from(["x", "model", "after", "token", "page"]), names, max_size=3),
       path=st.sampled_from(["/api/models", "/api/jobs", "/api/networks", "/api/share", "/api/xor/models",
                             "/api/xor/breakdown", "/api/xor/study", "/share.svg", "/share", "/", "/train", "/xor",
                             "/healthz", "/api/datasets", "/api/round", "/api/datasets/class-digits/drawings"]))
def test_get_routes_with_odd_queries(target, query, path):
    send(target, "GET", path, params=query, allow_redirects=False)


@FUZZ
@given(body=st.one_of(st.fixed_dictionaries({}, optional={"input": json_values, "model": st.one_of(names, json_values)}),
                      json_values))
def test_xor_breakdown(target, body):
    send(target, "POST", "/api/xor/breakdown", json=body)


@FUZZ
@given(x=st.one_of(names, st.lists(st.one_of(st.floats(), st.integers()), max_size=4).map(
    lambda v: ",".join(map(str, v)))), model=st.one_of(st.none(), names))
def test_xor_breakdown_get(target, x, model):
    send(target, "GET", "/api/xor/breakdown", params={"x": x, "model": model})


@FUZZ
@given(body=study_bodies)
def test_xor_study(target, body):
    send(target, "POST", "/api/xor/study", data=json.dumps(body, allow_nan=True),
         headers={"Content-Type": "application/json"})


@FUZZ
@given(study=names)
def test_xor_study_by_id(target, study):
    send(target, "GET", f"/api/xor/study/{quote(study, safe='') or '%20'}")


@FUZZ
@given(method=st.sampled_from(["PUT", "PATCH", "DELETE", "POST", "OPTIONS"]),
       path=st.sampled_from(["/api/predict", "/api/models", "/api/jobs", "/api/networks", "/api/share", "/",
                             "/api/xor/breakdown", "/api/xor/study", "/api/nothing", "/static/../webapp/config.py",
                             "/api/inspect", "/api/datasets", "/api/datasets/import", "/api/round",
                             "/api/datasets/letters/drawings", "/api/datasets/letters/export"]),
       body=raw_bodies())
def test_wrong_methods_and_unknown_routes(target, method, path, body):
    data, content_type = body
    send(target, method, path, data=data, headers={"Content-Type": content_type})


dataset_ids = st.one_of(st.sampled_from(DATASET_IDS), names)
labels_lists = st.one_of(st.lists(st.one_of(names, scalars), max_size=70), st.lists(st.sampled_from(["A", "B", "a"])),
                         json_values)
drawing_bodies = st.one_of(json_values, st.fixed_dictionaries(
    {"image": image_texts()},
    optional={"label": st.one_of(st.sampled_from(["A", "3", "0"]), names, json_values),
              "client": st.one_of(st.sampled_from(["fuzz-client-1", "short", "x" * 65]), names, json_values),
              "guess": st.one_of(st.none(), names, json_values), "dataset": st.one_of(dataset_ids, json_values)}))


def quoted(name):
    return quote(name, safe="") or "%20"


@FUZZ
@given(body=st.one_of(json_values, st.fixed_dictionaries({}, optional={"name": st.one_of(names, json_values),
                                                                        "labels": labels_lists})))
def test_datasets_create(target, body):
    send(target, "POST", "/api/datasets", json=body)


@FUZZ
@given(dataset=dataset_ids, method=st.sampled_from(["GET", "DELETE"]),
       tail=st.sampled_from(["", "/drawings", "/export", "/nothing"]))
def test_datasets_by_id(target, dataset, method, tail):
    if dataset == "letters" and method == "DELETE" and tail == "":
        dataset = "letters-2"  # keep the one real dataset for the other tests
    send(target, method, f"/api/datasets/{quoted(dataset)}{tail}")


@FUZZ
@given(dataset=dataset_ids, body=drawing_bodies)
def test_drawings_add(target, dataset, body):
    send(target, "POST", f"/api/datasets/{quoted(dataset)}/drawings", json=body)


@FUZZ
@given(dataset=dataset_ids, body=raw_bodies())
def test_drawings_add_raw(target, dataset, body):
    data, content_type = body
    send(target, "POST", f"/api/datasets/{quoted(dataset)}/drawings", data=data, headers={"Content-Type": content_type})


@FUZZ
@given(dataset=dataset_ids, drawing=st.one_of(st.integers().map(str), names),
       action=st.sampled_from(["GET", "GET-png", "PATCH", "DELETE"]),
       body=st.one_of(json_values, st.fixed_dictionaries({"label": st.one_of(names, json_values)})))
def test_drawings_by_id(target, dataset, drawing, action, body):
    path = f"/api/datasets/{quoted(dataset)}/drawings/{quoted(drawing)}"
    if action == "GET-png":
        send(target, "GET", path + ".png")
    elif action == "PATCH":
        send(target, "PATCH", path, json=body)
    else:
        send(target, action, path)


@FUZZ
@given(dataset=dataset_ids, query=st.dictionaries(st.sampled_from(["after", "label", "limit", "x"]),
                                                   st.one_of(names, st.integers().map(str)), max_size=3))
def test_drawings_list(target, dataset, query):
    send(target, "GET", f"/api/datasets/{quoted(dataset)}/drawings", params=query)


@FUZZ
@given(content=st.one_of(st.binary(max_size=3000), st.builds(lambda b: b"PK\x03\x04" + b, st.binary(max_size=3000))),
       filename=names, name=st.one_of(st.none(), names), field=st.sampled_from(["file", "image"]))
def test_datasets_import(target, content, filename, name, field):
    send(target, "POST", "/api/datasets/import", files={field: (filename or "x.npz", content)},
         data={"name": name} if name is not None else {})


@FUZZ
@given(body=st.one_of(json_values, st.fixed_dictionaries({"dataset": st.one_of(dataset_ids, json_values)})),
       method=st.sampled_from(["GET", "POST", "DELETE"]))
def test_round(target, body, method):
    send(target, method, "/api/round", json=body)


# -- Socket.IO --------------------------------------------------------------------------------

@FUZZ
@given(data=st.one_of(json_values, st.fixed_dictionaries({"image": image_texts()},
                                                          optional={"model": st.one_of(names, json_values)})))
def test_socket_predict(target, client, data):
    emit(client, "predict", data)


@FUZZ
@given(data=st.one_of(json_values, st.fixed_dictionaries({"image": image_texts()},
                                                          optional={"model": st.one_of(names, json_values)})))
def test_socket_inspect(target, client, data):
    emit(client, "inspect", data)


@FUZZ
@given(data=st.one_of(json_values, st.fixed_dictionaries({"job": st.one_of(names, json_values)},
                                                          optional={"after": st.one_of(scalars, huge_numbers)})),
       event=st.sampled_from(["subscribe", "unsubscribe"]))
def test_socket_jobs(target, client, data, event):
    emit(client, event, data)


@FUZZ
@given(data=drawing_bodies)
def test_socket_add_drawing(target, client, data):
    emit(client, "add_drawing", data)


@FUZZ
@given(data=st.one_of(json_values, st.fixed_dictionaries({"dataset": st.one_of(dataset_ids, json_values)})),
       event=st.sampled_from(["watch_dataset", "unwatch_dataset"]))
def test_socket_watch_dataset(target, client, data, event):
    emit(client, event, data)


@FUZZ
@given(args=st.one_of(st.just(None), st.tuples(), st.tuples(json_values, json_values), st.tuples(json_values)),
       event=st.sampled_from(["predict", "inspect", "subscribe", "unsubscribe", "whoami", "add_drawing",
                              "watch_dataset", "unwatch_dataset"]))
def test_socket_events_with_no_or_several_arguments(target, client, args, event):
    emit(client, event, args)


@FUZZ
@given(data=json_values, event=st.one_of(st.sampled_from(["job", "models", "jobs", "xor_study", "message", "round",
                                                           "drawing_added", "datasets_changed"]),
                                         st.text(min_size=1, max_size=20)))
def test_socket_unknown_events(target, client, data, event):
    """Events nobody handles get no answer; the connection must stay usable."""
    assume(event not in ("connect", "disconnect", "connect_error") + SERVER_HANDLED)
    SENT["socket"] += 1
    sio = client()
    sio.emit(event, data)
    assert sio.call("whoami", timeout=20)["role"] == "teacher"


SERVER_HANDLED = ("predict", "inspect", "subscribe", "unsubscribe", "whoami", "add_drawing", "watch_dataset",
                  "unwatch_dataset")


@FUZZ
@given(auth=json_values)
def test_socket_connect_auth(target, auth):
    SENT["socket"] += 1
    sio = socketio.Client(reconnection=False)
    sio.connect(target.url, transports=["websocket"], wait_timeout=20, auth=auth if isinstance(auth, dict) else None)
    assert sio.call("whoami", {}, timeout=30)["role"] in ("teacher", "viewer")
    sio.disconnect()


# -- afterwards -----------------------------------------------------------------------------

def test_the_server_survived_and_wrote_nothing_outside_its_folders(target):
    assert target.proc.poll() is None
    assert requests.get(target.url + "/healthz", timeout=30).ok
    new = outside_files(target) - target.before
    assert not new, sorted(new)[:20]
    store = target.home / "models"
    assert all(p.parent == store for p in store.rglob("*")), "the store holds only flat files"
    assert not list((target.home / "uploads").iterdir()), "every refused upload was removed"
    log = target.log.read_text()
    assert "Traceback" not in log, log[log.index("Traceback") - 500:][:3000]
    total = SENT["http"] + SENT["socket"]
    print(f"\nfuzzing sent {total} generated inputs: {SENT['http']} HTTP requests, {SENT['socket']} Socket.IO events")
    assert total >= 1000
