""""No, it was a…" on the Draw page (real Chromium, a viewer on the classroom server): after an answer the student
taps the right digit, the drawing goes into class-digits with the model's answer as its guess and this browser's
anonymous id, and the thank-you shows the count growing."""
import re

import requests

from test_draw_page import touch_draw


def class_digits(classroom):
    return requests.get(classroom.url + "/api/datasets/class-digits", timeout=30).json()["dataset"]


def file_a_correction(page, digit, seed, filed_before):
    """Draw `digit`, wait for the answer, then say it was another digit: returns (guess, filed label)."""
    page.click("#clear")
    touch_draw(page, digit, seed=seed)
    page.wait_for_selector("#correction:not([hidden])")
    page.wait_for_function("document.querySelector('#digit').textContent !== '?' && drawPage.answered()")
    guess = page.text_content("#digit")
    assert page.text_content(".correction-guess") == guess
    assert page.is_disabled(f"#correction button[data-label='{guess}']")  # "no, it was": not the model's answer
    filed = next(str(d) for d in range(10) if str(d) != guess)
    page.click(f"#correction button[data-label='{filed}']")
    page.wait_for_function(f"document.querySelector('#correction').dataset.filed === '{filed_before + 1}'")
    assert page.text_content(".correction-thanks").startswith("Thank you")
    return guess, filed


def test_no_it_was_files_the_drawing_into_class_digits_and_the_count_grows(classroom, open_page):
    before = class_digits(classroom)
    page = open_page(classroom.url + "/", size=(393, 851))
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    assert page.is_hidden("#correction")  # nothing to correct before an answer

    guess, filed = file_a_correction(page, 4, seed=1, filed_before=0)
    first = int(page.get_attribute("#correction", "data-total"))
    thanks = page.text_content(".correction-thanks")
    assert re.search(rf"\b\d+ drawings? of {filed}\b", thanks) and f"({first} in all)" in thanks
    assert page.locator("#correction button:not([disabled])").count() == 0  # one drawing is filed once

    after = class_digits(classroom)
    assert after["total"] == before["total"] + 1 == first
    assert after["counts"][filed] == before["counts"][filed] + 1
    drawings = requests.get(classroom.url + "/api/datasets/class-digits/drawings", timeout=30).json()["drawings"]
    newest = drawings[-1]
    assert newest["label"] == filed and newest["guess"] == guess
    assert newest["client"] == page.evaluate("ClientId.get()")
    assert page.evaluate("localStorage.getItem('neuronlab-client')") == newest["client"]

    file_a_correction(page, 9, seed=2, filed_before=1)
    second = int(page.get_attribute("#correction", "data-total"))
    assert second == first + 1 and f"({second} in all)" in page.text_content(".correction-thanks")
    assert page.evaluate("document.documentElement.scrollWidth") <= 393
