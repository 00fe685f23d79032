"""The XOR lab over a real server: the breakdown API for every hidden size, bad
input, a real training job and the study over Socket.IO, and the page in Chromium."""
import threading

import numpy as np
import pytest
import requests

from webapp.core import xor
from webapp.core.modelstore import ModelStore
from tests.test_xor_core import numpy_forward, random_weights


def save_into(server, weights, model_id, **meta):
    store = ModelStore(server.home / "models")
    return store.save(xor.keras_model(weights), {"network": "xor", "hidden": weights["W1"].shape[1], **meta},
                      model_id=model_id)


def test_breakdown_for_every_hidden_size(server):
    rng = np.random.default_rng(42)
    saved = {hidden: random_weights(hidden, rng) for hidden in range(1, 17)}
    for hidden, weights in saved.items():
        save_into(server, weights, f"xor-test-h{hidden}")
    for hidden, weights in saved.items():
        answer = requests.get(f"{server.url}/api/xor/breakdown",
                              params={"x": "all", "model": f"xor-test-h{hidden}"}, timeout=30).json()
        assert answer["hidden"] == hidden
        np.testing.assert_allclose(answer["weights"]["W1"], weights["W1"], atol=1e-7)
        np.testing.assert_allclose(answer["output"], numpy_forward(weights, xor.XOR_INPUTS), atol=1e-9)
        np.testing.assert_allclose(answer["keras_output"], answer["output"], atol=1e-6)
        assert len(answer["steps"][0]["elements"]) == 4 * hidden

    one = requests.post(f"{server.url}/api/xor/breakdown", json={"input": [0.5, 1], "model": "xor-test-h3"},
                        timeout=30).json()
    assert one["input"] == [[0.5, 1.0]] and len(one["output"]) == 1
    assert one["output"][0] == pytest.approx(numpy_forward(saved[3], [[0.5, 1]])[0], abs=1e-9)
    assert "\u00d7" in one["steps"][0]["elements"][0]["text"]


def test_shipped_model_is_the_default(server):
    answer = requests.get(f"{server.url}/api/xor/breakdown?x=0,1", timeout=30).json()
    assert answer["model"] == "xor" and answer["model_info"]["source"] == "shipped"
    assert answer["output"][0] > 0.5 and all(p["correct"] for p in answer["predictions"])
    assert abs(answer["keras_output"][0] - answer["output"][0]) < 1e-6
    for key in ("W1", "b1", "W2", "b2"):
        assert key in answer["weights"]
    assert [s["formula"].split(" =")[0] for s in answer["steps"]] == ["L1", "X2", "L2", "output"]
    assert answer["steps"][0]["operands"] == ["X", "W1", "b1"] and answer["steps"][1]["apply"] == "ReLU"


def test_bad_input_gets_a_4xx(server):
    import keras

    not_xor = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)])
    ModelStore(server.home / "models").save(not_xor, {"network": "other"}, model_id="not-xor")
    url = f"{server.url}/api/xor/breakdown"
    cases = [
        ({"input": [0]}, 400), ({"input": [0, 1, 2]}, 400), ({"input": ["a", 1]}, 400), ({"input": [True, 1]}, 400),
        ({"input": [1e308, 0]}, 400), ({"input": "some"}, 400), ({"input": [0, 1], "model": "nope"}, 404),
        ({"input": [0, 1], "model": "../etc"}, 404), ({"input": [0, 1], "model": 5}, 400),
        ({"input": [0, 1], "model": "not-xor"}, 400),
    ]
    for body, status in cases:
        response = requests.post(url, json=body, timeout=30)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]
    assert requests.post(url, data="nope", headers={"Content-Type": "application/json"}, timeout=30).status_code == 400
    for query in ("x=1", "x=a,b", "x=nan,1", "x=0,1&model=not-xor"):
        assert requests.get(f"{url}?{query}", timeout=30).status_code == 400, query
    for body in ({"seeds": 0}, {"sizes": [0]}, {"sizes": "2"}, {"epochs": 1.5}, [1]):
        assert requests.post(f"{server.url}/api/xor/study", json=body, timeout=30).status_code == 400, body


def wait_for(events, predicate, timeout=120):
    done = threading.Event()
    deadline = threading.Timer(timeout, done.set)
    deadline.start()
    while not done.is_set():
        if any(predicate(e) for e in list(events)):
            deadline.cancel()
            return next(e for e in events if predicate(e))
        done.wait(0.1)
    raise AssertionError(f"timed out; last events: {events[-3:]}")


def test_training_job_streams_and_its_model_breaks_down(server, sio):
    events = []
    sio.on("job", events.append)
    job = requests.post(f"{server.url}/api/jobs", json={"net": "xor", "hidden": 4, "seed": 7, "epochs": 1000},
                        timeout=30).json()
    sio.call("subscribe", {"job": job["id"]}, timeout=30)
    done = wait_for(events, lambda e: e["type"] == "done" and e["job"] == job["id"], timeout=180)
    assert done["state"] == "succeeded", done
    result = done["result"]
    assert result["success"] and result["hidden"] == 4
    # Each event once, none missing. (Not their order: the python-socketio client runs each message's handler in a
    # thread of its own, so a burst can reach `events` swapped; see test_hostile_sockets.py.)
    wait_for(events, lambda _: len(events) >= done["seq"], timeout=30)
    assert sorted(e["seq"] for e in events) == list(range(1, done["seq"] + 1))
    epochs = [e for e in events if e["type"] == "epoch"]
    assert max(e["epoch"] for e in epochs) == 1000 and any("boundary" in e for e in epochs)

    answer = requests.get(f"{server.url}/api/xor/breakdown", params={"x": "0,1", "model": result["model"]},
                          timeout=30).json()
    np.testing.assert_allclose(answer["weights"]["W1"], result["weights"]["W1"], atol=1e-7)
    assert answer["output"][0] == pytest.approx(result["predictions"][1]["output"], abs=1e-6)


