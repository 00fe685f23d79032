"""Take the curves home: a job's metrics.csv, its TensorBoard event files, and the XOR study's table."""
import csv
import glob
import io
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import requests

from tests.conftest import ROOT, wait_for_job

DONE_TIMEOUT = 240  # jobs from other tests share the server's queue
# A small real job: a cosine schedule, so its epochs carry the learning rate (a CSVLogger column, a TensorBoard scalar).
JOB = {"net": "mlp", "epochs": 3, "batch_size": 64, "hidden": 32, "data": "sample", "lr_schedule": "cosine"}


@pytest.fixture(scope="module")
def finished_job(server):
    response = requests.post(f"{server.url}/api/jobs", json=JOB, headers=server.teacher_headers(), timeout=30)
    assert response.status_code == 202, response.text
    job = wait_for_job(server, response.json()["id"], timeout=DONE_TIMEOUT)
    assert job["state"] == "succeeded", job
    job["epoch_events"] = [e for e in job["events"] if e["type"] == "epoch"]
    assert [e["epoch"] for e in job["epoch_events"]] == [1, 2, 3]
    return job


def metrics_csv(server, job_id):
    response = requests.get(f"{server.url}/api/jobs/{job_id}/metrics.csv", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    return response.content


def test_metrics_csv_is_what_csvlogger_writes_for_the_jobs_epochs(server, finished_job, tmp_path):
    body = metrics_csv(server, finished_job["id"])
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert list(rows[0]) == ["epoch", "accuracy", "learning_rate", "loss", "val_accuracy", "val_loss"]
    assert len(rows) == len(finished_job["epoch_events"]) == JOB["epochs"]
    for row, event in zip(rows, finished_job["epoch_events"]):
        assert int(row["epoch"]) == event["epoch"] - 1  # CSVLogger counts epochs from 0
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
            assert float(row[key]) == event["logs"][key], (key, row, event)  # exact: the same float, written out
    rates = [float(row["learning_rate"]) for row in rows]
    assert rates == sorted(rates, reverse=True) and rates[0] > rates[-1]  # the cosine schedule, decaying

    # Byte for byte the file Keras's own CSVLogger writes when fit hands it the same logs.
    import keras

    path = tmp_path / "keras.csv"
    logger = keras.callbacks.CSVLogger(str(path))
    logger.on_train_begin()
    for event in finished_job["epoch_events"]:
        logger.on_epoch_end(event["epoch"] - 1, dict(event["logs"]))
    logger.on_train_end()
    assert body == path.read_bytes()


def read_scalars(folder):
    """{tag: {step: value}} of every scalar summary in the event files under `folder`, and the other tags."""
    import tensorflow as tf

    scalars, other = {}, set()
    files = glob.glob(os.path.join(folder, "events.out.tfevents.*"))
    assert files, f"no event files in {folder}"
    for path in files:
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    scalars.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
                else:
                    other.add(value.tag)
    return scalars, other


def test_tensorboard_event_files_hold_the_jobs_epochs(server, finished_job):
    running = next(e for e in finished_job["events"] if e["type"] == "state" and "tensorboard" in e)
    assert running["tensorboard"] == {"on": True}
    folder = server.home / "tensorboard" / finished_job["id"]
    train, graphs = read_scalars(folder / "train")
    validation, _ = read_scalars(folder / "validation")
    assert "keras" in graphs  # the model's graph, for TensorBoard's Graphs tab
    for event in finished_job["epoch_events"]:
        step, logs = event["epoch"] - 1, event["logs"]
        # TensorBoard keeps float32: the event's float64 is that float32, widened
        assert train["epoch_loss"][step] == np.float32(logs["loss"])
        assert train["epoch_accuracy"][step] == np.float32(logs["accuracy"])
        assert train["epoch_learning_rate"][step] == np.float32(logs["learning_rate"])
        assert validation["epoch_loss"][step] == np.float32(logs["val_loss"])
        assert validation["epoch_accuracy"][step] == np.float32(logs["val_accuracy"])
    assert sorted(train["epoch_loss"]) == [0, 1, 2]
    assert not any(tag.startswith("batch_") for tag in train)  # per-batch scalars cost time: epochs only


NO_TENSORBOARD = textwrap.dedent("""
    import json, sys
    sys.modules["tensorboard"] = None  # as if it were not installed: import tensorboard raises ImportError
    from webapp.core.modelstore import ModelStore
    from webapp.core.job_progress import EventStream
    from webapp.core.training import parse_spec, run_job
    events = []
    spec = parse_spec({"net": "mlp", "epochs": 1, "hidden": 16, "data": "sample"})
    run_job(spec, EventStream("no-tb", events.append), lambda: False,
            ModelStore(sys.argv[1] + "/models", shipped=[]), tensorboard_dir=sys.argv[1] + "/tensorboard/no-tb")
    print(json.dumps([e for e in events if e["type"] != "batch"]))
""")


def test_without_tensorboard_the_job_trains_and_says_why(tmp_path):
    output = subprocess.run([sys.executable, "-c", NO_TENSORBOARD, str(tmp_path)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                                                         "PYTHONPATH": str(ROOT)})
    assert output.returncode == 0, output.stderr[-3000:]
    events = json.loads(output.stdout.strip().splitlines()[-1])
    running = next(e for e in events if e["type"] == "state" and "tensorboard" in e)
    assert running["tensorboard"]["on"] is False
    assert "tensorboard package is not installed" in running["tensorboard"]["why"]
    assert events[-1]["type"] == "done" and events[-1]["state"] == "succeeded", events[-1]
    assert not (tmp_path / "tensorboard").exists()


def test_metrics_csv_of_an_unknown_job_is_404(server):
    for job_id in ("nosuchjob", "%ED%A0%80", "x" * 300):
        response = requests.get(f"{server.url}/api/jobs/{job_id}/metrics.csv", timeout=30)
        assert response.status_code == 404, (job_id, response.text)
        assert "error" in response.json()


# -- the XOR study ----------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_study(server):
    deadline = time.monotonic() + 120
    while True:  # another test's study may be running on this shared server: 409 until it ends
        response = requests.post(f"{server.url}/api/xor/study", json={"sizes": [2, 4], "seeds": 30, "epochs": 400},
                                 headers=server.teacher_headers(), timeout=30)
        if response.status_code != 409 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert response.status_code == 202, response.text
    study_id = response.json()["id"]
    while time.monotonic() < deadline:
        study = requests.get(f"{server.url}/api/xor/study/{study_id}", timeout=30).json()
        if study["state"] != "running":
            assert study["state"] == "done", study
            return study
        time.sleep(0.2)
    raise AssertionError("the study did not finish")


def test_study_csv_and_json_rows_match_the_study(server, finished_study):
    url = f"{server.url}/api/xor/study/{finished_study['id']}"
    as_csv = requests.get(url, params={"format": "csv"}, timeout=30)
    as_json = requests.get(url, params={"format": "json"}, timeout=30)
    for response, kind in ((as_csv, "text/csv"), (as_json, "application/json")):
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith(kind)
        assert response.headers["Content-Disposition"].startswith("attachment")
    csv_rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    json_rows = as_json.json()["rows"]
    results = finished_study["results"]
    assert [int(r["hidden"]) for r in csv_rows] == [r["hidden"] for r in json_rows] == [2, 4]
    for csv_row, json_row in zip(csv_rows, json_rows):
        result = results[str(json_row["hidden"])]
        assert json_row["success_rate"] == float(csv_row["success_rate"]) == result["success_rate"]
        assert json_row["ci95"] == [float(csv_row["ci95_low"]), float(csv_row["ci95_high"])] == result["ci95"]
        assert json_row["runs"] == int(csv_row["runs"]) == result["runs"] == 30
        assert json_row["successes"] == int(csv_row["successes"]) == result["successes"]
        assert (json_row["first_seed"], json_row["last_seed"]) == (0, 29)
        assert (int(csv_row["first_seed"]), int(csv_row["last_seed"])) == (0, 29)
        assert json_row["successful_seeds"] == result["successful_seeds"]
        assert [int(s) for s in csv_row["successful_seeds"].split()] == result["successful_seeds"]
        assert int(csv_row["epochs"]) == json_row["epochs"] == 400


def test_study_download_refuses_unknown_studies_and_formats(server, finished_study):
    unknown = requests.get(f"{server.url}/api/xor/study/nosuchstudy", params={"format": "csv"}, timeout=30)
    assert unknown.status_code == 404 and "error" in unknown.json()
    for fmt in ("xml", "", "CSV"):
        response = requests.get(f"{server.url}/api/xor/study/{finished_study['id']}", params={"format": fmt},
                                timeout=30)
        assert response.status_code == 400, (fmt, response.text)
        assert response.json()["field"] == "format"


# -- the pages --------------------------------------------------------------------

def test_train_page_downloads_the_shown_jobs_metrics(server, finished_job, open_page):
    page = open_page(server.url + "/train")
    button = page.locator(f"#history tr[data-job='{finished_job['id']}'] button")
    button.click()  # other tests' jobs may be newer: watch ours
    page.wait_for_function(f"document.querySelector('#job-title').textContent.includes('{finished_job['id']}')")
    page.wait_for_function("document.querySelector('#job-state').textContent === 'succeeded'")
    with page.expect_download() as download_info:
        page.click("#metrics-link")
    download = download_info.value
    assert download.suggested_filename == f"mlp-job-{finished_job['id']}-metrics.csv"
    with open(download.path(), "rb") as f:
        assert f.read() == metrics_csv(server, finished_job["id"])
    assert page.text_content("#job-tensorboard") == "on"
    model = next(e for e in finished_job["events"] if e["type"] == "done")["result"]["model"]
    assert page.get_attribute("#download-model", "href") == f"/api/models/{model}/download?format=keras"


def test_xor_page_links_the_finished_study(server, finished_study, open_page):
    page = open_page(server.url + "/xor")
    page.wait_for_selector("#xor-study-download:not([hidden])")
    study_id = page.evaluate("new URL(document.querySelector('#xor-study-csv').href).pathname.split('/').pop()")
    with page.expect_download() as download_info:
        page.click("#xor-study-csv")
    with open(download_info.value.path(), "rb") as f:
        body = f.read()
    expected = requests.get(f"{server.url}/api/xor/study/{study_id}", params={"format": "csv"}, timeout=30).content
    assert body == expected and body.startswith(b"hidden,")
