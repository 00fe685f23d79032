"""Training jobs against a real server: REST, Socket.IO replay and live events,
cancel, NaN, a crashed worker, restart recovery. Jobs train real (small)
networks on the bundled MNIST sample."""
import bisect
import io
import os
import threading

import numpy as np
import psutil
import pytest
import requests
from PIL import Image

from tests.conftest import TOKEN

DONE_TIMEOUT = 240  # generous: other tests' jobs may be queued ahead on a 2-core machine
QUICK_JOB = {"net": "mlp", "epochs": 1, "hidden": 32, "data": "sample"}
LONG_JOB = {"net": "mlp2", "epochs": 50, "hidden": 256, "data": "sample"}  # minutes: always cancelled or killed
NAN_JOB = {"net": "mlp2", "epochs": 2, "hidden": 64, "optimizer": "sgd", "learning_rate": 1000, "data": "sample"}


class Watcher:
    """A Socket.IO client subscribed to one job, collecting its `job` events.

    python-socketio's client runs each event handler in a thread of its own,
    so events can reach the handler out of the order they were sent in; they
    are kept sorted by seq, and wait_done() waits until none is missing."""

    def __init__(self, client, job_id, after=0):
        self.client, self.job_id, self.after = client, job_id, after
        self.events = []
        self.models_events = []
        self._changed = threading.Condition()
        client.on("job", self._on_job)
        client.on("models", self._on_models)
        self.ack = client.call("subscribe", {"job": job_id, "after": after}, timeout=30)

    def _on_job(self, event):
        with self._changed:
            if event["job"] == self.job_id:
                bisect.insort(self.events, event, key=lambda e: e["seq"])
            self._changed.notify_all()

    def _on_models(self, data=None):
        with self._changed:
            self.models_events.append(data)
            self._changed.notify_all()

    def wait_for(self, predicate, timeout=DONE_TIMEOUT):
        with self._changed:
            assert self._changed.wait_for(lambda: predicate(self.events), timeout), \
                f"timed out; events so far: {[(e['seq'], e['type'], e.get('state')) for e in self.events]}"
        return self.events

    def wait_done(self, timeout=DONE_TIMEOUT):
        def complete(events):
            seqs = [e["seq"] for e in events]
            first = self.after + 1
            return any(e["type"] == "done" for e in events) and seqs == list(range(first, first + len(seqs)))

        self.wait_for(complete, timeout)
        return self.events[-1]

    def first(self, type_):
        return next(e for e in self.events if e["type"] == type_)


def start_job(server, params, headers=None):
    response = requests.post(server.url + "/api/jobs", json=params, headers=headers or {}, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def assert_gap_free(events, job_id):
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["job"] == job_id for e in events)
    assert [e["type"] for e in events].count("done") == 1 and events[-1]["type"] == "done"


def digit_png():
    from webapp.core.datasets import load_mnist

    image = load_mnist("sample").x_test[0]
    buffer = io.BytesIO()
    Image.fromarray((255 - image * 255).astype(np.uint8), mode="L").save(buffer, "PNG")
    return buffer.getvalue()