def test_study_streams_progress_and_matches_the_core(server, sio):
    events = []
    sio.on("xor_study", events.append)
    started = requests.post(f"{server.url}/api/xor/study", json={"sizes": [3, 2], "seeds": 30}, timeout=30)
    assert started.status_code == 202
    study_id = started.json()["id"]
    done = wait_for(events, lambda e: e["id"] == study_id and e["type"] == "done", timeout=120)
    mine = [e for e in events if e["id"] == study_id]
    assert any(e["type"] == "progress" for e in mine)
    expected = xor.study((2, 3), seeds=30)["results"]
    for size in (2, 3):
        assert done["results"][str(size)]["successes"] == expected[size]["successes"]
        assert done["results"][str(size)]["ci95"] == expected[size]["ci95"]
    latest = requests.get(f"{server.url}/api/xor/study", timeout=30).json()["study"]
    assert latest["id"] == study_id and latest["state"] == "done"
    assert requests.get(f"{server.url}/api/xor/study/{study_id}", timeout=30).json()["state"] == "done"


def test_viewers_may_look_but_not_train(start_server, page):
    viewer_server = start_server(env={"NEURONLAB_TRUST_LOCALHOST": "0"})
    assert requests.get(f"{viewer_server.url}/api/xor/breakdown?x=0,1", timeout=30).status_code == 200
    # before any study: an empty answer, not a 404 (the page asks for it on opening); unknown ids stay 404
    none_yet = requests.get(f"{viewer_server.url}/api/xor/study", timeout=30)
    assert none_yet.status_code == 200 and none_yet.json() == {"study": None}
    assert requests.get(f"{viewer_server.url}/api/xor/study/nope", timeout=30).status_code == 404
    assert requests.post(f"{viewer_server.url}/api/xor/study", json={}, timeout=30).status_code == 401
    assert requests.post(f"{viewer_server.url}/api/xor/study", json={"seeds": 5}, timeout=30,
                         headers=viewer_server.teacher_headers()).status_code == 202
    page.goto(viewer_server.url + "/xor")
    page.wait_for_selector("#xor-steps td")
    assert page.is_disabled("#xor-train") and page.is_disabled("#xor-study-run")
    assert page.is_visible("#xor-train-note")


def test_page_trains_and_fills_in(server, page):
    page.goto(server.url + "/xor")
    page.wait_for_selector("#xor-steps td[data-element]")
    assert page.locator("#xor-diagram line").count() == 2 * 2 + 2
    page.fill("#xor-hidden", "2")
    page.fill("#xor-seed", "8")  # a seed whose 2-unit net fails...
    models_before = requests.get(f"{server.url}/api/xor/models", timeout=30).json()["models"]
    chosen_before = page.input_value("#xor-model")
    page.click("#xor-train")
    page.wait_for_selector("#xor-skip:visible", timeout=60_000)
    page.click("#xor-skip")
    page.wait_for_selector("#xor-retry-row:visible", timeout=180_000)
    assert "failed" in page.inner_text("#xor-train-status") and "not saved" in page.inner_text("#xor-train-status")
    assert page.inner_text("#xor-retry") == "Retry with seed 9"
    assert page.is_visible("#xor-keep")  # the teacher may keep it; nothing was saved or selected by itself
    assert page.input_value("#xor-model") == chosen_before
    assert "seed 8" in page.inner_text("#xor-shown") and page.locator("#xor-predictions tr.wrong").count() > 0
    assert requests.get(f"{server.url}/api/xor/models", timeout=30).json()["models"] == models_before
    page.click("#xor-retry")  # ...and the next one learns
    page.wait_for_function("document.querySelector('#xor-train-status').dataset.tone === 'good'", timeout=180_000)
    assert page.get_attribute("#xor-heatmap", "data-filled") == "true"
    assert page.get_attribute("#xor-heatmap", "data-epoch") == "1000"
    # After the run the page selects the new model (seed 9) and loads its breakdown.
    page.wait_for_function("""() => {
        const picker = document.querySelector('#xor-model');
        const chosen = picker.options[picker.selectedIndex];
        return chosen && chosen.textContent.includes('seed 9') && chosen.value.startsWith('xor-')
            && document.querySelector('#xor-steps').dataset.model === picker.value;
    }""", timeout=60_000)
    model = page.input_value("#xor-model")
    expected = requests.get(f"{server.url}/api/xor/breakdown", params={"x": "0,1", "model": model}, timeout=30).json()
    first = page.locator("#xor-steps td[data-element]").first
    assert first.inner_text() == xor.fmt(expected["steps"][0]["output"][0][0])
    first.click()
    assert page.inner_text("#xor-explain").replace("\n", " ").endswith(expected["steps"][0]["elements"][0]["text"])
    assert page.locator("#xor-steps td.source").count() == 5
    assert page.inner_text("#xor-all-steps") == "Show all steps"
    page.click("#xor-all-steps")
    assert page.locator(".xor-step").count() == 4
    assert page.inner_text("#xor-all-steps") == "Show one step at a time"
    page.click("#xor-all-steps")
    assert page.locator(".xor-step").count() == 1 and page.inner_text("#xor-all-steps") == "Show all steps"
    assert page.locator("#xor-predictions tr.right").count() == 4
