"""Several web processes share one instance folder (the distributed mode): its SQLite files open and take writes
from all of them at once, and a limit holds across processes, not only within one.

Each round starts its processes together at a barrier, as `make test`'s two web processes start together."""
import multiprocessing

import numpy as np
import pytest

from webapp.core.class_data import DatasetError, DatasetStore
from webapp.web.job_history import JobDatabase

PROCESSES = 3
ROUNDS = 15  # before the fix, about one round in three had a process fail to open the files
# Children forked from a single-threaded server process with these modules loaded: quick to start, and safe
# whatever threads the test process has (a plain fork copies their locks as they are).
PROCESS_KIND = multiprocessing.get_context("forkserver")
PROCESS_KIND.set_forkserver_preload(["numpy", "webapp.core.class_data", "webapp.web.job_history"])


def child(index, barrier, results, target, args):
    barrier.wait(timeout=30)
    try:
        results.put(target(index, *args))
    except Exception as exc:
        results.put(repr(exc))


def run_together(target, *args):
    """What `target(*args)` returned (or the repr of what it raised) in each of PROCESSES processes."""
    barrier = PROCESS_KIND.Barrier(PROCESSES)
    results = PROCESS_KIND.Queue()
    children = [PROCESS_KIND.Process(target=child, args=(index, barrier, results, target, args))
                for index in range(PROCESSES)]
    for process in children:
        process.start()
    outcomes = [results.get(timeout=60) for _ in children]
    for process in children:
        process.join(timeout=30)
    return outcomes


def open_both(index, home):
    datasets = DatasetStore(home)
    history = JobDatabase(home / "jobs.sqlite3")
    return [d["id"] for d in datasets.list()], history.write_problem


def test_processes_opening_a_fresh_instance_folder_at_once_all_open_it_for_writing(tmp_path):
    for round_ in range(ROUNDS):
        home = tmp_path / f"round-{round_}"
        home.mkdir()
        outcomes = run_together(open_both, home)
        assert outcomes == [(["class-digits"], None)] * PROCESSES, f"round {round_}: {outcomes}"


def add_many(index, home, tries, client, limits):
    store = DatasetStore(home, **limits)
    stored = refused = 0
    for n in range(tries):
        try:
            store.add("class-digits", str(n % 10), client or f"browser-{index:04d}", np.zeros((28, 28), np.uint8))
            stored += 1
        except DatasetError as exc:
            assert exc.status == 409, exc
            refused += 1
    return stored, refused


@pytest.mark.parametrize("client, limits", [("the-same-browser", {"max_drawings": 0, "max_per_client": 10}),
                                            (None, {"max_drawings": 25, "max_per_client": 0})],
                         ids=["per browser", "per dataset"])
def test_a_limit_holds_when_several_processes_add_at_once(tmp_path, client, limits):
    DatasetStore(tmp_path)  # the file exists before the race: this test is about the writes
    tries = 20
    limit = max(limits.values())
    outcomes = run_together(add_many, tmp_path, tries, client, limits)
    assert all(isinstance(outcome, tuple) for outcome in outcomes), outcomes
    assert sum(stored for stored, _ in outcomes) == limit, outcomes
    assert sum(refused for _, refused in outcomes) == PROCESSES * tries - limit, outcomes
    assert sum(DatasetStore(tmp_path).counts("class-digits").values()) == limit
