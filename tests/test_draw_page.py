"""Real Chromium draws a digit with mouse strokes (or a finger) on the canvas."""
import numpy as np

from bench.strokes import strokes


def touch_draw(page, digit, seed=0):
    """Draw with a finger: real touch events through Chromium's DevTools protocol."""
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 280
    cdp = page.context.new_cdp_session(page)
    for line in strokes(digit, np.random.default_rng(seed)):
        points = [{"x": box["x"] + x * scale, "y": box["y"] + y * scale} for x, y in line]
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [points[0]]})
        for point in points[1:]:
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


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
    # the big answer is the default CNN's; the other networks answer beside it
    assert page.locator("#answer").get_attribute("data-network") == "cnn"
    assert "CNN" in page.locator("#answer-model").inner_text()
    page.wait_for_function("document.querySelector('.compare-one[data-network=mlp] .digit').textContent === '3'")

    page.click("#clear")
    assert page.locator("#digit").inner_text() == "?"


def test_the_page_sends_a_smaller_picture_the_server_reads_the_same(server, page):
    """The pad sends its drawing at 70 pixels: the server must see the digit it sees in the full canvas."""
    import base64

    from webapp.core.preprocess import preprocess

    page.goto(server.url + "/")
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    draw(page, 5, seed=3)
    full, sent = page.evaluate("""() => {
        const canvas = document.querySelector('#pad');
        return [canvas.toDataURL('image/png'), DrawingPad.prototype.toDataURL.call({canvas})];
    }""")
    full, sent = (base64.b64decode(url.split(",", 1)[1]) for url in (full, sent))
    from io import BytesIO

    from PIL import Image

    assert Image.open(BytesIO(sent)).size == (70, 70)
    assert len(sent) < len(full)
    seen_full, seen_sent = preprocess(full), preprocess(sent)
    assert np.abs(seen_full - seen_sent).mean() < 0.01
    assert np.abs(seen_full - seen_sent).max() < 0.2


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


def test_upload_a_picture_with_the_keyboard_only(server, page, tmp_path):
    from drawing import drawn_png

    path = tmp_path / "digit_5.png"
    path.write_bytes(drawn_png(5, seed=4))
    # Playwright turns on file-chooser interception without waiting for it: turn it on before the key press
    page.on("filechooser", lambda chooser: None)
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    page.locator("body").focus()
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "upload":
            break
    assert page.evaluate("document.activeElement.id") == "upload", "Tab never reached the upload"
    # the input is hidden from sight, so its label shows the focus
    outline = page.locator(".upload-label").evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline != "none"
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(str(path))
    page.wait_for_function("document.querySelector('#digit').textContent === '5'", timeout=20000)


def test_choosing_another_model_moves_its_network_out_of_the_comparison(server, page):
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    assert "mlp" in page.eval_on_selector_all(".compare-one", "els => els.map((el) => el.dataset.network)")
    page.select_option("#model", "mlp")
    networks = page.eval_on_selector_all(".compare-one", "els => els.map((el) => el.dataset.network)")
    assert "mlp" not in networks and "cnn" in networks
    assert page.locator("#answer").get_attribute("data-network") == "mlp"
