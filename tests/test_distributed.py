"""The distributed mode with real parts: a redis-server on a free port, two web processes sharing one
NEURONLAB_HOME, and one Celery worker (`python -m webapp worker`) with a home of its own (no shared folder).

Viewers are Socket.IO clients that follow a job as static/js/job-stream.js does: drop an event whose seq they
have, fill a gap with the `history` event, and after a reconnect subscribe again from their last seq.
"""
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import socketio

from conftest import ROOT, ProcessGroup, ServerProcess, free_port
from drawing import data_url, drawn_png

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="needs Debian's redis-server (make test installs it)")

FINAL_STATES = ("succeeded", "failed", "cancelled", "interrupted")
LONG_JOB = {"net": "mlp", "epochs": 100, "batch_size": 4, "hidden": 16, "data": "sample"}  # always stopped early
SHORT_JOB = {"net": "mlp", "epochs": 3, "hidden": 16, "data": "sample"}
WAIT_S = 120  # a bound on waiting (a busy 2-core machine), never a measured duration


class RedisServer:
    """A throwaway redis-server: no snapshots, no append-only file, so a restart loses everything."""

    def __init__(self, folder):
        self.port = free_port()
        self.folder = Path(folder)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(self._answers, "redis-server answers")
        return self

    def _answers(self):
        import redis

        try:
            return redis.Redis(port=self.port, socket_connect_timeout=1).ping()
        except redis.RedisError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Worker(ProcessGroup):
    """`python -m webapp worker` in a session of its own (kill -9 takes its pool process too)."""

    def __init__(self, home, redis_url):
        self.home = Path(home)
        self.env = {**os.environ, "NEURONLAB_HOME": str(self.home), "NEURONLAB_REDIS_URL": redis_url,
                    "NEURONLAB_MNIST": "sample", "PYTHONUNBUFFERED": "1"}
        self.proc = None
        self.log = self.home / "worker.log"

    def start(self):
        self.home.mkdir(parents=True, exist_ok=True)
        self.log.write_bytes(b"")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "webapp", "worker", "--loglevel", "INFO"], cwd=ROOT,
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self.proc.poll() is not None or " ready." in self.log.read_text(), "the worker is ready")
        assert self.proc.poll() is None, self.log.read_text()[-3000:]
        return self


def wait_for(check, what, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"waited {timeout} s for: {what}")


