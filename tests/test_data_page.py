"""The class gallery (/data) in real Chromium: a collection round filled by two students' phones shows up live on
the teacher's laptop; viewers see the gallery without the controls; the teacher relabels and deletes; phones fit."""
import itertools

import requests

from conftest import LAPTOP
from test_draw_page import touch_draw

NAMES = itertools.count(1)


def new_dataset(classroom, labels):
    """A dataset of its own for each test: the classroom server is shared by every test module."""
    response = requests.post(classroom.url + "/api/datasets", headers=classroom.teacher_headers(), timeout=30,
                             json={"name": f"gallery test {next(NAMES)}", "labels": labels})
    assert response.status_code == 201, response.text
    return response.json()["dataset"]


def thumbs(page):
    return page.evaluate("[...document.querySelectorAll('#gallery .thumb')]"
                         ".map((b) => ({label: b.closest('.label-section').dataset.label, client: b.dataset.client}))")


def test_two_students_fill_a_round_and_the_teachers_gallery_shows_it_live(classroom, open_page):
    dataset = new_dataset(classroom, ["1", "7"])  # digits the bench's strokes can draw
    teacher = open_page(f"{classroom.url}/data?dataset={dataset['id']}", size=LAPTOP, token=classroom.token)
    teacher.wait_for_function(f"document.querySelector('#dataset').value === '{dataset['id']}'")
    teacher.wait_for_function("document.querySelectorAll('#gallery .label-section').length === 2")
    students = [open_page(classroom.url + "/", size=size) for size in ((320, 568), (393, 851))]
    for student in students:
        student.wait_for_function("document.querySelectorAll('#model option').length > 0")
        assert student.is_hidden("#round")

    teacher.click("#round-start")
    teacher.wait_for_function("document.querySelector('#round-state').textContent.includes('Collection round')")
    assert teacher.is_visible("#round-end") and teacher.is_hidden("#round-start")

    sent = []
    for n, student in enumerate(students):
        student.wait_for_selector("#round:not([hidden])")  # the round reached the phone live
        label = student.get_attribute("#pad-title", "data-label")
        assert label in ("1", "7") and student.text_content("#pad-title") == f"Draw a {label}"
        touch_draw(student, int(label), seed=n)
        student.click("#round-send")
        student.wait_for_function("document.querySelector('#round-status').textContent.startsWith('Thank you')")
        sent.append((label, student.evaluate("ClientId.get()")))
        # the pad is clean for the next prompt, which the server chose
        assert student.get_attribute("#pad-title", "data-label") in ("1", "7")

    teacher.wait_for_function("document.querySelectorAll('#gallery .thumb').length === 2")
    assert sorted((t["label"], t["client"]) for t in thumbs(teacher)) == sorted(sent)
    assert len({client for _, client in sent}) == 2  # each browser has its own anonymous id
    counts = {li: teacher.text_content(f"#label-counts li[data-label='{li}'] .count-value") for li in ("1", "7")}
    assert sum(int(v) for v in counts.values()) == 2
    assert teacher.locator("#client-counts li").count() == 2

    teacher.click("#round-end")
    for student in students:
        student.wait_for_selector("#round", state="hidden")
        assert student.text_content("#pad-title") == "Draw a digit"
        assert student.evaluate("document.documentElement.scrollWidth") <= student.viewport_size["width"]


def test_viewers_see_the_gallery_without_controls_and_the_teachers_changes_live(classroom, open_page):
    from drawing import data_url, drawn_png

    dataset = new_dataset(classroom, ["A", "B", "C"])
    for i, label in enumerate("AAB"):
        response = requests.post(f"{classroom.url}/api/datasets/{dataset['id']}/drawings", timeout=30, json={
            "image": data_url(drawn_png(i + 1, seed=i)), "label": label, "client": f"student-{i % 2}-browser"})
        assert response.status_code == 201, response.text
    url = f"{classroom.url}/data?dataset={dataset['id']}"
    viewer = open_page(url, size=(320, 568))
    viewer.wait_for_function("document.querySelectorAll('#gallery .thumb').length === 3")
    for control in ("#round-start", "#round-end", "#clear-dataset", "#delete-dataset", "#create-form", "#export"):
        assert viewer.locator(control).count() == 0, control
    assert viewer.evaluate("document.documentElement.scrollWidth") <= 320
    assert viewer.text_content("#label-counts li[data-label='A'] .count-value") == "2"
    assert viewer.locator("#client-counts li").count() == 2
    viewer.locator("#gallery .thumb").first.click()  # a viewer may look at a drawing, not change it
    assert viewer.is_visible("#drawing-dialog") and viewer.locator("#drawing-save").count() == 0
    viewer.keyboard.press("Escape")

    teacher = open_page(url, size=(320, 568), token=classroom.token)
    teacher.wait_for_function("document.querySelectorAll('#gallery .thumb').length === 3")
    assert teacher.evaluate("document.documentElement.scrollWidth") <= 320
    teacher.locator(".label-section[data-label='B'] .thumb").click()
    teacher.select_option("#drawing-label", "C")
    teacher.click("#drawing-save")
    viewer.wait_for_function("document.querySelectorAll(\".label-section[data-label='C'] .thumb\").length === 1")
    assert viewer.text_content("#label-counts li[data-label='B'] .count-value") == "0"

    teacher.locator(".label-section[data-label='A'] .thumb").first.click()
    teacher.click("#drawing-delete")
    viewer.wait_for_function("document.querySelectorAll('#gallery .thumb').length === 2")
    assert requests.get(f"{classroom.url}/api/datasets/{dataset['id']}", timeout=30).json()["dataset"]["counts"] \
        == {"A": 1, "B": 0, "C": 1}


def test_the_teacher_creates_a_dataset_from_the_page_and_train_offers_it(classroom, open_page):
    teacher = open_page(classroom.url + "/data", size=LAPTOP, token=classroom.token)
    teacher.wait_for_function("document.querySelectorAll('#dataset option').length > 0")
    teacher.click("#new-card summary")
    teacher.fill("#new-name", "Shapes from the page")
    teacher.fill("#new-labels", "circle, square  triangle")
    teacher.click("#create")
    teacher.wait_for_function("document.querySelectorAll('#gallery .label-section').length === 3")
    dataset_id = teacher.evaluate("document.querySelector('#dataset').value")
    listed = requests.get(f"{classroom.url}/api/datasets/{dataset_id}", timeout=30).json()["dataset"]
    assert listed["labels"] == ["circle", "square", "triangle"]
    assert teacher.get_attribute("#export", "href") == f"/api/datasets/{dataset_id}/export"

    teacher.goto(classroom.url + "/train")
    teacher.wait_for_selector(f"#data-dataset option[value='{dataset_id}']", state="attached")
    assert "Shapes from the page" in teacher.text_content("#data-dataset")
    assert teacher.locator("#data-dataset option[value='class-digits']").count() == 1
    # a dataset and the MNIST choices exclude each other, and the job asks for the dataset
    teacher.select_option("#data-dataset", dataset_id)
    assert not teacher.is_checked("#data-sample")
    assert teacher.evaluate("document.querySelector('#data-dataset').value") == dataset_id
    teacher.check("#data-sample")
    assert teacher.evaluate("document.querySelector('#data-dataset').value") == ""
