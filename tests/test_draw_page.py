"""Real Chromium draws a digit with mouse strokes on the canvas."""
import numpy as np

from bench.strokes import strokes


def draw(page, digit, seed=0):
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 280
    for line in strokes(digit, np.random.default_rng(seed)):
        x, y = line[0]
        page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.mouse.down()
        for x, y in line[1:]:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.mouse.up()


def test_drawing_shows_a_prediction_and_the_28x28_image(server, page):
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    assert page.locator("#seen").get_attribute("data-painted") == "no"
    draw(page, 3, seed=11)
    page.wait_for_function("document.querySelector('#digit').textContent === '3'", timeout=20000)
    page.wait_for_function("document.querySelector('#seen').dataset.painted === 'yes'")
    assert page.locator(".bar-row").count() >= 10
    assert page.locator("#bars .bar-row.best .bar-label").inner_text() == "3"
    # the side-by-side CNN answer arrives too
    page.wait_for_function("document.querySelector('[data-network=cnn] .digit').textContent === '3'")

    page.click("#clear")
    assert page.locator("#digit").inner_text() == "?"


def test_canvas_does_not_scroll_the_page_on_touch(server, page):
    page.goto(server.url + "/")
    assert page.locator("#pad").evaluate("el => getComputedStyle(el).touchAction") == "none"


def test_page_loads_nothing_from_other_hosts(server, page):
    hosts = set()
    page.on("request", lambda request: hosts.add(request.url.split("/")[2]))
    page.goto(server.url + "/")
    page.wait_for_load_state("networkidle")
    assert hosts == {server.url.split("/")[2]}


def test_upload_a_picture(server, page, tmp_path):
    from drawing import drawn_png

    path = tmp_path / "digit_8.png"
    path.write_bytes(drawn_png(8, seed=2))
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    page.set_input_files("#upload", str(path))
    page.wait_for_function("document.querySelector('#digit').textContent === '8'", timeout=20000)
