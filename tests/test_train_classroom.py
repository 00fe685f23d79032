"""/train in a classroom: a teacher on a laptop starts jobs, viewers on phones follow them live, with no reload."""
import re
import time

import pytest
import requests

from conftest import LAPTOP, SIZES

JOB_TIMEOUT_MS = 300_000  # other tests' jobs may be queued ahead on the shared server
FINAL = ("succeeded", "failed", "cancelled", "interrupted")
PHONE = (393, 851)


def title_shows(job_id):
    return f"document.querySelector('#job-title').textContent.includes('{job_id}')"


def in_viewport(page, selector):
    """True if the element's whole box is on screen (no scrolling needed)."""
    return page.evaluate("""(selector) => {
        const box = document.querySelector(selector).getBoundingClientRect();
        return box.width > 0 && box.top >= 0 && box.left >= 0
            && box.bottom <= window.innerHeight && box.right <= window.innerWidth;
    }""", selector)


def assert_no_live_figures(page):
    """A job that ended shows no ETA, epoch bar, batch counter or samples/s."""
    assert page.text_content("#progress-eta") == ""
    assert page.text_content("#progress-batch") == ""
    assert page.text_content("#progress-rate") == ""
    assert page.is_hidden("#epoch-progress")
    assert page.is_visible("#progress-final")


def test_a_viewer_on_a_phone_follows_the_job_the_teacher_starts(classroom, open_page):
    viewer = open_page(classroom.url + "/train", size=PHONE)
    assert viewer.get_attribute("body", "data-role") == "viewer"

    # Viewers first: the live card is above the folded, read-only form.
    live_top = viewer.evaluate("document.querySelector('.live-card').getBoundingClientRect().top")
    settings_top = viewer.evaluate("document.querySelector('.train-settings').getBoundingClientRect().top")
    assert live_top < settings_top
    assert in_viewport(viewer, "#progress-run")
    assert viewer.evaluate("document.querySelector('details.train-settings').open") is False
    assert "the teacher starts training" in viewer.text_content("details.train-settings > summary")
    viewer.click("details.train-settings > summary")
    assert viewer.is_visible("#viewer-note") and "Only the teacher" in viewer.text_content("#viewer-note")
    fields = viewer.evaluate("""[...document.querySelectorAll('#job-form input, #job-form select')]
                                .map((el) => [el.id || el.name, el.matches(':disabled')])""")
    assert fields and all(disabled for _, disabled in fields), fields
    assert viewer.locator("#start").count() == 0

    teacher = open_page(classroom.url + "/train", size=LAPTOP, token=classroom.token)
    assert teacher.get_attribute("body", "data-role") == "teacher"
    teacher.wait_for_function("document.querySelector('#optimizer').options.length > 0")
    # At 1366x768 the teacher sees Start and the live progress at once.
    assert in_viewport(teacher, "#start") and in_viewport(teacher, "#progress-run")
    teacher.select_option("#net", "mlp")
    teacher.fill("#epochs", "2")
    teacher.fill("#hidden", "16")
    assert teacher.is_checked("#data-sample")  # this server has only the sample
    viewer.evaluate("window.openedOnce = true")  # gone if the page reloads
    started = time.monotonic()
    with teacher.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as posted:
        teacher.click("#start")
    job_id = posted.value.json()["id"]

    viewer.wait_for_function(title_shows(job_id), timeout=JOB_TIMEOUT_MS)
    print(f"\nthe viewer showed the new job {time.monotonic() - started:.2f} s after the teacher pressed Start")
    assert viewer.evaluate("window.openedOnce === true")  # without reloading
    viewer.wait_for_function("document.querySelector('#job-title').textContent.includes('sample')")  # its params
    assert "MNIST" not in viewer.text_content("#job-title")

    # Progress: the chart fills and both bars move while it runs.
    viewer.wait_for_function("window.trainCharts.loss.pointCount() > 0", timeout=JOB_TIMEOUT_MS)
    viewer.wait_for_function(f"['{FINAL[0]}', '{FINAL[1]}', '{FINAL[2]}'].includes("
                             "document.querySelector('#job-state').textContent)", timeout=JOB_TIMEOUT_MS)
    assert viewer.text_content("#job-state") == "succeeded", viewer.text_content("#job-error")
    assert re.fullmatch(r"Finished: 2 epochs in .+ s", viewer.text_content("#progress-final"))
    assert_no_live_figures(viewer)
    assert viewer.evaluate("document.querySelector('#progress-run').value") == 1
    assert viewer.text_content("#job-data") == "bundled sample"
    model_id = requests.get(f"{classroom.url}/api/jobs/{job_id}", timeout=30).json()["model"]
    name = requests.get(f"{classroom.url}/api/models/{model_id}", timeout=30).json().get("name")
    viewer.wait_for_function(f"document.querySelector('#result-facts').textContent.includes({name or model_id!r})")
    assert model_id in viewer.text_content("#result-facts")  # "saved as “<name>” (<id>)", or the id alone

    # A late viewer replays the finished job's history and ends in the same clean state.
    late = open_page(classroom.url + "/train", size=(320, 568))
    late.wait_for_selector(f"#history tr[data-job='{job_id}'] button")
    late.click(f"#history tr[data-job='{job_id}'] button")
    late.wait_for_function(title_shows(job_id))
    late.wait_for_function("document.querySelector('#progress-final').textContent.startsWith('Finished')",
                           timeout=JOB_TIMEOUT_MS)
    assert_no_live_figures(late)


