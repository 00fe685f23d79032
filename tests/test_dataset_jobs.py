"""Training jobs on the class's datasets through POST /api/jobs, on a real server: a letters dataset trains a model
with the dataset's labels, class-digits fine-tunes the class's active model, and a dataset with too few drawings
of a label is a 400 that says how many are needed. One server for the module; jobs are one epoch on the sample."""
import io

import pytest
import requests
from PIL import Image, ImageDraw, ImageFont

from conftest import ServerProcess, wait_for_job
from drawing import data_url, drawn_png


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    process = ServerProcess(tmp_path_factory.mktemp("dataset-jobs"),
                            env={"NEURONLAB_TRUST_LOCALHOST": "0", "NEURONLAB_DRAWING_RATE": "0"}).start()
    yield process
    process.stop()
    log = process.log.read_text()
    assert "Traceback" not in log, log[log.index("Traceback") - 300:][:3000]


def letter_png(letter, seed):
    """A letter as a browser canvas would send it: dark ink on white, a little shifted and sized by `seed`."""
    image = Image.new("RGB", (140, 140), "white")
    font = ImageFont.load_default(size=70 + 6 * (seed % 4))
    ImageDraw.Draw(image).text((30 + 5 * (seed % 3), 20 + 4 * (seed % 2)), letter, fill="black", font=font,
                               stroke_width=3, stroke_fill="black")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def post(server, path, **kw):
    return requests.post(server.url + path, headers=server.teacher_headers(), timeout=60, **kw)


def add(server, dataset_id, label, png, client="job-test-browser"):
    answer = requests.post(f"{server.url}/api/datasets/{dataset_id}/drawings", timeout=60,
                           json={"image": data_url(png), "label": label, "client": client})
    assert answer.status_code == 201, answer.text


def finished(server, job_id):
    return wait_for_job(server, job_id, timeout=600)


def test_too_few_drawings_per_label_is_a_400_saying_how_many(lab_server):
    dataset = post(lab_server, "/api/datasets", json={"name": "too few", "labels": ["X", "O"]}).json()["dataset"]
    for seed in range(5):
        add(lab_server, dataset["id"], "X", letter_png("X", seed))
    for seed in range(2):
        add(lab_server, dataset["id"], "O", letter_png("O", seed))
    answer = post(lab_server, "/api/jobs", json={"net": "mlp", "data": dataset["id"], "epochs": 1})
    assert answer.status_code == 400 and answer.json()["field"] == "data"
    assert "at least 5" in answer.json()["error"] and "'O' has 2" in answer.json()["error"]
    assert not list((lab_server.home / "job-data").glob("*")), "a refused job leaves no data behind"
    unknown = post(lab_server, "/api/jobs", json={"net": "mlp", "data": "no-such-dataset"})
    assert unknown.status_code == 400 and "no dataset" in unknown.json()["error"]
    viewer = requests.post(lab_server.url + "/api/jobs", json={"net": "mlp", "data": dataset["id"]}, timeout=60)
    assert viewer.status_code == 401


def test_a_letters_job_trains_a_model_that_answers_with_the_datasets_labels(lab_server):
    labels = ["A", "B", "C"]
    dataset = post(lab_server, "/api/datasets", json={"name": "abc", "labels": labels}).json()["dataset"]
    for letter in labels:
        for seed in range(6):
            add(lab_server, dataset["id"], letter, letter_png(letter, seed), client=f"browser-{seed:04d}")
    started = post(lab_server, "/api/jobs", json={"net": "mlp", "data": dataset["id"], "epochs": 1})
    assert started.status_code == 202, started.text
    job = finished(lab_server, started.json()["id"])
    assert job["state"] == "succeeded", job.get("error")
    result = next(e for e in job["events"] if e["type"] == "done")["result"]
    per_label = result["per_label"]
    assert per_label["labels"] == labels and per_label["before"] is None
    assert all(per_label["held_out"][label] >= 1 for label in labels) and set(per_label["after"]) == set(labels)
    assert 0.0 <= result["held_out_accuracy"] <= 1.0

    queued = next(e for e in job["events"] if e.get("state") == "queued")
    for params in (job["params"], queued["params"]):  # what clients see of the spec: never the server's path
        assert params["data"] == dataset["id"] and params["dataset"]["labels"] == labels
        assert "npz" not in params["dataset"] and params["dataset"]["base_model"] is None
    assert not list((lab_server.home / "job-data").glob("*")), "the job's data goes when the job ends"

    meta = requests.get(f"{lab_server.url}/api/models/{result['model']}", timeout=60).json()
    assert meta["labels"] == labels and meta["dataset"] == dataset["id"]
    answer = requests.post(lab_server.url + "/api/predict", timeout=60,
                           json={"image": data_url(letter_png("B", 7)), "model": result["model"]}).json()
    assert answer["labels"] == labels and answer["label"] in labels and len(answer["probabilities"]) == 3


@pytest.fixture(scope="module")
def fine_tuning(lab_server):
    """A finished class-digits job (5 drawings of each digit), and the active mlp it started from."""
    for digit in range(10):
        for seed in range(5):
            add(lab_server, "class-digits", str(digit), drawn_png(digit, seed=100 + seed), client=f"pupil-{seed:04d}")
    active = requests.get(lab_server.url + "/api/models", timeout=60).json()["active"]["mlp"]
    started = post(lab_server, "/api/jobs", json={"net": "mlp", "data": "class-digits", "epochs": 1})
    assert started.status_code == 202, started.text
    return finished(lab_server, started.json()["id"]), active


def test_class_digits_fine_tunes_the_class_s_active_model(lab_server, fine_tuning):
    job, active = fine_tuning
    assert job["state"] == "succeeded", job.get("error")
    assert job["params"]["dataset"]["base_model"] == active
    result = next(e for e in job["events"] if e["type"] == "done")["result"]
    assert result["per_label"]["labels"] == [str(d) for d in range(10)]
    assert set(result["per_label"]["before"]) == set(result["per_label"]["after"]) == set(result["per_label"]["labels"])
    meta = requests.get(f"{lab_server.url}/api/models/{result['model']}", timeout=60).json()
    assert meta.get("base_model") == active and not meta.get("labels"), "a fine-tuned digit model stays a digit model"


def test_train_page_shows_each_label_before_and_after_fine_tuning(lab_server, fine_tuning, open_page):
    """A student's phone opening /train replays the latest job: a dataset job's card has a row per label, with
    the held-out drawings and the old and new model's accuracy on them."""
    job, _ = fine_tuning
    per_label = next(e for e in job["events"] if e["type"] == "done")["result"]["per_label"]
    page = open_page(lab_server.url + "/train", size=(393, 851))
    page.wait_for_selector("#per-label:not([hidden])", timeout=60_000)
    table = page.locator("#per-label-table")
    header = table.locator("tr").first.inner_text()
    assert "Before" in header and "After" in header, header
    rows = table.locator("tr").all_inner_texts()[1:]
    assert [row.split()[0] for row in rows] == per_label["labels"]
    first = rows[0].split()
    assert first[1] == str(per_label["held_out"]["0"])
    assert page.evaluate("document.documentElement.scrollWidth") <= 393, "nothing wider than the phone"
