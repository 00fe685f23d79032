"""The Draw page on phones and a laptop: the pad and its answer on one screen, no answer twice, no sideways scroll."""
import pytest

from conftest import LAPTOP, SIZES
from test_draw_page import draw, touch_draw

BOXES_JS = """() => {
  const box = (selector) => { const r = document.querySelector(selector).getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right}; };
  return {pad: box('#pad'), answer: box('#answer'), compare: box('.compare-card'),
          width: innerWidth, height: innerHeight, scrollY: window.scrollY};
}"""


def inside(box, width, height):
    return box["top"] >= 0 and box["left"] >= 0 and box["bottom"] <= height and box["right"] <= width


def size_id(size):
    return f"{size[0]}x{size[1]}"


@pytest.mark.parametrize("size", [(393, 851), (320, 568), LAPTOP], ids=size_id)
def test_the_pad_and_the_answer_are_on_screen_after_drawing(classroom, open_page, size):
    page = open_page(classroom.url + "/", size=size)
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    phone = size[0] < 700
    (touch_draw if phone else draw)(page, 7, seed=5)
    page.wait_for_function("document.querySelector('#digit').textContent === '7'", timeout=20000)
    assert "% sure" in page.locator("#confidence").inner_text()
    m = page.evaluate(BOXES_JS)
    assert m["scrollY"] == 0, "drawing scrolled the page"
    assert inside(m["pad"], m["width"], m["height"]), m
    assert inside(m["answer"], m["width"], m["height"]), m  # the digit and its probability
    if not phone:
        assert inside(m["compare"], m["width"], m["height"]), m


def test_on_the_laptop_each_network_answers_once(classroom, open_page):
    page = open_page(classroom.url + "/", size=LAPTOP)
    page.wait_for_function("document.querySelectorAll('.compare-one').length > 0")
    draw(page, 2, seed=3)
    page.wait_for_function("document.querySelector('#digit').textContent === '2'", timeout=20000)
    page.wait_for_function("[...document.querySelectorAll('.compare-one .digit')].every((d) => d.textContent !== '?')",
                           timeout=20000)
    shown = page.evaluate("""() => [document.querySelector('#answer'), ...document.querySelectorAll('.compare-one')]
        .filter((el) => { const r = el.getBoundingClientRect(); return r.bottom <= innerHeight && r.height > 0; })
        .map((el) => el.dataset.network)""")
    assert len(shown) >= 2 and len(shown) == len(set(shown)), shown
    assert {"mlp", "cnn"} <= set(shown), shown  # the MLP/CNN comparison is on the first screen


@pytest.mark.parametrize("size", SIZES, ids=size_id)
def test_draw_and_share_are_never_wider_than_the_screen(classroom, open_page, size):
    for token in (None, classroom.token):
        page = open_page(classroom.url + "/", size=size, token=token)
        for path in ("/", "/share"):
            page.goto(classroom.url + path)
            page.wait_for_function("document.querySelectorAll('#model option, #model-list li').length > 0")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= size[0], f"{path} is {width} px wide at {size_id(size)}"
