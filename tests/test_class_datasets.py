"""The class's datasets on a real server: a dataset's life (create, add over REST and Socket.IO, count, relabel,
delete, clear, export, import), collection rounds, the live broadcasts to watching pages, who may do what, the
limits, and clear 4xx answers for bad input. One server for the module, as on a LAN (no localhost trust); each
test plays its people from loopback addresses of their own, so that their rate buckets are their own."""
import base64
import io
import json
import time
import zipfile

import numpy as np
import pytest
import requests

from conftest import ServerProcess, fill
from drawing import data_url, drawn_png
from loopback import connect_from, session_from
from webapp.core.labelled_data import MAX_LABELS, read_npz

PER_CLIENT = 6
MAX_DRAWINGS = 15
PER_MINUTE = 120  # a burst of 30 at once, then 2 a second


@pytest.fixture(scope="module")
def lan(tmp_path_factory):
    env = {"NEURONLAB_TRUST_LOCALHOST": "0", "NEURONLAB_MAX_DRAWINGS_PER_CLIENT": str(PER_CLIENT),
           "NEURONLAB_MAX_DATASET_DRAWINGS": str(MAX_DRAWINGS), "NEURONLAB_DRAWING_RATE": str(PER_MINUTE)}
    process = ServerProcess(tmp_path_factory.mktemp("class-data"), env=env).start()
    yield process
    process.stop()
    log = process.log.read_text()
    assert "Traceback" not in log, log[log.index("Traceback") - 300:][:3000]


@pytest.fixture
def clients(lan):
    opened = []

    def connect(address, token=None):
        client = connect_from(address, lan.url, auth={"token": token} if token else None)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        if client.connected:
            client.disconnect()


class Person:
    """Someone in the class: requests from a loopback address of their own, with the teacher's token or not."""

    def __init__(self, server, address, teacher=False):
        self.url = server.url
        self.session = session_from(address)
        if teacher:
            self.session.headers["Authorization"] = f"Bearer {server.token}"

    def __getattr__(self, method):  # get, post, patch, delete
        return lambda path, **kw: getattr(self.session, method)(self.url + path, timeout=60, **kw)


def drawing(digit=3, seed=0):
    return data_url(drawn_png(digit, seed=seed))


def make_dataset(teacher, name, labels):
    answer = teacher.post("/api/datasets", json={"name": name, "labels": labels})
    assert answer.status_code == 201, answer.text
    return answer.json()["dataset"]


def add(person, dataset_id, label, client="student-one", seed=0, **extra):
    return person.post(f"/api/datasets/{dataset_id}/drawings",
                       json={"image": drawing(seed % 10, seed), "label": label, "client": client, **extra})


def wait_for(events, predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in list(events) if predicate(e)]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no such event among {list(events)[-5:]}")


def test_class_digits_is_built_in_and_cannot_be_deleted(lan):
    teacher = Person(lan, "127.0.0.61", teacher=True)
    datasets = teacher.get("/api/datasets").json()["datasets"]
    digits = next(d for d in datasets if d["id"] == "class-digits")
    assert digits["builtin"] is True and digits["labels"] == [str(d) for d in range(10)]
    assert set(digits["counts"]) == set(digits["labels"]) and digits["total"] == sum(digits["counts"].values())
    refused = teacher.delete("/api/datasets/class-digits")
    assert refused.status_code == 400 and "cleared" in refused.json()["error"]


