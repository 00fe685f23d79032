"""The XOR page in a classroom: a viewer's phone follows the teacher's runs live, a failed run is never saved or
selected by itself (the teacher may keep it, marked failed), steps restart, keyboard use, no sideways scrolling and a
clean console at every size."""
import time

import numpy as np
import pytest
import requests

from tests.conftest import LAPTOP, SIZES, wait_for_job
from tests.test_xor_core import random_weights
from tests.test_xor_web import save_into

FAILING = {"hidden": 1, "seed": 3}  # one ReLU unit can never learn XOR (test_xor_core proves it for any seed)
LEARNING = {"hidden": 2, "seed": 9}  # the shipped model's recipe: learns XOR
PHONE = (393, 851)
RUN_MS = 180_000  # a run: start its process, train, and replay it on the page (~8 s)


def start_job(server, **params):
    response = requests.post(f"{server.url}/api/jobs", json={"net": "xor", **params},
                             headers=server.teacher_headers(), timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def done_result(server, job_id):
    job = wait_for_job(server, job_id)
    assert job["state"] == "succeeded", job
    return next(e for e in job["events"] if e["type"] == "done")["result"]


def keep(server, body, **kwargs):
    return requests.post(f"{server.url}/api/xor/keep", json=body, headers=server.teacher_headers(), timeout=60,
                         **kwargs)


def open_xor(open_page, server, size, token=None):
    page = open_page(server.url + "/xor", size=size, token=token)
    page.wait_for_selector("#xor-steps td[data-element]")
    page.wait_for_function("document.body.dataset.socket === 'connected'")
    return page


def xor_model_ids(server):
    return [m["id"] for m in requests.get(f"{server.url}/api/xor/models", timeout=30).json()["models"]]


def save_listed(server, hidden, model_id):
    """Save an XOR model into the server's folder and wait until the server lists it."""
    save_into(server, random_weights(hidden, np.random.default_rng(hidden)), model_id, seed=hidden)
    deadline = time.monotonic() + 30
    while model_id not in xor_model_ids(server):
        assert time.monotonic() < deadline, f"{model_id} was never listed"
        time.sleep(0.3)


def test_a_viewer_on_a_phone_watches_the_teachers_run_live(classroom, open_page):
    viewer = open_xor(open_page, classroom, PHONE)
    assert viewer.get_attribute("body", "data-role") == "viewer"
    viewer.evaluate("""() => {
        window.stillTheSamePage = true;
        window.epochsSeen = [];
        const heatmap = document.querySelector('#xor-heatmap');
        new MutationObserver(() => window.epochsSeen.push(Number(heatmap.dataset.epoch)))
            .observe(heatmap, { attributes: true, attributeFilter: ['data-epoch'] });
    }""")
    job_id = start_job(classroom, **LEARNING)
    viewer.wait_for_function("document.querySelector('#xor-train-status').dataset.tone === 'good'", timeout=RUN_MS)
    seen = viewer.evaluate("window.epochsSeen")
    assert viewer.evaluate("window.stillTheSamePage") is True  # no reload
    assert seen[-1] == 1000 and len(set(seen)) >= 20 and seen == sorted(seen)  # it played out, epoch by epoch
    assert viewer.inner_text("#xor-epoch").startswith("epoch 1000 of 1000")
    # a run that learned XOR becomes the model of those watching, as before
    model = done_result(classroom, job_id)["model"]
    assert model
    viewer.wait_for_function(f"document.querySelector('#xor-steps').dataset.model === {model!r}")
    assert viewer.input_value("#xor-model") == model


def test_a_failed_run_is_not_saved_nor_selected_and_the_teacher_may_keep_it(classroom, open_page):
    viewer = open_xor(open_page, classroom, PHONE)
    teacher = open_xor(open_page, classroom, LAPTOP, token=classroom.token)
    assert teacher.get_attribute("body", "data-role") == "teacher"
    viewer_choice, teacher_choice = viewer.input_value("#xor-model"), teacher.input_value("#xor-model")
    models_before = xor_model_ids(classroom)

    job_id = start_job(classroom, **FAILING)
    for page in (viewer, teacher):
        page.wait_for_function("document.querySelector('#xor-train-status').dataset.tone === 'bad'", timeout=RUN_MS)
        status = page.inner_text("#xor-train-status")
        assert "failed" in status and "not saved" in status
        assert "seed 3" in page.inner_text("#xor-shown") and page.locator("#xor-predictions tr.wrong").count() > 0
    result = done_result(classroom, job_id)
    assert result["model"] is None and result["success"] is False and result["weights"]
    assert xor_model_ids(classroom) == models_before
    assert viewer.input_value("#xor-model") == viewer_choice and teacher.input_value("#xor-model") == teacher_choice
    assert viewer.is_hidden("#xor-keep") and teacher.is_visible("#xor-keep")

    teacher.click("#xor-keep")
    kept = f"xor-{job_id}-failed"
    teacher.wait_for_function(f"document.querySelector('#xor-steps').dataset.model === {kept!r}")
    assert "Kept as" in teacher.inner_text("#xor-train-status") and teacher.is_hidden("#xor-keep")
    label = teacher.locator(f"#xor-model option[value='{kept}']").inner_text()
    assert "seed 3" in label and "failed" in label
    # the viewer's picker lists it, marked failed, but the viewer's choice stays
    viewer.wait_for_selector(f"#xor-model option[value='{kept}']", state="attached")
    assert "failed" in viewer.locator(f"#xor-model option[value='{kept}']").inner_text()
    assert viewer.input_value("#xor-model") == viewer_choice


def test_keep_saves_a_failed_run_marked_failed_and_refuses_everything_else(classroom):
    url = f"{classroom.url}/api/xor/keep"
    assert requests.post(url, json={"job": "x"}, timeout=30).status_code == 401  # viewers may not
    for body in ({}, {"job": 5}, {"job": ""}, [1], "job"):
        response = keep(classroom, body)
        assert response.status_code == 400 and response.json()["error"], body
    assert requests.post(url, data="{", headers={**classroom.teacher_headers(), "Content-Type": "application/json"},
                         timeout=30).status_code == 400
    missing = keep(classroom, {"job": "no-such-job"})
    assert missing.status_code == 404 and missing.json()["error"]

    # still running, another network, learned XOR: 409 each
    long_run = start_job(classroom, hidden=2, seed=0, epochs=10000)
    digits = requests.post(f"{classroom.url}/api/jobs", json={"net": "mlp", "epochs": 1, "hidden": 16},
                           headers=classroom.teacher_headers(), timeout=30).json()["id"]
    assert keep(classroom, {"job": long_run}).status_code == 409
    not_xor = keep(classroom, {"job": digits})
    assert not_xor.status_code == 409 and "mlp" in not_xor.json()["error"]
    for job_id in (digits, long_run):
        requests.delete(f"{classroom.url}/api/jobs/{job_id}", headers=classroom.teacher_headers(), timeout=30)
    wait_for_job(classroom, long_run)
    learned = start_job(classroom, **LEARNING)
    learned_result = done_result(classroom, learned)
    refused = keep(classroom, {"job": learned})
    assert refused.status_code == 409 and refused.json()["model"] == learned_result["model"]

    failed = start_job(classroom, **FAILING)
    result = done_result(classroom, failed)
    saved = keep(classroom, {"job": failed})
    assert saved.status_code == 201, saved.text
    model = saved.json()["model"]
    assert model["success"] is False and model["name"] == "XOR \u00b7 1 hidden \u00b7 seed 3 \u00b7 failed"
    assert model["network"] == "xor" and model["hidden"] == 1 and model["kept_from_job"] == failed
    again = keep(classroom, {"job": failed})
    assert again.status_code == 200 and again.json()["model"]["id"] == model["id"]  # kept once
    listed = {m["id"]: m for m in requests.get(f"{classroom.url}/api/xor/models", timeout=30).json()["models"]}
    assert listed[model["id"]]["success"] is False and "failed" in listed[model["id"]]["name"]
    breakdown = requests.get(f"{classroom.url}/api/xor/breakdown", params={"x": "all", "model": model["id"]},
                             timeout=30).json()
    np.testing.assert_allclose(breakdown["weights"]["W1"], result["weights"]["W1"], atol=0)
    np.testing.assert_allclose(breakdown["output"], [p["output"] for p in result["predictions"]], atol=1e-6)


def test_steps_restart_and_the_show_all_control_says_what_it_does(classroom, open_page):
    save_listed(classroom, 3, "xor-steps-h3")
    page = open_xor(open_page, classroom, PHONE)
    label = "document.querySelector('#xor-step-label').textContent"
    assert page.inner_text("#xor-step-label") == "step 1 of 4"
    for _ in range(3):
        page.click("#xor-next")
    assert page.inner_text("#xor-step-label") == "step 4 of 4"
    page.click(".xor-input[data-x='1,0']")
    page.wait_for_function(f"{label} === 'step 1 of 4'")
    assert page.get_attribute(".xor-input[data-x='1,0']", "aria-pressed") == "true"
    page.click("#xor-next")
    page.click("#xor-next")
    assert page.inner_text("#xor-step-label") == "step 3 of 4"
    page.select_option("#xor-model", "xor-steps-h3")  # another model: from step 1 too
    page.wait_for_function("document.querySelector('#xor-steps').dataset.model === 'xor-steps-h3'")
    assert page.inner_text("#xor-step-label") == "step 1 of 4"

    assert page.inner_text("#xor-all-steps") == "Show all steps"
    page.click("#xor-all-steps")
    assert page.locator(".xor-step").count() == 4 and page.inner_text("#xor-all-steps") == "Show one step at a time"
    page.click(".xor-input[data-x='0,0']")  # a new input starts again: one step, the first
    page.wait_for_function(f"{label} === 'step 1 of 4'")
    assert page.locator(".xor-step").count() == 1 and page.inner_text("#xor-all-steps") == "Show all steps"


def test_matrix_numbers_work_from_the_keyboard_and_every_control_is_labelled(classroom, open_page):
    page = open_xor(open_page, classroom, LAPTOP)
    page.focus("#xor-all-steps")
    for _ in range(10):  # Tab onward to the first number of the result
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.matches('td[data-element]')"):
            break
    else:
        pytest.fail("no matrix number could be reached with Tab")
    first = page.evaluate("document.activeElement.dataset.element")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"  # focus shows
    page.keyboard.press("Enter")
    assert page.get_attribute("#xor-explain", "data-element") == first
    assert page.locator("#xor-steps td.chosen").get_attribute("data-element") == first
    page.keyboard.press("Tab")
    second = page.evaluate("document.activeElement.dataset.element")
    assert second and second != first
    scrolled = page.evaluate("window.scrollY")
    page.keyboard.press(" ")
    assert page.get_attribute("#xor-explain", "data-element") == second
    assert page.evaluate("window.scrollY") == scrolled  # Space picks the number, not scrolls

    unnamed = page.evaluate("""() => [...document.querySelectorAll(
            'main button, main input, main select, main [tabindex="0"], main canvas')]
        .filter((el) => el.offsetParent !== null)
        .filter((el) => {
            const byLabel = el.labels && [...el.labels].some((l) => l.textContent.trim());
            const byRef = el.getAttribute('aria-labelledby');
            return !(byLabel || byRef || (el.getAttribute('aria-label') || '').trim()
                     || (el.tagName === 'BUTTON' && el.textContent.trim()));
        }).map((el) => el.outerHTML.slice(0, 80))""")
    assert unnamed == []


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_no_sideways_scrolling_and_a_clean_console(classroom, open_page, size):
    save_listed(classroom, 16, "xor-wide-h16")
    width, height = size
    page = open_page("about:blank", size=size)  # listen from the start of /xor's load
    problems = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))
    page.goto(classroom.url + "/xor")
    page.wait_for_selector("#xor-steps td[data-element]")
    page.wait_for_function("document.body.dataset.socket === 'connected'")
    widest = "document.documentElement.scrollWidth"
    assert page.evaluate(widest) <= width
    # the widest content there is: a 16-unit model, all four inputs, every step
    page.select_option("#xor-model", "xor-wide-h16")
    page.click(".xor-input[data-x='all']")
    page.wait_for_function("document.querySelector('#xor-steps').dataset.model === 'xor-wide-h16' "
                           "&& document.querySelector('#xor-steps').dataset.input === 'all'")
    page.click("#xor-all-steps")
    assert page.locator(".xor-step").count() == 4
    assert page.evaluate(widest) <= width, f"/xor is {page.evaluate(widest)} px wide at {width} px"
    for box in ("#xor-study-table", "#xor-predictions", "#xor-heatmap", "#xor-loss"):
        right = page.evaluate(f"document.querySelector('{box}').closest('.card').getBoundingClientRect().right")
        assert right <= width, box
    if size == LAPTOP:  # the decision boundary and the loss chart are on screen together
        page.locator("#xor-heatmap").scroll_into_view_if_needed()
        for canvas in ("#xor-heatmap", "#xor-loss"):
            top, bottom = page.evaluate(f"(() => {{ const r = document.querySelector('{canvas}')"
                                        ".getBoundingClientRect(); return [r.top, r.bottom]; })()")
            assert 0 <= top and bottom <= height, (canvas, top, bottom)
    assert problems == []
