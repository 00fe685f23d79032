"""A damaged job database against a real server: it starts, moves the file aside under a name it logs and
shows on /train (teacher and viewers), and starts a fresh history."""
import os
import sqlite3

import pytest
import requests

from conftest import TOKEN

TEACHER = {"Authorization": f"Bearer {TOKEN}"}
XOR_JOB = {"net": "xor", "hidden": 2, "seed": 9, "epochs": 200}


def a_real_history(path, jobs=40, events=120):
    """A WAL-mode SQLite file big enough that cutting it in half cuts through its tables."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, net TEXT)")
    db.execute("CREATE TABLE events (job TEXT, seq INTEGER, body TEXT, PRIMARY KEY (job, seq))")
    for j in range(jobs):
        db.execute("INSERT INTO jobs VALUES (?, 'mlp')", (f"job{j}",))
        db.executemany("INSERT INTO events VALUES (?, ?, ?)", [(f"job{j}", s, "x" * 80) for s in range(events)])
    db.commit()
    db.close()


def moved_aside(home):
    return sorted(p.name for p in home.iterdir() if p.name.startswith("jobs.sqlite3.corrupt-"))


@pytest.mark.parametrize("damage", ["random bytes", "truncated"])
def test_a_damaged_job_database_is_moved_aside_and_a_fresh_history_starts(start_server, tmp_path, damage):
    home = tmp_path / "home"
    home.mkdir()
    database = home / "jobs.sqlite3"
    if damage == "random bytes":
        database.write_bytes(os.urandom(4096))
        (home / "jobs.sqlite3-wal").write_bytes(os.urandom(1000))
    else:
        a_real_history(database)
        database.write_bytes(database.read_bytes()[: database.stat().st_size // 2])
    damaged = database.read_bytes()

    server = start_server(env={"NEURONLAB_TRUST_LOCALHOST": "0"}, home=home)

    names = [n for n in moved_aside(home) if not n.endswith(("-wal", "-shm"))]
    assert len(names) == 1, moved_aside(home)
    assert (home / names[0]).read_bytes() == damaged  # nothing lost: the old file is kept as it was
    if damage == "random bytes":
        assert (home / f"{names[0]}-wal").is_file()  # its -wal went with it
    assert names[0] in server.log.read_text()  # the log names the file

    listing = requests.get(server.url + "/api/jobs", timeout=30).json()
    assert listing["jobs"] == [] and names[0] in listing["notice"], listing
    job = requests.post(server.url + "/api/jobs", json=XOR_JOB, headers=TEACHER, timeout=30)
    assert job.status_code == 202, job.text
    assert [j["id"] for j in requests.get(server.url + "/api/jobs", timeout=30).json()["jobs"]] == [job.json()["id"]]

    # The next start finds a healthy history: no notice, nothing else moved.
    server.stop()
    again = start_server(env={"NEURONLAB_TRUST_LOCALHOST": "0"}, home=home)
    listing = requests.get(again.url + "/api/jobs", timeout=30).json()
    assert listing["notice"] is None and [j["id"] for j in listing["jobs"]] == [job.json()["id"]]
    assert [n for n in moved_aside(home) if not n.endswith(("-wal", "-shm"))] == names


def test_train_page_shows_teacher_and_viewers_where_the_old_history_went(start_server, tmp_path, open_page):
    home = tmp_path / "home"
    home.mkdir()
    (home / "jobs.sqlite3").write_bytes(os.urandom(4096))
    server = start_server(env={"NEURONLAB_TRUST_LOCALHOST": "0"}, home=home)
    name = [n for n in moved_aside(home) if not n.endswith(("-wal", "-shm"))][0]
    for size, token in (((320, 568), None), ((1366, 768), TOKEN)):  # a student's phone, the teacher's laptop
        page = open_page(server.url + "/train", size=size, token=token)
        notice = page.locator("#history-notice")
        notice.wait_for(state="visible", timeout=30000)
        assert name in notice.inner_text() and "moved aside" in notice.inner_text()
        assert page.evaluate("document.body.dataset.role") == ("teacher" if token else "viewer")
        assert page.evaluate("document.documentElement.scrollWidth") <= size[0]  # fits a phone