def test_only_the_teacher_creates_and_label_lists_follow_the_rules(lan):
    teacher, viewer = Person(lan, "127.0.0.62", teacher=True), Person(lan, "127.0.0.63")
    body = {"name": "shapes", "labels": ["circle", "square"]}
    assert viewer.post("/api/datasets", json=body).status_code == 401
    wrong = requests.post(lan.url + "/api/datasets", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and "error" in wrong.json()
    for labels, words in [(["A", "A"], "different"), ([], "non-empty"), (["A", ""], "non-empty"),
                          ([f"L{i}" for i in range(MAX_LABELS + 1)], str(MAX_LABELS)), ("ABC", "list"),
                          ([1, 2], "string"), (["A\ud800"], "printable"), (None, "list")]:
        answer = teacher.post("/api/datasets", json={"name": "bad", "labels": labels})
        assert answer.status_code == 400 and words in answer.json()["error"], (labels, answer.text)
    for name in (None, "", "  ", "x" * 81, "two\nlines", "\udc80", 5):
        answer = teacher.post("/api/datasets", data=json.dumps({"name": name, "labels": ["A"]}),
                              headers={"Content-Type": "application/json"})
        assert answer.status_code == 400 and "name" in answer.json()["error"], (name, answer.text)
    first, second = make_dataset(teacher, "Shapes!", ["circle", "square"]), make_dataset(teacher, "shapes", ["x"])
    assert (first["id"], second["id"]) == ("shapes", "shapes-2")
    assert make_dataset(teacher, "MNIST", ["A"])["id"] != "mnist"  # a job's data names stay unambiguous
    assert len(make_dataset(teacher, "all", [f"L{i}" for i in range(MAX_LABELS)])["labels"]) == MAX_LABELS


def test_a_datasets_life(lan, clients):
    teacher, viewer = Person(lan, "127.0.0.64", teacher=True), Person(lan, "127.0.0.65")
    letters = make_dataset(teacher, "letters", ["A", "B", "C"])
    dataset_id = letters["id"]
    assert letters["counts"] == {"A": 0, "B": 0, "C": 0} and letters["total"] == 0

    png = drawn_png(7, seed=4)
    added = viewer.post(f"/api/datasets/{dataset_id}/drawings",
                        json={"image": data_url(png), "label": "C", "client": "browser-1234", "guess": "7"})
    assert added.status_code == 201, added.text
    body = added.json()
    first = body["drawing"]
    assert (first["label"], first["client"], first["guess"], first["dataset"]) == ("C", "browser-1234", "7",
                                                                                     dataset_id)
    assert body["counts"] == {"A": 0, "B": 0, "C": 1} and body["total"] == 1 and body["next_label"] is None
    assert len(first["input"]) == 28 and all(len(row) == 28 for row in first["input"])
    assert max(max(row) for row in first["input"]) == 1.0  # the worker's 28x28 input, ink = 1
    image = viewer.get(first["image"])
    assert image.status_code == 200 and image.content == png and image.headers["Content-Type"] == "image/png"

    student = clients("127.0.0.66")
    ack = student.call("add_drawing", {"dataset": dataset_id, "image": drawing(1, 2), "label": "A",
                                       "client": "browser-5678"}, timeout=30)
    assert ack["drawing"]["label"] == "A" and ack["counts"] == {"A": 1, "B": 0, "C": 1}
    assert add(viewer, dataset_id, "A", client="browser-1234", seed=5).status_code == 201

    shown = viewer.get(f"/api/datasets/{dataset_id}").json()["dataset"]
    assert shown["counts"] == {"A": 2, "B": 0, "C": 1} and shown["total"] == 3
    assert shown["by_client"] == {"browser-1234": 2, "browser-5678": 1}

    listed = viewer.get(f"/api/datasets/{dataset_id}/drawings").json()["drawings"]
    assert [d["label"] for d in listed] == ["C", "A", "A"]  # oldest first
    assert [d["id"] for d in viewer.get(f"/api/datasets/{dataset_id}/drawings",
                                        params={"after": first["id"]}).json()["drawings"]] == \
        [d["id"] for d in listed[1:]]
    assert len(viewer.get(f"/api/datasets/{dataset_id}/drawings", params={"label": "A"}).json()["drawings"]) == 2
    assert len(viewer.get(f"/api/datasets/{dataset_id}/drawings", params={"limit": 1}).json()["drawings"]) == 1
    for query in ({"after": "-1"}, {"after": "x"}, {"limit": "0"}, {"limit": "501"}, {"label": "Z"}):
        assert viewer.get(f"/api/datasets/{dataset_id}/drawings", params=query).status_code == 400, query

    # the teacher corrects: viewers may not
    path = f"/api/datasets/{dataset_id}/drawings/{first['id']}"
    assert viewer.patch(path, json={"label": "B"}).status_code == 401
    assert teacher.patch(path, json={"label": "Q"}).status_code == 400
    changed = teacher.patch(path, json={"label": "B"})
    assert changed.status_code == 200 and changed.json()["drawing"]["label"] == "B"
    assert changed.json()["counts"] == {"A": 2, "B": 1, "C": 0}
    assert viewer.delete(path).status_code == 401
    deleted = teacher.delete(path)
    assert deleted.json() == {"deleted": first["id"], "counts": {"A": 2, "B": 0, "C": 0}}
    for gone in (path, path + ".png"):
        missing = viewer.get(gone)
        assert missing.status_code == 404 and "error" in missing.json()
    assert teacher.delete(path).status_code == 404
    assert teacher.patch(f"/api/datasets/{dataset_id}/drawings/nope", json={"label": "A"}).status_code == 404

    assert viewer.delete(f"/api/datasets/{dataset_id}/drawings").status_code == 401
    cleared = teacher.delete(f"/api/datasets/{dataset_id}/drawings")
    assert cleared.json() == {"cleared": dataset_id, "counts": {"A": 0, "B": 0, "C": 0}}
    assert viewer.get(f"/api/datasets/{dataset_id}/drawings").json()["drawings"] == []
    assert not list((lan.home / "datasets" / dataset_id).glob("*.png")), "clearing removes the canvas images"

    assert viewer.delete(f"/api/datasets/{dataset_id}").status_code == 401
    assert teacher.delete(f"/api/datasets/{dataset_id}").json() == {"deleted": dataset_id}
    for method, path in [("get", f"/api/datasets/{dataset_id}"), ("delete", f"/api/datasets/{dataset_id}"),
                         ("get", f"/api/datasets/{dataset_id}/drawings"),
                         ("get", f"/api/datasets/{dataset_id}/export")]:
        answer = getattr(teacher, method)(path)
        assert answer.status_code == 404 and "no dataset" in answer.json()["error"], (method, path)
    assert add(viewer, dataset_id, "A", seed=1).status_code == 404


def test_drawings_persist_in_the_instance_folder(lan):
    teacher = Person(lan, "127.0.0.67", teacher=True)
    dataset = make_dataset(teacher, "kept", ["yes", "no"])
    drawn = add(teacher, dataset["id"], "yes", seed=3).json()["drawing"]
    import sqlite3

    db = sqlite3.connect(lan.home / "datasets.sqlite3")
    blob, label = db.execute("SELECT input, label FROM drawings WHERE id = ?", (drawn["id"],)).fetchone()
    db.close()
    assert label == "yes" and isinstance(blob, bytes) and len(blob) == 784
    assert np.allclose(np.frombuffer(blob, np.uint8).reshape(28, 28) / 255, drawn["input"], atol=0.0006)
    assert (lan.home / "datasets" / dataset["id"] / f"{drawn['id']}.png").is_file()
    assert not list((lan.home / "datasets" / dataset["id"]).glob(".tmp-*"))


def test_watching_pages_hear_each_change_and_everyone_hears_new_datasets(lan, clients):
    teacher = Person(lan, "127.0.0.68", teacher=True)
    dataset_id = make_dataset(teacher, "watched", ["up", "down"])["id"]
    watcher, bystander, student = clients("127.0.0.69"), clients("127.0.0.70"), clients("127.0.0.71")
    heard, elsewhere = [], []
    for name in ("drawing_added", "drawing_changed", "drawing_deleted", "dataset_cleared", "datasets_changed"):
        watcher.on(name, lambda data, name=name: heard.append((name, data)))
        bystander.on(name, lambda data, name=name: elsewhere.append((name, data)))
    ack = watcher.call("watch_dataset", {"dataset": dataset_id}, timeout=30)
    assert ack["dataset"]["id"] == dataset_id and ack["dataset"]["counts"] == {"up": 0, "down": 0}
    assert watcher.call("watch_dataset", {"dataset": "no-such"}, timeout=30)["status"] == 404

    added = student.call("add_drawing", {"dataset": dataset_id, "image": drawing(4), "label": "up",
                                         "client": "student-xyz1"}, timeout=30)
    name, event = wait_for(heard, lambda e: e[0] == "drawing_added")
    assert event == {"dataset": dataset_id, "drawing": added["drawing"], "counts": {"up": 1, "down": 0}, "total": 1}
    assert len(json.dumps(event)) < 12_000, "one drawing's JSON, not the dataset's"

    drawing_id = added["drawing"]["id"]
    teacher.patch(f"/api/datasets/{dataset_id}/drawings/{drawing_id}", json={"label": "down"})
    _, changed = wait_for(heard, lambda e: e[0] == "drawing_changed")
    assert changed["drawing"]["label"] == "down" and changed["counts"] == {"up": 0, "down": 1}
    teacher.delete(f"/api/datasets/{dataset_id}/drawings/{drawing_id}")
    _, deleted = wait_for(heard, lambda e: e[0] == "drawing_deleted")
    assert deleted == {"dataset": dataset_id, "id": drawing_id, "counts": {"up": 0, "down": 0}}
    teacher.delete(f"/api/datasets/{dataset_id}/drawings")
    _, cleared = wait_for(heard, lambda e: e[0] == "dataset_cleared")
    assert cleared == {"dataset": dataset_id, "counts": {"up": 0, "down": 0}}

    make_dataset(teacher, "another", ["x"])
    wait_for(elsewhere, lambda e: e[0] == "datasets_changed")
    assert not [e for e in elsewhere if e[0] != "datasets_changed"], "only watchers hear a dataset's drawings"

    assert watcher.call("unwatch_dataset", {"dataset": dataset_id}, timeout=30) == {"ok": True}
    before = len(heard)
    student.call("add_drawing", {"dataset": dataset_id, "image": drawing(5), "label": "up",
                                 "client": "student-xyz1"}, timeout=30)
    time.sleep(1)  # no event must come: give it the time one would take
    assert [e for e in heard[before:] if e[0] == "drawing_added"] == []


def test_bad_drawings_get_clear_4xx_answers(lan, clients):
    viewer = Person(lan, "127.0.0.72")
    path = "/api/datasets/class-digits/drawings"
    good = {"image": drawing(2), "label": "2", "client": "browser-bad1"}
    blank = io.BytesIO()
    from PIL import Image

    Image.new("RGBA", (140, 140), (0, 0, 0, 0)).save(blank, "PNG")
    cases = [
        ({**good, "label": "22"}, "label"), ({**good, "label": 2}, "label"), ({**good, "label": None}, "label"),
        ({**good, "label": "\ud800"}, "label"),
        ({**good, "client": "short"}, "client"), ({**good, "client": "x" * 65}, "client"),
        ({**good, "client": "bad id!!"}, "client"), ({**good, "client": 12345678}, "client"),
        ({**good, "client": "\ud800" * 10}, "client"), ({k: v for k, v in good.items() if k != "client"}, "client"),
        ({**good, "guess": "\ud800"}, "guess"), ({**good, "guess": ["8"]}, "guess"), ({**good, "guess": "x" * 17}, "guess"),
        ({**good, "image": "data:image/png;base64,@@@"}, "base64"), ({**good, "image": 5}, "image"),
        ({**good, "image": "data:image/png;base64," + base64.b64encode(b"not an image").decode()}, "image"),
        ({**good, "image": data_url(blank.getvalue())}, "nothing drawn"),
        ({k: v for k, v in good.items() if k != "image"}, "image"),
    ]
    for body, words in cases:
        answer = viewer.post(path, data=json.dumps(body), headers={"Content-Type": "application/json"})
        assert answer.status_code == 400 and words in answer.json()["error"], (body.get("label"), answer.text)
    for raw in ("[" * 10_000 + "]" * 10_000, "not json", "[1, 2]", '"text"'):
        answer = viewer.post(path, data=raw, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400 and "error" in answer.json()
    huge = viewer.post(path, json={**good, "image": "A" * 6_000_000})
    assert huge.status_code == 413 and "error" in huge.json()
    student = clients("127.0.0.73")
    for data in (None, [], "x", {"dataset": 5}, {**good, "dataset": "class-digits", "label": "x"},
                 {**good, "dataset": "\ud800"}):
        ack = student.call("add_drawing", data, timeout=30)
        assert ack["status"] in (400, 404) and ack["error"], (data, ack)
    total = viewer.get("/api/datasets/class-digits").json()["dataset"]["total"]
    assert viewer.post(path, json=good).status_code == 201  # and the good one still goes in
    assert viewer.get("/api/datasets/class-digits").json()["dataset"]["total"] == total + 1


def npz_member(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_export_gives_the_mnist_layout_and_the_teacher_imports_it(lan, tmp_path):
    teacher, viewer = Person(lan, "127.0.0.74", teacher=True), Person(lan, "127.0.0.75")
    dataset = make_dataset(teacher, "to export", ["one", "two", "three"])
    for seed, label in enumerate(["two", "one", "three", "two"]):
        assert add(teacher, dataset["id"], label, client=f"client-{seed:04d}", seed=seed).status_code == 201
    exported = viewer.get(f"/api/datasets/{dataset['id']}/export")
    assert exported.status_code == 200
    assert exported.headers["Content-Disposition"] == f'attachment; filename="{dataset["id"]}.npz"'
    x, y, labels = read_npz(exported.content)
    assert labels == ["one", "two", "three"] and x.shape == (4, 28, 28) and x.dtype == np.uint8
    assert y.tolist() == [1, 0, 2, 1]
    listed = viewer.get(f"/api/datasets/{dataset['id']}/drawings").json()["drawings"]
    assert np.allclose(x / 255, [d["input"] for d in listed], atol=0.0006)

    files = {"file": ("class letters.npz", exported.content)}
    assert viewer.post("/api/datasets/import", files=files).status_code == 401
    imported = teacher.post("/api/datasets/import", files=files, data={"name": "Imported letters"})
    assert imported.status_code == 201, imported.text
    copy = imported.json()["dataset"]
    assert copy["name"] == "Imported letters" and copy["labels"] == labels
    assert copy["counts"] == {"one": 1, "two": 2, "three": 1}
    again = viewer.get(f"/api/datasets/{copy['id']}/export")
    assert np.array_equal(read_npz(again.content)[0], x)
    no_image = viewer.get(f"/api/datasets/{copy['id']}/drawings").json()["drawings"][0]
    assert no_image["image"] is None and no_image["client"]
    assert teacher.post("/api/datasets/import", files={"file": ("named.npz", exported.content)}).json()[
        "dataset"]["name"] == "named"

    def npz(**arrays):
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    bomb = io.BytesIO()  # 100 KB that would unpack to 78 MB: refused from the zip's directory, before numpy reads it
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("x_train.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "|u1", "fortran_order": False,
                                                          "shape": (100_000, 28, 28)})
            for _ in range(100):
                member.write(bytes(1000 * 784))
        archive.writestr("y_train.npy", npz_member(np.zeros(100_000, np.uint8)))
    for content, words in [
        (b"not a zip", "npz"), (npz(images=np.zeros((2, 28, 28), np.uint8)), "x_train"),
        (npz(x_train=np.zeros((2, 28, 28), np.float32), y_train=np.zeros(2, np.uint8)), "uint8"),
        (npz(x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.array([0, 9]), labels=np.array(["a", "b"])),
         "label numbers"),
        (npz(x_train=np.zeros((1, 28, 28), np.uint8), y_train=np.zeros(1, np.uint8), labels=np.array(["a", "a"])),
         "different"),
        (npz(x_train=np.zeros((MAX_DRAWINGS + 1, 28, 28), np.uint8), y_train=np.zeros(MAX_DRAWINGS + 1, np.uint8)),
         f"{MAX_DRAWINGS}"),
        (bomb.getvalue(), "too large"),
    ]:
        answer = teacher.post("/api/datasets/import", files={"file": ("x.npz", content)})
        assert answer.status_code == 400 and words in answer.json()["error"], (words, answer.text)
    assert teacher.post("/api/datasets/import", json={"file": "x"}).status_code == 415
    assert teacher.post("/api/datasets/import", files={"other": ("x.npz", b"")}).status_code == 400


def test_a_collection_round_asks_for_the_least_drawn_labels_and_everyone_hears_it(lan, clients):
    teacher, viewer = Person(lan, "127.0.0.76", teacher=True), Person(lan, "127.0.0.77")
    dataset_id = make_dataset(teacher, "round letters", ["A", "B", "C"])["id"]
    student = clients("127.0.0.78")
    rounds = []
    student.on("round", rounds.append)
    assert viewer.post("/api/round", json={"dataset": dataset_id}).status_code == 401
    assert teacher.post("/api/round", json={"dataset": "no-such"}).status_code == 404
    assert teacher.post("/api/round", json={"dataset": 5}).status_code == 400

    started = teacher.post("/api/round", json={"dataset": dataset_id}).json()["round"]
    assert started["dataset"] == dataset_id and started["labels"] == ["A", "B", "C"]
    assert started["counts"] == {"A": 0, "B": 0, "C": 0} and started["name"] == "round letters"
    assert wait_for(rounds, lambda e: e["round"] is not None)["round"] == started
    assert viewer.get("/api/round").json()["round"] == started

    drawn, label = [], "B"
    for seed in range(5):  # the student draws what the page asks for: the labels take turns, fewest first
        answer = add(viewer, dataset_id, label, client="round-student", seed=seed).json()
        drawn.append(label)
        label = answer["next_label"]
    assert drawn == ["B", "C", "A", "B", "C"]
    assert label == "A"
    heard = wait_for(rounds, lambda e: e["round"] and e["round"]["counts"] == {"A": 1, "B": 2, "C": 2})
    assert heard["round"]["dataset"] == dataset_id
    assert add(viewer, "class-digits", "1", client="round-student").json()["next_label"] is None

    assert viewer.delete("/api/round").status_code == 401
    assert teacher.delete("/api/round").json() == {"round": None}
    wait_for(rounds, lambda e: e["round"] is None)
    assert viewer.get("/api/round").json() == {"round": None}
    assert add(viewer, dataset_id, "A", client="round-student", seed=7).json()["next_label"] is None

    teacher.post("/api/round", json={"dataset": dataset_id})
    teacher.delete(f"/api/datasets/{dataset_id}")  # deleting the round's dataset ends the round
    assert viewer.get("/api/round").json() == {"round": None}


def test_limits_per_browser_per_dataset_and_per_address(lan):
    teacher = Person(lan, "127.0.0.79", teacher=True)
    dataset_id = make_dataset(teacher, "small", ["a", "b"])["id"]
    student = Person(lan, "127.0.0.80")
    for seed in range(PER_CLIENT):
        assert add(student, dataset_id, "a", client="one-browser", seed=seed).status_code == 201
    refused = add(student, dataset_id, "a", client="one-browser", seed=9)
    assert refused.status_code == 409 and "thank you" in refused.json()["error"]
    for n in range(MAX_DRAWINGS - PER_CLIENT):
        assert add(student, dataset_id, "b", client=f"browser-{n:04d}", seed=n).status_code == 201
    full = add(student, dataset_id, "b", client="a-new-browser", seed=1)
    assert full.status_code == 409 and f"{MAX_DRAWINGS}" in full.json()["error"]

    greedy = Person(lan, "127.0.0.81")
    answers = [greedy.post("/api/datasets/no-such/drawings", json={}).status_code for _ in range(PER_MINUTE // 2)]
    assert 429 in answers and set(answers) == {404, 429}, answers
    last = greedy.post("/api/datasets/no-such/drawings", json={})
    assert last.status_code == 429 and last.json()["retry_after"] > 0 and "a minute" in last.json()["error"]
    assert Person(lan, "127.0.0.82").post("/api/datasets/no-such/drawings", json={}).status_code == 404


def test_a_job_on_an_unknown_dataset_is_a_400_on_data(lan):
    teacher = Person(lan, "127.0.0.83", teacher=True)
    for data in ("no-such-dataset", "Bad Id", 5):
        answer = teacher.post("/api/jobs", json={"net": "cnn", "data": data, "epochs": 1})
        assert answer.status_code == 400 and answer.json()["field"] == "data", answer.text


def test_a_full_disk_answers_507_on_dataset_writes_and_leaves_nothing_half_written(tmp_path):
    """A real full disk (a small tmpfs filled to its last page; root ignores permissions, so nothing less will do)."""
    import subprocess

    home = tmp_path / "small-disk"
    home.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(home)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount here ({mounted.stderr.strip()}): a full disk needs a real one")
    server = ServerProcess(home, env={"NEURONLAB_TRUST_LOCALHOST": "0"})
    server.log = tmp_path / "server.log"  # outside the full disk
    try:
        server.start()
        teacher = Person(server, "127.0.0.84", teacher=True)
        dataset_id = make_dataset(teacher, "before", ["A", "B"])["id"]
        assert add(teacher, dataset_id, "A", client="full-disk-1").status_code == 201
        fill(home)
        for answer in (teacher.post("/api/datasets", json={"name": "after", "labels": ["A"]}),
                       add(teacher, dataset_id, "B", client="full-disk-1", seed=1)):
            assert answer.status_code == 507, answer.text
            assert "disk is full" in answer.json()["error"] and "/" not in answer.json()["error"]
        assert not list((home / "datasets" / dataset_id).glob(".tmp-*")), "no half-written image"
        assert teacher.get(f"/api/datasets/{dataset_id}").json()["dataset"]["counts"] == {"A": 1, "B": 0}
        assert teacher.post("/api/predict", json={"image": drawing(2)}).status_code == 200
        (home / "filler").unlink()
        assert add(teacher, dataset_id, "B", client="full-disk-1", seed=1).status_code == 201
    finally:
        server.stop()
        subprocess.run(["umount", "-l", str(home)], capture_output=True)
    log = server.log.read_text()
    assert "Traceback" not in log, log[log.index("Traceback") - 300:][:3000]