def test_a_job_streams_ordered_events_and_late_joiners_see_the_same_stream(server, sio):
    job_id = start_job(server, {**QUICK_JOB, "epochs": 3})
    first = Watcher(sio, job_id)
    assert first.ack["ok"] and first.ack["job"]["id"] == job_id

    # A second viewer joins mid-run: its replay plus live events must be the same stream.
    first.wait_for(lambda events: any(e["type"] in ("batch", "epoch") for e in events))
    late = Watcher(sio.connect_new(), job_id)
    done = first.wait_done()
    late.wait_done()
    assert_gap_free(first.events, job_id)
    assert late.events == first.events

    types = [e["type"] for e in first.events]
    assert first.events[0]["state"] == "queued" and first.events[0]["params"]["net"] == "mlp"
    running = next(e for e in first.events if e["type"] == "state" and e["state"] == "running")
    assert running["device"] == "CPU" or running["device"].startswith("GPU")
    assert running["data"] == "sample"
    assert "batch" in types
    batch = first.first("batch")
    assert {"epoch", "batch", "batches", "loss", "accuracy", "samples_per_s", "eta_s"} <= batch.keys()
    epochs = [e for e in first.events if e["type"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= epochs[-1]["logs"].keys()

    assert done["state"] == "succeeded", done
    result = done["result"]
    assert 0.5 < result["test_accuracy"] <= 1  # 3 epochs on 2,000 digits: far better than chance
    confusion = np.array(result["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == result["test_samples"]
    assert np.trace(confusion) == round(result["test_accuracy"] * result["test_samples"])
    assert result["misclassified"] and result["misclassified"][0]["image"].startswith("data:image/png;base64,")
    assert all(m["true"] != m["predicted"] for m in result["misclassified"])

    # After the end: a third viewer gets the whole history; a resuming one only what it lacks.
    replayed = Watcher(sio.connect_new(), job_id)
    replayed.wait_done()
    assert replayed.events == first.events
    resumed = Watcher(sio.connect_new(), job_id, after=4)
    resumed.wait_done()
    assert resumed.events == first.events[4:]

    # REST has the same history, and the model is listed; pages heard that models changed.
    job = requests.get(f"{server.url}/api/jobs/{job_id}", timeout=30).json()
    assert job["state"] == "succeeded" and job["events"] == first.events
    assert job["test_accuracy"] == result["test_accuracy"] and job["epochs_done"] == 3
    assert job["params"]["hidden"] == 32 and job["device"] == running["device"]
    listed = requests.get(server.url + "/api/jobs", timeout=30).json()["jobs"]
    assert any(j["id"] == job_id and j["state"] == "succeeded" for j in listed)
    models = {m["id"]: m for m in requests.get(server.url + "/api/models", timeout=30).json()["models"]}
    assert models[result["model"]]["network"] == "mlp"
    assert models[result["model"]]["device"] == running["device"]
    first.wait_for(lambda _: {"trained": result["model"]} in first.models_events, timeout=30)


def test_cancel_stops_a_running_job_and_drops_a_queued_one(server, sio):
    running_id = start_job(server, LONG_JOB)
    queued_id = start_job(server, QUICK_JOB)
    running = Watcher(sio, running_id)
    running.wait_for(lambda events: any(e["type"] == "batch" for e in events))

    # A queued job is simply dropped.
    response = requests.delete(f"{server.url}/api/jobs/{queued_id}", timeout=30)
    assert response.status_code == 202 and response.json()["state"] == "cancelled"
    queued = requests.get(f"{server.url}/api/jobs/{queued_id}", timeout=30).json()
    assert [(e["type"], e["state"]) for e in queued["events"]] == [("state", "queued"), ("done", "cancelled")]

    response = requests.delete(f"{server.url}/api/jobs/{running_id}", timeout=30)
    assert response.status_code == 202 and response.json()["state"] == "cancelling"
    done = running.wait_done()
    assert done["state"] == "cancelled" and "result" not in done
    assert_gap_free(running.events, running_id)
    assert len([e for e in running.events if e["type"] == "epoch"]) < LONG_JOB["epochs"]

    again = requests.delete(f"{server.url}/api/jobs/{running_id}", timeout=30)
    assert again.status_code == 409 and "cancelled" in again.json()["error"]


def training_process(server):
    """The spawned child process that trains the current job: unlike the
    preprocessing workers, it runs in a session of its own (see lower_priority)."""
    children = psutil.Process(server.proc.pid).children(recursive=True)
    spawned = [p for p in children if any("spawn_main" in part for part in p.cmdline())
               and not any("resource_tracker" in part for part in p.cmdline())]
    found = [p for p in spawned if os.getsid(p.pid) != os.getsid(server.proc.pid)]
    assert len(found) == 1, [p.cmdline() for p in children]
    return found[0]


def test_a_crashed_worker_fails_the_job_and_the_server_carries_on(server, sio):
    job_id = start_job(server, LONG_JOB)
    watcher = Watcher(sio, job_id)
    watcher.wait_for(lambda events: any(e["type"] == "batch" for e in events))
    child = training_process(server)
    # It trains at the lowest priority (and, found as above, in a session of its own:
    # Linux autogroups rank nice values only within one).
    assert {psutil.Process(t.id).nice() for t in child.threads()} == {19}
    child.kill()  # as the kernel's OOM killer would

    done = watcher.wait_done()
    assert done["state"] == "failed" and "SIGKILL" in done["error"] and "memory" in done["error"]
    assert_gap_free(watcher.events, job_id)
    assert requests.get(server.url + "/healthz", timeout=30).ok  # the NaN test's job then runs after it


def test_an_augmented_job_trains_on_mnist_and_drawings(server, sio):
    """The job's process is daemonic, so it draws the synthetic digits itself, not in a pool."""
    from webapp.core.datasets import load_mnist
    from webapp.core.training import DRAWINGS_PER

    job_id = start_job(server, {"net": "cnn", "epochs": 1, "augment": True, "data": "sample"})
    watcher = Watcher(sio, job_id)
    done = watcher.wait_done()
    assert done["state"] == "succeeded", done.get("error")
    digits = len(load_mnist("sample").x_train)
    assert watcher.first("batch")["batches"] == -(-(digits + digits // DRAWINGS_PER) // 64)
    stages = [e for e in watcher.events if e["type"] == "state" and e.get("stage")]
    assert [e["state"] for e in stages] == ["running"] and f"drawing {digits // DRAWINGS_PER}" in stages[0]["stage"]


def test_a_nan_job_fails_with_a_reason(server, sio):
    job_id = start_job(server, NAN_JOB)
    done = Watcher(sio, job_id).wait_done()
    assert done["state"] == "failed"
    assert "NaN" in done["error"] and "learning rate" in done["error"]
    job = requests.get(f"{server.url}/api/jobs/{job_id}", timeout=30).json()
    assert job["state"] == "failed" and job["error"] == done["error"]


@pytest.mark.parametrize("params, field, words", [
    ({"net": "resnet"}, "net", ["xor", "mlp", "mlp2", "cnn"]),
    ({"net": "cnn", "epochs": 0}, "epochs", ["1", "100"]),
    ({"net": "cnn", "epochs": 2.5}, "epochs", ["whole"]),
    ({"net": "xor", "hidden": 17}, "hidden", ["1", "16"]),
    ({"net": "mlp", "learning_rate": "fast"}, "learning_rate", ["number"]),
    ({"net": "mlp", "batch_size": 0}, "batch_size", ["1", "4096"]),
    ({"net": "mlp", "optimizer": "lbfgs"}, "optimizer", ["sgd", "rmsprop", "adam"]),
    ({"net": "mlp", "data": "imagenet"}, "data", ["mnist", "sample"]),
    ({"net": "mlp", "augment": "yes"}, "augment", ["true", "false"]),
    ([1, 2, 3], "body", ["JSON object"]),
])
def test_invalid_parameters_get_a_4xx_naming_the_field(server, params, field, words):
    response = requests.post(server.url + "/api/jobs", json=params, timeout=30)
    assert response.status_code == 400
    answer = response.json()
    assert answer["field"] == field
    assert all(word in answer["error"] for word in words), answer


def test_unknown_jobs_and_bad_messages_get_clear_errors(server, sio):
    assert requests.post(server.url + "/api/jobs", data="not json", timeout=30).status_code == 400
    for response in (requests.get(server.url + "/api/jobs/nope", timeout=30),
                     requests.delete(server.url + "/api/jobs/nope", timeout=30)):
        assert response.status_code == 404 and "nope" in response.json()["error"]
    assert sio.call("subscribe", {"job": "nope"}, timeout=30)["status"] == 404
    assert sio.call("subscribe", {"job": 7}, timeout=30)["status"] == 400
    assert sio.call("subscribe", {"job": "nope", "after": -1}, timeout=30)["status"] == 400
    assert sio.call("subscribe", "hello", timeout=30)["status"] == 400
    networks = requests.get(server.url + "/api/networks", timeout=30).json()
    assert networks["networks"]["cnn"]["optimizer"] == "adam" and networks["networks"]["xor"]["hidden"] == 2


def test_after_a_restart_a_running_job_is_interrupted_and_models_still_load(start_server, tmp_path):
    import socketio

    home = tmp_path / "home"
    env = {"NEURONLAB_TRUST_LOCALHOST": "0", "NEURONLAB_MAX_QUEUED_JOBS": "1"}
    teacher = {"Authorization": f"Bearer {TOKEN}"}
    first = start_server(env=env, home=home)

    # Viewers may watch but not start jobs.
    assert requests.post(first.url + "/api/jobs", json=QUICK_JOB, timeout=30).status_code == 401
    assert 'data-role="viewer"' in requests.get(first.url + "/train", timeout=30).text

    client = socketio.Client(reconnection=False)
    client.connect(first.url, transports=["websocket"], wait_timeout=20)
    trained_id = start_job(first, QUICK_JOB, teacher)
    trained = Watcher(client, trained_id).wait_done()
    assert trained["state"] == "succeeded"
    model_id = trained["result"]["model"]

    long_id = start_job(first, LONG_JOB, teacher)
    Watcher(client, long_id).wait_for(lambda events: any(e["type"] == "batch" for e in events))
    queued_id = start_job(first, QUICK_JOB, teacher)
    too_many = requests.post(first.url + "/api/jobs", json=QUICK_JOB, headers=teacher, timeout=30)
    assert too_many.status_code == 429 and "limit is 1" in too_many.json()["error"]
    client.disconnect()
    first.kill()

    second = start_server(env=env, home=home)
    for job_id in (long_id, queued_id):
        job = requests.get(f"{second.url}/api/jobs/{job_id}", timeout=30).json()
        assert job["state"] == "interrupted"
        assert_gap_free(job["events"], job_id)
        assert job["events"][-1]["state"] == "interrupted" and "server stopped" in job["events"][-1]["error"]
    assert requests.get(f"{second.url}/api/jobs/{trained_id}", timeout=30).json()["state"] == "succeeded"
    assert not list((home / "models").glob(".tmp-*"))

    answer = requests.post(f"{second.url}/api/predict?model={model_id}", data=digit_png(),
                           headers={"Content-Type": "image/png"}, timeout=60)
    assert answer.status_code == 200 and 0 <= answer.json()["digit"] <= 9

    # "Use this model" (teacher only): then the draw page predicts with it by default.
    assert requests.post(f"{second.url}/api/models/{model_id}/activate", timeout=30).status_code == 401
    activated = requests.post(f"{second.url}/api/models/{model_id}/activate", headers=teacher, timeout=30)
    assert activated.status_code == 200 and activated.json()["active"]["default"] == model_id
    answer = requests.post(second.url + "/api/predict", data=digit_png(), headers={"Content-Type": "image/png"},
                           timeout=60)
    assert answer.json()["model"] == model_id
