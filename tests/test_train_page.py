"""The /train page in real Chromium: start an XOR job, watch it live, see it finish."""
import time

import requests

DONE_TIMEOUT_MS = 240_000  # jobs from other tests may be queued ahead of this one
FINAL = ("succeeded", "failed", "cancelled", "interrupted")


def wait_until_no_job_runs(server, timeout=240):
    """Other tests share this server: let their jobs end, so the page's "latest job" is ours."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = requests.get(f"{server.url}/api/jobs", timeout=30).json()["jobs"]
        if all(job["state"] in FINAL for job in jobs):
            return
        time.sleep(0.5)
    raise AssertionError("jobs from other tests did not finish")


def test_start_an_xor_job_and_watch_it_finish(server, page):
    page.goto(server.url + "/train")
    assert page.get_attribute("body", "data-role") == "teacher"
    page.wait_for_function("document.querySelector('#optimizer').options.length > 0")
    page.select_option("#net", "xor")
    assert page.input_value("#hidden") == "2" and page.input_value("#learning_rate") == "0.1"  # the tutorial's
    assert page.is_hidden("#augment")  # MNIST-only options are hidden for XOR
    page.fill("#hidden", "6")
    page.fill("#epochs", "400")
    with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as started:
        page.click("#start")
    job_id = started.value.json()["id"]

    # The page may still show an earlier job's state for a moment: wait until it follows ours.
    page.wait_for_function(f"document.querySelector('#job-title').textContent.includes('{job_id}')")
    page.wait_for_function("window.trainCharts.loss.pointCount() > 0", timeout=DONE_TIMEOUT_MS)
    page.wait_for_function(
        "['succeeded', 'failed', 'cancelled'].includes(document.querySelector('#job-state').textContent)",
        timeout=DONE_TIMEOUT_MS)
    assert page.text_content("#job-state") == "succeeded", page.text_content("#job-error")
    assert page.evaluate("window.trainCharts.loss.pointCount()") > 1
    assert page.is_visible("#result")
    assert page.text_content("#test-accuracy").endswith("%")
    assert "xor" in page.text_content("#result-facts")

    page.wait_for_selector(f"#history tr[data-job='{job_id}'] td.state-succeeded")
    job = requests.get(f"{server.url}/api/jobs/{job_id}", timeout=30).json()
    assert job["net"] == "xor" and job["params"]["hidden"] == 6 and job["state"] == "succeeded"


def test_a_late_viewer_sees_the_finished_job_with_its_result(server, page):
    """Opening /train shows the latest job, replayed from its history."""
    wait_until_no_job_runs(server)
    response = requests.post(server.url + "/api/jobs", json={"net": "mlp", "epochs": 1, "hidden": 16,
                                                             "data": "sample"}, timeout=30)
    assert response.status_code == 202
    job_id = response.json()["id"]
    page.goto(server.url + "/train")
    page.wait_for_function(f"document.querySelector('#job-title').textContent.includes('{job_id}')")
    page.wait_for_function("document.querySelector('#job-state').textContent === 'succeeded'",
                           timeout=DONE_TIMEOUT_MS)
    # a finished job's state comes with the job list, its events a moment later: wait for the last one, done
    page.wait_for_function("document.querySelector('#progress-final').textContent !== ''", timeout=DONE_TIMEOUT_MS)
    assert page.text_content("#job-data") == "bundled sample" and page.is_visible("#sample-note")
    assert page.text_content("#progress-final").startswith("Finished: 1 epoch in")
    assert page.locator("#confusion table.confusion tbody tr").count() == 10
    assert page.locator("#gallery figure").count() > 0
    assert page.is_visible("#use-model") and page.is_enabled("#use-model")
    assert page.evaluate("window.trainCharts.accuracy.pointCount()") > 0


def test_the_form_offers_only_the_data_this_server_has(server, page):
    """The test server has only the sample (NEURONLAB_MNIST=sample): the form says so before Start."""
    page.goto(server.url + "/train")
    page.wait_for_function("document.querySelector('#optimizer').options.length > 0")
    page.select_option("#net", "cnn")
    assert page.is_disabled("#data-mnist") and page.is_checked("#data-sample")
    note = page.text_content("#data-note")
    assert page.is_visible("#data-note") and "not available" in note and "NEURONLAB_MNIST=/path/to/mnist.npz" in note
    page.click("#defaults")
    assert page.is_checked("#data-sample")  # the tutorial's defaults keep to what the server has


def test_use_this_model_goes_through_model_actions_and_shows_its_answer(server, page):
    """"Use this model" calls ModelActions.activate (which asks the teacher first when it should) and shows its
    message; where ModelActions is missing it activates directly. The activation is stubbed: other tests share
    this server's active model."""
    wait_until_no_job_runs(server)
    response = requests.post(server.url + "/api/jobs", json={"net": "mlp", "epochs": 1, "hidden": 8}, timeout=30)
    assert response.status_code == 202 and response.json()["id"]
    job_id = response.json()["id"]
    assert requests.get(f"{server.url}/api/jobs/{job_id}", timeout=30).json()["params"]["data"] == "sample"

    page.route("**/static/js/model-actions.js", lambda route: route.fulfill(
        content_type="text/javascript",
        body="window.ModelActions = { activate: async (id) => ({ ok: true, message: `stub activated ${id}` }) };"))
    page.goto(server.url + "/train")
    page.wait_for_function(f"document.querySelector('#job-title').textContent.includes('{job_id}')")
    page.wait_for_function("document.querySelector('#job-state').textContent === 'succeeded'",
                           timeout=DONE_TIMEOUT_MS)
    model_id = requests.get(f"{server.url}/api/jobs/{job_id}", timeout=30).json()["model"]
    page.click("#use-model")
    page.wait_for_function(f"document.querySelector('#use-note').textContent === 'stub activated {model_id}'")

    activated = []
    page.route("**/static/js/model-actions.js", lambda route: route.fulfill(status=404, body=""))
    page.route(f"**/api/models/{model_id}/activate", lambda route: (
        activated.append(route.request.method),
        route.fulfill(content_type="application/json", body='{"active": {}}')))
    page.reload()
    page.wait_for_function("document.querySelector('#job-state').textContent === 'succeeded'",
                           timeout=DONE_TIMEOUT_MS)
    page.click("#use-model")
    page.wait_for_function("document.querySelector('#use-note').textContent.startsWith('The Draw page now predicts')")
    assert activated == ["POST"]
