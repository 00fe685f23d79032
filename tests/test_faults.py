"""Faults against real server processes: a kill -9 mid-training, viewers that
vanish mid-stream, and a model folder that cannot be written."""
import bisect
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading

import pytest
import requests
import socketio

from conftest import TOKEN
from digit_models import make_model_files

TEACHER = {"Authorization": f"Bearer {TOKEN}"}
WAIT = 240  # generous: a 2-core machine, maybe with other jobs running
LONG_JOB = {"net": "mlp", "epochs": 100, "hidden": 64, "data": "sample"}  # minutes: always killed
SHORT_JOB = {"net": "mlp", "epochs": 3, "hidden": 16, "data": "sample"}


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    return make_model_files(tmp_path_factory.mktemp("fault-models"))


class JobWatcher:
    """A Socket.IO client that follows one job's events, kept sorted by seq
    (python-socketio's client runs each handler in a thread of its own)."""

    def __init__(self, url, job_id):
        self.events = []
        self.changed = threading.Condition()
        self.client = socketio.Client(reconnection=False)
        self.client.on("job", self._on_job)
        self.client.connect(url, transports=["websocket"], wait_timeout=20)
        self.job_id = job_id
        ack = self.client.call("subscribe", {"job": job_id}, timeout=30)
        assert ack.get("ok"), ack

    def _on_job(self, event):
        with self.changed:
            if event["job"] == self.job_id:
                bisect.insort(self.events, event, key=lambda e: e["seq"])
            self.changed.notify_all()

    def wait_for(self, predicate, timeout=WAIT):
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self.events), timeout), \
                [(e["seq"], e["type"], e.get("state")) for e in self.events]

    def wait_epochs(self, n):
        self.wait_for(lambda events: sum(e["type"] == "epoch" for e in events) >= n)

    def wait_done(self):
        def complete(events):  # the done event, and none missing before it
            seqs = [e["seq"] for e in events]
            return any(e["type"] == "done" for e in events) and seqs == list(range(1, len(seqs) + 1))

        self.wait_for(complete)
        return self.events[-1]


def start_job(server, params):
    response = requests.post(server.url + "/api/jobs", json=params, headers=TEACHER, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def upload_and_activate(server, path):
    with open(path, "rb") as f:
        uploaded = requests.post(server.url + "/api/models", files={"file": f}, headers=TEACHER, timeout=60)
    assert uploaded.status_code == 201, uploaded.text
    model_id = uploaded.json()["model"]["id"]
    activated = requests.post(f"{server.url}/api/models/{model_id}/activate", headers=TEACHER, timeout=30)
    assert activated.status_code == 200, activated.text
    return model_id


def predict_default(server):
    image = {"image": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAAAJklEQVR4nGP8z4AbMOGRo5Uk"
                      "CwqPkYEB2YED4aBRyQGSZBxsSRMAokMDN7S0rUcAAAAASUVORK5CYII="}
    return requests.post(server.url + "/api/predict", json=image, timeout=60)


def test_kill_9_mid_training_then_restart(start_server, tmp_path, model_files):
    home = tmp_path / "home"
    env = {"NEURONLAB_TRUST_LOCALHOST": "0"}
    first = start_server(env=env, home=home)
    active = upload_and_activate(first, model_files["mlp_h5"])
    models_before = sorted(os.listdir(home / "models"))
    job_id = start_job(first, LONG_JOB)
    watcher = JobWatcher(first.url, job_id)
    watcher.wait_epochs(1)  # training for real, mid-run
    first.kill()  # SIGKILL to the server and its training child alike
    watcher.client.disconnect()

    second = start_server(env=env, home=home)
    job = requests.get(f"{second.url}/api/jobs/{job_id}", timeout=30).json()
    assert job["state"] == "interrupted", job["state"]
    assert job["events"][-1]["type"] == "done" and job["events"][-1]["state"] == "interrupted"
    assert sorted(os.listdir(home / "models")) == models_before  # no partial model, no temporary file
    answer = predict_default(second)
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == active and len(answer.json()["probabilities"]) == 10


VANISHING_CLIENT = textwrap.dedent("""
    import socketio, sys, time
    client = socketio.Client(reconnection=False)
    client.on("job", lambda event: print(event["type"], flush=True))
    client.connect(sys.argv[1], transports=["websocket"], wait_timeout=20)
    client.call("subscribe", {"job": sys.argv[2]}, timeout=30)
    time.sleep(3600)
""")


def test_viewers_that_vanish_mid_stream_do_not_disturb_the_others(start_server):
    server = start_server(env={"NEURONLAB_TRUST_LOCALHOST": "0"})
    job_id = start_job(server, SHORT_JOB)
    staying = [JobWatcher(server.url, job_id) for _ in range(3)]
    leaving = JobWatcher(server.url, job_id)
    crashing = subprocess.Popen([sys.executable, "-c", VANISHING_CLIENT, server.url, job_id],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert crashing.stdout.readline().strip()  # it is receiving the stream...
        staying[0].wait_for(lambda events: any(e["type"] in ("batch", "epoch") for e in events))
        leaving.client.disconnect()  # ...one viewer leaves politely,
        crashing.send_signal(signal.SIGKILL)  # another vanishes without a word
        crashing.wait(10)
        for watcher in staying:
            done = watcher.wait_done()
            assert done["state"] == "succeeded", done
            seqs = [e["seq"] for e in watcher.events]
            assert seqs == list(range(1, len(seqs) + 1))  # nothing lost or repeated
            assert sum(e["type"] == "epoch" for e in watcher.events) == SHORT_JOB["epochs"]
        assert [e["seq"] for e in staying[0].events] == [e["seq"] for e in staying[2].events]
        assert requests.get(server.url + "/healthz", timeout=30).ok
    finally:
        if crashing.poll() is None:
            crashing.kill()
        for watcher in staying:
            watcher.client.disconnect()


def test_an_unwritable_model_folder_fails_the_job_with_a_reason(start_server, tmp_path):
    """As root, chmod stops nothing; a file where the folder was stops everyone.

    The folder goes while the job trains, so it is the final save that fails."""
    server = start_server(env={"NEURONLAB_TRUST_LOCALHOST": "0"}, home=tmp_path / "home")
    models = server.home / "models"
    job_id = start_job(server, {**SHORT_JOB, "epochs": 6})
    watcher = JobWatcher(server.url, job_id)
    try:
        watcher.wait_epochs(1)
        shutil.rmtree(models)
        models.write_text("not a folder\n")
        done = watcher.wait_done()
        assert done["state"] == "failed"
        assert "could not save the model" in done["error"] and "directory" in done["error"].lower(), done["error"]
        job = requests.get(f"{server.url}/api/jobs/{job_id}", timeout=30).json()
        assert job["state"] == "failed" and job["error"] == done["error"]
        assert requests.get(server.url + "/api/models", timeout=30).status_code == 200  # the server carries on
    finally:
        watcher.client.disconnect()
        models.unlink()
        models.mkdir()
