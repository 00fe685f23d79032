"""A full disk and a read-only instance folder, against real servers: every write answers 507 with the reason,
as JSON; predictions go on.

Tests run as root, which ignores file permissions, so the faults are real mounts: a small tmpfs filled to the last
page (ENOSPC: "disk full"), and the instance folder bind-mounted read-only onto itself (EROFS). Without the right to
mount (an unprivileged container) these tests skip and say so."""
import json
import subprocess

import pytest
import requests

from conftest import TOKEN, ServerProcess, fill
from digit_models import make_model_files
from test_faults import JobWatcher, predict_default, start_job

TEACHER = {"Authorization": f"Bearer {TOKEN}"}
ENV = {"NEURONLAB_TRUST_LOCALHOST": "0"}
FAILING_XOR = {"net": "xor", "hidden": 2, "seed": 8, "epochs": 1000}  # does not learn XOR: a run one may keep
FULL = "the server's disk is full"
READ_ONLY = "the instance folder is read-only"


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    return make_model_files(tmp_path_factory.mktemp("disk-models"))


def mount(*args):
    done = subprocess.run(["mount", *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip()}): these faults need a real full or read-only disk")


def unmount(target):
    subprocess.run(["umount", "-l", str(target)], capture_output=True)


def server_in(home, log):
    """A server whose log lives outside its (full or read-only) instance folder."""
    server = ServerProcess(home, env=ENV)
    server.log = log
    return server


def upload(server, path):
    with open(path, "rb") as f:
        return requests.post(server.url + "/api/models", files={"file": f}, headers=TEACHER, timeout=60)


def assert_507(response, words):
    assert response.status_code == 507, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert words in body["error"], body
    assert "/" not in body["error"], body  # never a server path
    return body


def writes(server, model_id, job_id):
    """Every write a teacher can make, as (what, response)."""
    url = server.url
    return [
        ("activate", requests.post(f"{url}/api/models/{model_id}/activate", headers=TEACHER, timeout=30)),
        ("rename", requests.patch(f"{url}/api/models/{model_id}", json={"name": "Monday's"}, headers=TEACHER,
                                  timeout=30)),
        ("job", requests.post(f"{url}/api/jobs", json=FAILING_XOR, headers=TEACHER, timeout=30)),
        ("keep", requests.post(f"{url}/api/xor/keep", json={"job": job_id}, headers=TEACHER, timeout=30)),
    ]


def test_a_full_disk_answers_507_on_every_write_and_predictions_go_on(tmp_path, model_files):
    home = tmp_path / "small-disk"
    home.mkdir()
    mount("-t", "tmpfs", "-o", "size=48m", "tmpfs", home)
    server = server_in(home, tmp_path / "server.log")
    try:
        server.start()
        uploaded = upload(server, model_files["mlp_h5"])
        assert uploaded.status_code == 201, uploaded.text
        model_id = uploaded.json()["model"]["id"]
        fill(home)

        body = assert_507(upload(server, model_files["cnn_keras"]), FULL)
        assert body["reason"] == "disk_full"
        for what, response in writes(server, model_id, "0123456789"):
            if what == "keep":
                assert response.status_code == 404  # no such job: checked before anything is written
                continue
            assert_507(response, FULL)
        assert predict_default(server).status_code == 200
        assert requests.get(server.url + "/api/models", timeout=30).status_code == 200
        assert requests.get(server.url + "/api/jobs", timeout=30).json()["jobs"] == []
        assert not [p for p in (home / "uploads").iterdir() if p.name.startswith(".tmp-")]  # nothing half-written
        assert not [p for p in (home / "models").iterdir() if p.name.startswith(".tmp-")]

        (home / "filler").unlink()  # space again: the same writes work
        assert upload(server, model_files["cnn_keras"]).status_code == 201
        assert requests.post(f"{server.url}/api/models/{model_id}/activate", headers=TEACHER,
                             timeout=30).status_code == 200
    finally:
        server.stop()
        unmount(home)


def test_a_read_only_instance_folder_starts_serves_and_answers_507(tmp_path, model_files):
    home = tmp_path / "home"
    first = server_in(home, tmp_path / "first.log")
    try:
        first.start()
        uploaded = upload(first, model_files["mlp_h5"])
        assert uploaded.status_code == 201, uploaded.text
        model_id = uploaded.json()["model"]["id"]
        assert requests.post(f"{first.url}/api/models/{model_id}/activate", headers=TEACHER,
                             timeout=30).status_code == 200
        job_id = start_job(first, FAILING_XOR)
        watcher = JobWatcher(first.url, job_id)
        try:
            assert watcher.wait_done()["state"] == "succeeded"
        finally:
            watcher.client.disconnect()
    finally:
        first.stop()

    mount("--bind", home, home)
    server = server_in(home, tmp_path / "server.log")
    try:
        mount("-o", "remount,bind,ro", home)
        server.start()  # a read-only folder does not stop the server
        assert READ_ONLY in server.log.read_text()

        answer = predict_default(server)
        assert answer.status_code == 200 and answer.json()["model"] == model_id, answer.text
        listing = requests.get(server.url + "/api/jobs", timeout=30).json()
        assert [j["id"] for j in listing["jobs"]] == [job_id] and READ_ONLY in listing["notice"], listing

        body = assert_507(upload(server, model_files["cnn_keras"]), READ_ONLY)
        assert body["reason"] == "read_only"
        for what, response in writes(server, model_id, job_id):
            assert_507(response, READ_ONLY)
        assert_507(requests.delete(f"{server.url}/api/models/{model_id}", headers=TEACHER, timeout=30), READ_ONLY)
        models = requests.get(server.url + "/api/models", timeout=30).json()["models"]
        assert model_id in [m["id"] for m in models]  # nothing was half-deleted
        assert json.dumps(models).count("Monday") == 0
    finally:
        server.stop()
        unmount(home)


def test_a_job_whose_events_the_full_disk_refuses_fails_with_that_reason(tmp_path):
    home = tmp_path / "small-disk"
    home.mkdir()
    mount("-t", "tmpfs", "-o", "size=48m", "tmpfs", home)
    server = server_in(home, tmp_path / "server.log")
    try:
        server.start()
        job_id = start_job(server, {"net": "mlp", "epochs": 100, "hidden": 64, "data": "sample"})
        watcher = JobWatcher(server.url, job_id)
        try:
            watcher.wait_epochs(1)
            fill(home)
            watcher.wait_for(lambda events: any(e["type"] == "done" for e in events), timeout=120)
            done = next(e for e in watcher.events if e["type"] == "done")
        finally:
            watcher.client.disconnect()
        assert done["state"] == "failed" and FULL in done["error"], done
        job = requests.get(f"{server.url}/api/jobs/{job_id}", timeout=30).json()
        assert job["state"] == "failed" and FULL in job["error"], job["state"]
        assert predict_default(server).status_code == 200  # the server keeps serving
        second = requests.post(server.url + "/api/jobs", json=FAILING_XOR, headers=TEACHER, timeout=30)
        assert_507(second, FULL)
    finally:
        server.stop()
        unmount(home)