def test_a_cancelled_job_shows_how_far_it_got_and_nothing_stale(classroom, open_page):
    viewer = open_page(classroom.url + "/train", size=(320, 568))
    viewer.wait_for_function("document.querySelector('#history tbody') !== null")
    response = requests.post(classroom.url + "/api/jobs", json={"net": "mlp", "epochs": 40, "hidden": 16},
                             headers=classroom.teacher_headers(), timeout=30)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    try:
        viewer.wait_for_function(title_shows(job_id), timeout=JOB_TIMEOUT_MS)
        viewer.wait_for_function("document.querySelector('#progress-batch').textContent.includes('batch')",
                                 timeout=JOB_TIMEOUT_MS)
        assert viewer.text_content("#progress-eta").startswith("· ETA")
        # A viewer who opens the page now sees the running job at once.
        newcomer = open_page(classroom.url + "/train", size=PHONE)
        newcomer.wait_for_function(title_shows(job_id))
        newcomer.wait_for_function("document.querySelector('#job-state').textContent === 'running'")
    finally:
        requests.delete(f"{classroom.url}/api/jobs/{job_id}", headers=classroom.teacher_headers(), timeout=30)
    viewer.wait_for_function("document.querySelector('#job-state').textContent === 'cancelled'",
                             timeout=JOB_TIMEOUT_MS)
    final = viewer.text_content("#progress-final")
    assert re.fullmatch(r"Cancelled after \d+ of 40 epochs", final), final
    assert_no_live_figures(viewer)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_train_is_never_wider_than_the_screen(classroom, open_page, size):
    if not requests.get(classroom.url + "/api/jobs", timeout=30).json()["jobs"]:  # the history table must be there
        requests.post(classroom.url + "/api/jobs", json={"net": "xor", "epochs": 50},
                      headers=classroom.teacher_headers(), timeout=30)
    for token in (None, classroom.token):
        page = open_page(classroom.url + "/train", size=size, token=token)
        page.wait_for_selector("#history tbody tr button")
        page.wait_for_function("document.querySelector('#job-title').textContent !== 'No job yet'")
        page.wait_for_timeout(300)  # charts and the history settle
        widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        print(f"\n/train {'teacher' if token else 'viewer'} {size[0]}x{size[1]}: page {widths[0]} px, screen {widths[1]} px")
        assert widths[0] <= widths[1], widths
        # Nothing (the top bar, say) covers the Watch button: a tap at its centre reaches it.
        assert page.evaluate("""() => {  // in one step: the history may be redrawn at any moment
            const button = document.querySelector('#history tbody tr button');
            button.scrollIntoView({ block: 'start' });  // where a sticky top bar would cover it
            const box = button.getBoundingClientRect();
            return document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2) === button;
        }""")


def test_a_viewer_can_work_the_page_with_the_keyboard(classroom, open_page):
    if not requests.get(classroom.url + "/api/jobs", timeout=30).json()["jobs"]:
        requests.post(classroom.url + "/api/jobs", json={"net": "xor", "epochs": 50},
                      headers=classroom.teacher_headers(), timeout=30)
    page = open_page(classroom.url + "/train", size=PHONE)
    page.wait_for_selector("#history tbody tr button")

    def tab_to(selector, limit=60):
        for _ in range(limit):
            page.keyboard.press("Tab")
            focused, outline = page.evaluate(f"""[document.activeElement.matches({selector!r}),
                                                   getComputedStyle(document.activeElement).outlineStyle]""")
            if focused:
                assert outline != "none", f"{selector} shows no focus"
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("details.train-settings > summary")
    page.keyboard.press("Enter")
    assert page.evaluate("document.querySelector('details.train-settings').open")
    tab_to("#history tbody tr:last-child button")
    job_id = page.get_attribute("#history tbody tr:last-child", "data-job")
    label = page.get_attribute("#history tbody tr:last-child button", "aria-label")
    assert label and job_id in label
    page.keyboard.press("Space")
    page.wait_for_function(title_shows(job_id))