class Viewer:
    """A page following one job: `received` is every event as it came (history and live, repeats too);
    `shown` is what job-stream.js would show: each seq once, in order, gaps filled from `history`."""

    def __init__(self, url, job_id):
        self.url, self.job_id = url, job_id
        self.client = socketio.Client(reconnection=False)
        self.received = []
        self.shown = []
        self.filled = 0  # events that came from `history` to fill a gap
        self._applied = 0  # how many of `received` catch_up has applied
        self._lock = threading.Lock()
        self.client.on("job", self._on_job)
        self.client.connect(url, transports=["websocket"], wait_timeout=30)

    def _on_job(self, event):
        if event.get("job") == self.job_id:
            with self._lock:
                self.received.append(event)

    @property
    def last(self):
        return self.shown[-1]["seq"] if self.shown else 0

    def subscribe(self):
        answer = self.client.call("subscribe", {"job": self.job_id, "after": self.last}, timeout=30)
        assert answer.get("ok"), answer
        return answer

    def catch_up(self):
        """Apply what came since the last call, in arrival order, as job-stream.js does."""
        with self._lock:
            pending = self.received[self._applied:]
            self._applied = len(self.received)
        for event in pending:
            self._apply(event)

    def _apply(self, event):
        if event["seq"] <= self.last:
            return  # a repeat
        if event["seq"] > self.last + 1:
            self.fill()
            if event["seq"] <= self.last:
                return
        self.shown.append(event)

    def fill(self):
        while True:
            answer = self.client.call("history", {"job": self.job_id, "after": self.last}, timeout=30)
            assert answer.get("ok"), answer
            for event in answer["events"]:
                if event["seq"] == self.last + 1:
                    self.shown.append(event)
                    self.filled += 1
            if not answer["more"]:
                return

    def finish(self):
        """At the job's end: apply everything, then ask once more (the page does when the stream goes quiet)."""
        self.catch_up()
        self.fill()

    def seqs_received(self):
        with self._lock:
            return {e["seq"] for e in self.received}

    def close(self):
        if self.client.connected:
            self.client.disconnect()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Redis, two web processes on one shared home, and a worker on a home of its own."""
    folder = tmp_path_factory.mktemp("distributed")
    redis_server = RedisServer(folder).start()
    env = {"NEURONLAB_REDIS_URL": redis_server.url, "NEURONLAB_DRAWING_RATE": "0"}
    webs = [ServerProcess(folder / "web-home", env=env) for _ in range(2)]
    threads = [threading.Thread(target=web.start) for web in webs]  # both load TensorFlow at once
    for thread in threads:
        thread.start()
    worker = Worker(folder / "worker-home", redis_server.url).start()
    for thread in threads:
        thread.join()
    for web in webs:
        assert web.proc is not None and web.proc.poll() is None, web.log.read_text()[-3000:]
        wait_for(lambda w=web: ok(requests.get(w.url + "/healthz", timeout=5)), "a web process answers")
    yield {"redis": redis_server, "webs": webs, "worker": worker, "home": folder / "web-home"}
    worker.stop()
    for web in webs:
        web.stop()
    redis_server.stop()
    for log in [web.log for web in webs] + [worker.log]:  # faults are handled, not crashed through
        text = log.read_text()
        assert "Traceback" not in text, text[text.index("Traceback") - 300:][:3000]


def ok(response):
    return response.status_code == 200


def start_job(web, params):
    response = requests.post(web.url + "/api/jobs", json=params, headers=web.teacher_headers(), timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def job(web, job_id):
    return requests.get(f"{web.url}/api/jobs/{job_id}", timeout=30).json()


def wait_final(web, job_id, timeout=WAIT_S):
    return wait_for(lambda: (lambda j: j if j["state"] in FINAL_STATES else None)(job(web, job_id)),
                    f"job {job_id} ends", timeout)


def wait_events(viewer, count, what="events"):
    wait_for(lambda: len(viewer.seqs_received()) >= count, what)


def stored_events(web, job_id):
    return job(web, job_id)["events"]


def model_files(home):
    return sorted(p.name for p in (Path(home) / "models").glob("*.keras"))


def test_a_job_started_through_one_process_reaches_viewers_of_both_in_order(cluster):
    a, b = cluster["webs"]
    job_id = start_job(a, SHORT_JOB)
    viewers = [Viewer(a.url, job_id), Viewer(b.url, job_id)]
    try:
        for viewer in viewers:
            viewer.subscribe()
        final = wait_final(b, job_id)
        assert final["state"] == "succeeded", final
        stored = stored_events(a, job_id)
        assert stored == stored_events(b, job_id)  # one history, shared
        assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
        for viewer in viewers:
            wait_for(lambda v=viewer: stored[-1]["seq"] in v.seqs_received(), "the done event reaches the viewer")
            # Nothing lost on the way: every event came, live or with the subscription (repeats are allowed)...
            assert viewer.seqs_received() == {e["seq"] for e in stored}
            viewer.finish()
            # ...and the page shows each once, in order: the history exactly.
            assert viewer.shown == stored
    finally:
        for viewer in viewers:
            viewer.close()
    # The job says where it ran; the model it trained came back to the web's store, not a shared folder.
    assert final["host"] and final["device"], final
    model = final["model"]
    assert f"{model}.keras" in model_files(cluster["home"])
    assert not list((cluster["worker"].home / "models").glob(f"{model}*"))
    listed = requests.get(b.url + "/api/models", timeout=30).json()["models"]
    assert model in [m["id"] for m in listed]


def test_a_train_page_on_one_process_follows_a_job_started_through_the_other(cluster, open_page):
    a, b = cluster["webs"]
    viewer = open_page(b.url + "/train")
    viewer.wait_for_function("document.querySelector('#optimizer').options.length > 0")
    job_id = start_job(a, SHORT_JOB)
    viewer.wait_for_function(f"document.querySelector('#job-title').textContent.includes('{job_id}') || "
                             "document.querySelector('#job-state').textContent === 'succeeded'", timeout=WAIT_S * 1000)
    viewer.wait_for_function("['succeeded', 'failed', 'cancelled'].includes("
                             "document.querySelector('#job-state').textContent)", timeout=WAIT_S * 1000)
    assert viewer.text_content("#job-state") == "succeeded", viewer.text_content("#job-error")
    assert re.fullmatch(r"Finished: 3 epochs in .+ s", viewer.text_content("#progress-final"))


def test_a_dataset_job_takes_its_drawings_to_a_worker_without_the_web_disk(cluster):
    from test_dataset_jobs import letter_png

    a, b = cluster["webs"]
    labels = ["A", "B", "C"]
    created = requests.post(a.url + "/api/datasets", json={"name": "abc", "labels": labels},
                            headers=a.teacher_headers(), timeout=60)
    assert created.status_code == 201, created.text
    dataset = created.json()["dataset"]
    for index, letter in enumerate(labels * 6):
        web = (a, b)[index % 2]  # drawings through both processes, into the one shared dataset
        added = requests.post(f"{web.url}/api/datasets/{dataset['id']}/drawings", timeout=60,
                              json={"image": data_url(letter_png(letter, index)), "label": letter,
                                    "client": f"browser-{index:04d}"})
        assert added.status_code == 201, added.text
    job_id = start_job(b, {"net": "mlp", "data": dataset["id"], "epochs": 1})
    final = wait_final(a, job_id)
    assert final["state"] == "succeeded", final
    meta = requests.get(f"{a.url}/api/models/{final['model']}", timeout=60).json()
    assert meta["labels"] == labels and meta["dataset"] == dataset["id"]
    assert not list((cluster["home"] / "job-data").glob("*")), "the job's data goes when the job ends"


def test_cancel_through_the_other_process_stops_the_worker(cluster):
    a, b = cluster["webs"]
    job_id = start_job(a, LONG_JOB)
    viewer = Viewer(a.url, job_id)
    try:
        viewer.subscribe()
        wait_for(lambda: any(e["type"] == "batch" for e in list(viewer.received)), "the job trains")
        response = requests.delete(f"{b.url}/api/jobs/{job_id}", headers=b.teacher_headers(), timeout=30)
        assert response.status_code == 202 and response.json()["state"] == "cancelling", response.text
        final = wait_final(a, job_id)
        assert final["state"] == "cancelled", final
        assert final.get("epochs_done", 0) < LONG_JOB["epochs"]
        viewer.finish()
        assert viewer.shown[-1]["type"] == "done" and viewer.shown[-1]["state"] == "cancelled"
        assert [e["seq"] for e in viewer.shown] == list(range(1, len(viewer.shown) + 1))
    finally:
        viewer.close()


def test_a_queued_job_cancelled_never_runs(cluster):
    a, b = cluster["webs"]
    running = start_job(a, LONG_JOB)
    queued = start_job(b, SHORT_JOB)  # one worker, one job at a time: this one waits
    wait_for(lambda: job(a, running)["state"] == "running", "the first job runs")
    assert job(a, queued)["state"] == "queued"
    response = requests.delete(f"{a.url}/api/jobs/{queued}", headers=a.teacher_headers(), timeout=30)
    assert response.status_code == 202 and response.json()["state"] == "cancelled", response.text
    requests.delete(f"{b.url}/api/jobs/{running}", headers=b.teacher_headers(), timeout=30)
    assert wait_final(a, running)["state"] == "cancelled"
    worker_log = cluster["worker"].log
    wait_for(lambda: "cancelled before it started" in worker_log.read_text(), "the worker skips the cancelled job")
    assert [e["type"] for e in stored_events(b, queued)] == ["state", "done"]


def test_a_worker_killed_mid_job_fails_the_job_and_saves_no_model(cluster):
    a, b = cluster["webs"]
    worker = cluster["worker"]
    before = model_files(cluster["home"])
    job_id = start_job(b, LONG_JOB)
    wait_for(lambda: job(a, job_id).get("epochs_done", 0) >= 1, "the job has trained an epoch")
    worker.kill()
    try:
        final = wait_final(a, job_id, timeout=60)
        assert final["state"] == "failed", final
        assert final["error"].startswith("training worker lost"), final
        events = stored_events(b, job_id)
        assert events[-1]["type"] == "done" and [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert model_files(cluster["home"]) == before  # no partial model
        assert not list((cluster["home"] / "models").glob(".tmp-*"))
    finally:
        worker.start()  # for the tests after this one


def predict(web):
    response = requests.post(web.url + "/api/predict", json={"image": data_url(drawn_png(3))}, timeout=30)
    return response.status_code, response.json()


def test_a_redis_restart_loses_no_event_and_queued_jobs_start_after(cluster):
    a, b = cluster["webs"]
    redis_server = cluster["redis"]
    job_id = start_job(a, LONG_JOB)
    viewers = [Viewer(a.url, job_id), Viewer(b.url, job_id)]
    try:
        for viewer in viewers:
            viewer.subscribe()
        wait_for(lambda: job(a, job_id).get("epochs_done", 0) >= 1, "the job has trained an epoch")
        redis_server.stop()
        try:
            for web in (a, b):  # predictions do not need Redis
                status, answer = predict(web)
                assert status == 200 and answer["digit"] is not None, answer
            response = requests.post(b.url + "/api/jobs", json={"net": "xor", "epochs": 200},
                                     headers=b.teacher_headers(), timeout=30)
            assert response.status_code == 202, response.text
            queued_meanwhile = response.json()["id"]
            time.sleep(3)  # the worker and both web processes notice Redis is gone
        finally:
            redis_server.start()
        for viewer in viewers:  # live events again, through whichever process stores them
            before = max(viewer.seqs_received())
            wait_for(lambda v=viewer, n=before: max(v.seqs_received()) > n + 5, "live events after the restart")
        assert job(b, queued_meanwhile)["state"] == "queued"  # behind the first: one worker
        requests.delete(f"{b.url}/api/jobs/{job_id}", headers=b.teacher_headers(), timeout=30)
        assert wait_final(a, job_id)["state"] == "cancelled"
        later = wait_final(a, queued_meanwhile)
        assert later["state"] == "succeeded", later
        stored = stored_events(a, job_id)
        assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
        for viewer in viewers:
            viewer.finish()
            assert viewer.shown == stored  # a history with no gap
    finally:
        for viewer in viewers:
            viewer.close()


def test_viewers_of_a_killed_web_process_resume_on_the_other(cluster):
    a, b = cluster["webs"]
    job_id = start_job(b, {**SHORT_JOB, "epochs": 6})
    viewer = Viewer(a.url, job_id)
    try:
        viewer.subscribe()
        wait_for(lambda: job(b, job_id).get("epochs_done", 0) >= 1, "the job has trained an epoch")
        viewer.catch_up()
        a.kill()  # the web process and its inference workers, as a crash would
        wait_for(lambda: not viewer.client.connected, "the viewer notices")
        last = viewer.last
        assert last > 0
        viewer.client = socketio.Client(reconnection=False)  # as the page reconnects, here to the other
        viewer.client.on("job", viewer._on_job)
        viewer.client.connect(b.url, transports=["websocket"], wait_timeout=30)
        answer = viewer.subscribe()  # from its last seq
        assert answer["job"]["last_seq"] >= last
        final = wait_final(b, job_id)
        assert final["state"] == "succeeded", final
        wait_for(lambda: final["last_seq"] in viewer.seqs_received(), "the done event reaches the viewer")
        viewer.finish()
        assert viewer.shown == stored_events(b, job_id)
    finally:
        viewer.close()


def test_several_web_processes_without_redis_are_refused(tmp_path):
    env = {**os.environ, "NEURONLAB_HOME": str(tmp_path), "NEURONLAB_REDIS_URL": ""}
    result = subprocess.run([sys.executable, "-m", "webapp", "serve", "--workers", "2", "--port", str(free_port())],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "NEURONLAB_REDIS_URL" in result.stderr, result.stderr


def test_an_unreachable_redis_is_named_at_start(tmp_path):
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    env = {**os.environ, "NEURONLAB_HOME": str(tmp_path), "NEURONLAB_REDIS_URL": url}
    for command in (["serve", "--port", str(free_port())], ["worker"]):
        result = subprocess.run([sys.executable, "-m", "webapp", *command], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stderr
        assert url in result.stderr and "refused" in result.stderr.lower(), result.stderr


def test_history_answers_bad_input_with_a_4xx(cluster):
    _, b = cluster["webs"]
    client = socketio.Client(reconnection=False)
    client.connect(b.url, transports=["websocket"], wait_timeout=30)
    try:
        for payload in (None, "job", {"job": 5}, {"job": "x", "after": -1}, {"job": "x", "after": True},
                        {"job": "x", "after": 2**64}):
            answer = client.call("history", payload, timeout=30)
            assert answer["status"] == 400 and answer["error"], (payload, answer)
        answer = client.call("history", {"job": "nosuchjob", "after": 0}, timeout=30)
        assert answer["status"] == 404, answer
    finally:
        client.disconnect()
