"""The "Look inside" view in real Chromium: the CNN's maps and kernels change with the drawing, the MLPs' unit
images and contributions, the saliency overlay, layers the view cannot draw, a phone's width, the XOR page's hidden
unit heat maps during live training, and float16 decoding against numpy."""
import base64
import json

import numpy as np
import pytest
import requests

from conftest import LAPTOP, ServerProcess
from test_draw_page import draw, touch_draw

PHONE = (393, 851)

# The pad's picture as the page sends it, so the test can ask the API for the same drawing.
SENT_IMAGE_JS = "DrawingPad.prototype.toDataURL.call({canvas: document.querySelector('#pad')})"
LAYER_SUMS_JS = "[...document.querySelectorAll('#look-inside .layer[data-drawn=true]')].map((li) => li.dataset.sum)"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of this module's own: its XOR training saves a model, which must not reach other modules."""
    process = ServerProcess(tmp_path_factory.mktemp("look-inside")).start()
    yield process
    process.stop()


def decode(field):
    return np.frombuffer(base64.b64decode(field["data"]), "<f2").astype(np.float32).reshape(field["shape"])


def open_draw(open_page, server, size=LAPTOP, model=None, look=True):
    page = open_page(server.url + "/", size=size)
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    if model:
        page.select_option("#model", model)
    if look:
        page.click("#look-inside > summary")
        page.evaluate("window.scrollTo(0, 0)")  # the pad back in sight, for drawing
    return page


def wait_shown(page, model, digit=None, before=None):
    """Until the view shows `model`'s layers (for `digit`), different from the layer sums `before`."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        wait_for_layers(page, model, digit, before)
    except PlaywrightTimeout:
        state = page.evaluate("""() => { const root = document.querySelector('#look-inside');
            return {...root.dataset, status: root.querySelector('.inside-status').textContent,
                    digit_shown: document.querySelector('#digit').textContent}; }""")
        raise AssertionError(f"the view never showed {model} ({digit}): {state}") from None


def wait_for_layers(page, model, digit, before):
    page.wait_for_function(
        """([model, digit, before]) => { const root = document.querySelector('#look-inside');
          if (root.dataset.state !== 'shown' || root.dataset.model !== model) return false;
          if (digit !== null && root.dataset.digit !== String(digit)) return false;
          const sums = %s;
          return before === null || JSON.stringify(sums) !== JSON.stringify(before); }""" % LAYER_SUMS_JS,
        arg=[model, digit, before], timeout=60_000)


def inspect_as_the_page_did(page, server, model):
    """/api/inspect's answer for the finished drawing, once the page shows that very drawing: answers to the
    drawing's earlier states may still be on their way when the last stroke ends."""
    image = page.evaluate(SENT_IMAGE_JS)
    response = requests.post(server.url + "/api/inspect", json={"image": image, "model": model}, timeout=60)
    assert response.ok, response.text
    answer = response.json()
    first = next(layer for layer in answer["layers"] if layer["data"])
    page.wait_for_function(
        """([name, expected]) => { const li = document.querySelector(`#look-inside .layer[data-name="${name}"]`);
          const units = document.querySelector('#look-inside .units');
          const near = (text) => Math.abs(Number(text) - expected) <= 1e-3 * Math.max(1, Math.abs(expected));
          return li && near(li.dataset.sum) && (!units || near(units.dataset.sum)); }""",
        arg=[first["name"], float(decode(first).sum())])
    return answer


def canvas_pixels(page, selector):
    return page.locator(selector).evaluate("(c) => c.toDataURL()")


def ink_of(page, selector):
    """How many pixels of a canvas are not white or transparent (a painted map shows some)."""
    return page.locator(selector).evaluate("""(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] && (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250)) n++;
        return n; }""")


def test_the_cnn_shows_every_layer_and_its_maps_change_as_the_drawing_changes(server, open_page):
    page = open_draw(open_page, server)
    assert page.locator("#look-inside").get_attribute("data-state") == "empty"
    draw(page, 3, seed=11)
    wait_shown(page, "cnn", 3)
    answer = inspect_as_the_page_did(page, server, "cnn")

    items = page.locator("#look-inside .layer")
    assert items.count() == len(answer["layers"])
    for i, layer in enumerate(answer["layers"]):
        item = items.nth(i)
        assert item.get_attribute("data-name") == layer["name"]
        assert item.get_attribute("data-type") == layer["type"]
        assert item.locator(".layer-shape").inner_text() == " × ".join(map(str, layer["shape"]))
        assert item.locator(".layer-words").inner_text().strip()
    types = [layer["type"] for layer in answer["layers"]]
    assert types.count("Conv2D") == 3 and types.count("MaxPooling2D") == 3 and "Flatten" in types

    # The first convolution: its 32 maps and, beside them, its 32 kernels, both painted
    conv = page.locator("#look-inside .layer[data-type=Conv2D]").first
    assert conv.locator(".maps canvas").get_attribute("data-maps") == "32"
    assert conv.locator(".kernels canvas").get_attribute("data-maps") == "32"
    first_conv = "#look-inside .layer:first-child .maps canvas"
    assert ink_of(page, first_conv) > 0 and ink_of(page, "#look-inside .kernels canvas") > 0
    # what the page drew is the API's answer for this drawing
    expected = decode(answer["layers"][0]).sum()
    assert float(conv.get_attribute("data-sum")) == pytest.approx(expected, rel=1e-3)
    kernels = decode(answer["kernels"])
    assert float(conv.locator(".kernels canvas").get_attribute("data-sum")) == pytest.approx(
        kernels[:, :, 0, :].sum(), abs=1e-2)
    # the ten outputs are bars
    assert page.locator("#look-inside .layer").last.locator("canvas").get_attribute("data-units") == "10"

    before_sums = page.evaluate(LAYER_SUMS_JS)
    before_pixels = canvas_pixels(page, first_conv)
    draw(page, 1, seed=5)  # more ink over the 3
    wait_shown(page, "cnn", before=before_sums)
    assert canvas_pixels(page, first_conv) != before_pixels


def test_a_map_opens_large_with_the_value_under_the_pointer(server, open_page):
    page = open_draw(open_page, server)
    draw(page, 7, seed=2)
    wait_shown(page, "cnn", 7)
    page.locator("#look-inside .layer[data-type=Conv2D] .maps canvas").first.click(position={"x": 10, "y": 10})
    zoom = page.locator("dialog.map-zoom")
    assert zoom.evaluate("(d) => d.open")
    assert "map 1 of 32" in zoom.locator("h2").inner_text()
    answer = inspect_as_the_page_did(page, server, "cnn")
    maps = decode(answer["layers"][0])  # 28 x 28 x 32
    row, column = np.unravel_index(np.argmax(maps[:, :, 0]), (28, 28))
    box = zoom.locator("canvas").bounding_box()
    page.mouse.move(box["x"] + (column + 0.5) * box["width"] / 28, box["y"] + (row + 0.5) * box["height"] / 28)
    readout = zoom.locator(".map-zoom-value").inner_text()
    assert readout.startswith(f"row {row + 1}, column {column + 1}: "), readout
    assert float(readout.split(": ")[1]) == pytest.approx(maps[row, column, 0], rel=1e-2, abs=1e-3)
    zoom.locator("button[data-step='1']").click()
    assert "map 2 of 32" in zoom.locator("h2").inner_text()
    zoom.locator(".map-zoom-close").click()
    assert not zoom.evaluate("(d) => d.open")


def test_the_saliency_overlay_is_painted_and_names_its_method(server, open_page):
    page = open_draw(open_page, server)
    draw(page, 4, seed=1)
    wait_shown(page, "cnn", 4)
    answer = inspect_as_the_page_did(page, server, "cnn")
    saliency = page.locator("#look-inside .saliency")
    assert saliency.get_attribute("data-painted") == "yes"
    assert int(saliency.get_attribute("data-coloured")) > 20
    assert answer["saliency"]["method"] in page.locator("#look-inside .why-method").inner_text()
    assert page.locator("#look-inside .why-words").inner_text().strip()
    # the strongest push is painted deepest: red if it pushed towards the answer, blue if away
    values = decode(answer["saliency"])
    y, x = np.unravel_index(np.argmax(np.abs(values)), values.shape)
    red, green, blue = page.locator("#look-inside .saliency").evaluate(
        f"(c) => [...c.getContext('2d').getImageData({x}, {y}, 1, 1).data.slice(0, 3)]")
    if values[y, x] > 0:
        assert red > green + 60 and red > blue + 60
    else:
        assert blue > red + 60 and blue > green + 60


@pytest.mark.parametrize("model", ["mlp", "mlp2"])
def test_the_mlps_show_what_their_most_active_units_look_for(server, open_page, model):
    page = open_draw(open_page, server, model=model)
    draw(page, 2, seed=4)
    wait_shown(page, model, 2)
    page.wait_for_function("document.querySelectorAll('#look-inside .unit canvas[data-painted=yes]').length === 8",
                           timeout=60_000)
    answer = inspect_as_the_page_did(page, server, model)
    dense = [layer for layer in answer["layers"] if layer["type"] == "Dense"]
    hidden = decode(dense[0])
    kernels, biases = [], []
    for layer in dense:
        weights = requests.get(f"{server.url}/api/models/{model}/weights", params={"layer": layer["name"]},
                               timeout=60).json()["weights"]
        kernels.append(next(decode(w) for w in weights if w["name"] == "kernel"))
        biases.append(next(decode(w) for w in weights if w["name"] == "bias"))
    # The weight from each first-layer unit toward the digit's score, through the ReLU units that are on
    digit = answer["digit"]
    toward = kernels[-1][:, digit].astype(np.float64)
    for k in range(len(dense) - 2, 0, -1):
        toward = kernels[k] @ (toward * (decode(dense[k]) > 0))
    units = page.locator("#look-inside .unit")
    shown = [int(units.nth(i).get_attribute("data-unit")) for i in range(units.count())]
    assert shown == list(np.argsort(-hidden, kind="stable")[:8]) or sorted(hidden[shown]) == sorted(np.sort(hidden)[-8:])
    for i, unit in enumerate(shown):
        contribution = float(units.nth(i).get_attribute("data-contribution"))
        assert contribution == pytest.approx(hidden[unit] * toward[unit], rel=2e-2, abs=2e-3), unit
    # each picture is that unit's 784 incoming weights: its largest one deepest, blue if positive, orange if not
    unit = shown[0]
    column = kernels[0][:, unit].reshape(28, 28)
    y, x = np.unravel_index(np.argmax(np.abs(column)), (28, 28))
    red, green, blue = units.nth(0).locator("canvas").evaluate(
        f"(c) => [...c.getContext('2d').getImageData({x}, {y}, 1, 1).data.slice(0, 3)]")
    assert (blue > red + 60) if column[y, x] > 0 else (red > blue + 60)
    # the score before softmax, from the last hidden layer: what the page says it is
    score = decode(dense[-2]) @ kernels[-1][:, digit] + biases[-1][digit]
    assert float(page.locator("#look-inside .units").get_attribute("data-score")) == pytest.approx(score, rel=1e-2,
                                                                                                   abs=1e-2)


def test_a_layer_without_data_is_listed_with_its_shape_and_skipped(server, open_page):
    """The API sends no numbers for layers it cannot draw: the page lists them and draws the rest."""
    page = open_page(server.url + "/healthz", size=LAPTOP)
    # No Socket.IO (no websockets, polling refused): the page falls back to REST, which the test can change
    page.add_init_script("delete window.WebSocket")
    page.route(lambda url: "/socket.io/?" in url, lambda route: route.abort())

    def without_the_pooling(route):
        from playwright.sync_api import Error as PlaywrightError

        try:
            answer = route.fetch().json()
        except PlaywrightError:  # the test ended and closed the page meanwhile
            return
        for layer in answer["layers"]:
            if layer["type"] == "MaxPooling2D":
                layer["data"], layer["skipped"] = None, "this test took its numbers away"
        route.fulfill(json=answer)

    page.route("**/api/inspect", without_the_pooling)
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    page.click("#look-inside > summary")
    page.evaluate("window.scrollTo(0, 0)")
    draw(page, 8, seed=3)
    wait_shown(page, "cnn")
    pooling = page.locator("#look-inside .layer[data-type=MaxPooling2D]")
    assert pooling.count() == 3
    for i in range(3):
        assert pooling.nth(i).get_attribute("data-drawn") == "false"
        assert "this test took its numbers away" in pooling.nth(i).locator(".layer-skipped").inner_text()
        assert "×" in pooling.nth(i).locator(".layer-shape").inner_text()
        assert pooling.nth(i).locator("canvas").count() == 0
    assert page.locator("#look-inside .layer[data-type=Conv2D][data-drawn=true]").count() == 3


def test_an_uploaded_functional_model_with_unusual_layers_works(server, open_page, tmp_path):
    import keras
    from keras import layers

    inputs = keras.Input((28, 28, 1))
    a = layers.Conv2D(4, 3, padding="same", activation="relu", name="left")(inputs)
    b = layers.Conv2D(4, 5, padding="same", name="right")(inputs)
    joined = layers.BatchNormalization(name="norm")(layers.Add(name="both")([a, b]))
    flat = layers.Flatten()(layers.MaxPooling2D(2)(joined))
    outputs = layers.Dense(10, activation="softmax", name="digits")(flat)
    path = tmp_path / "branches.keras"
    keras.Model(inputs, outputs).save(path)
    with open(path, "rb") as f:
        response = requests.post(server.url + "/api/models", headers=server.teacher_headers(),
                                 files={"file": ("branches.keras", f)}, timeout=120)
    assert response.ok, response.text
    model_id = response.json()["model"]["id"]

    page = open_draw(open_page, server)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.wait_for_function(f"[...document.querySelectorAll('#model option')].some((o) => o.value === '{model_id}')")
    page.select_option("#model", model_id)
    draw(page, 6, seed=2)
    wait_shown(page, model_id)
    answer = inspect_as_the_page_did(page, server, model_id)
    names = page.eval_on_selector_all("#look-inside .layer", "els => els.map((el) => el.dataset.name)")
    assert names == [layer["name"] for layer in answer["layers"]]
    for layer in answer["layers"]:
        item = page.locator(f"#look-inside .layer[data-name='{layer['name']}']")
        assert item.get_attribute("data-drawn") == str(layer["data"] is not None).lower()
    assert errors == []


def test_closed_it_sends_nothing_more_and_open_it_asks_with_each_drawing(server, open_page):
    page = open_draw(open_page, server, look=False)
    sent = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda frame: sent.append(str(frame))))
    page.reload()  # the socket opens again, now watched
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    draw(page, 5, seed=1)
    page.wait_for_function("document.querySelector('#digit').textContent !== '?'")
    page.wait_for_timeout(500)
    assert any('"predict"' in f for f in sent) and not any('"inspect"' in f for f in sent)
    page.click("#look-inside > summary")  # opening asks for the drawing at once
    wait_shown(page, "cnn")
    assert any('"inspect"' in f for f in sent)


def test_on_a_phone_nothing_is_wider_than_the_screen(server, open_page):
    for model in ("cnn", "mlp"):
        page = open_draw(open_page, server, size=PHONE, model=model)
        touch_draw(page, 9, seed=6)
        wait_shown(page, model)
        if model == "mlp":
            page.wait_for_function("document.querySelectorAll('#look-inside .unit canvas[data-painted=yes]').length")
        page.wait_for_timeout(300)  # grids reflow on the next frame
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE[0]
        widest = page.eval_on_selector_all("#look-inside canvas", "els => Math.max(...els.map((c) => "
                                           "c.getBoundingClientRect().right))")
        assert widest <= PHONE[0]
        if model == "cnn":
            page.locator("#look-inside .maps canvas").first.tap(position={"x": 8, "y": 8})
            zoom = page.locator("dialog.map-zoom")
            assert zoom.evaluate("(d) => d.open")
            assert zoom.bounding_box()["width"] <= PHONE[0]


def test_float16_decodes_every_bit_pattern_as_numpy_does(server, open_page):
    page = open_page(server.url + "/", size=LAPTOP)
    every = np.arange(65536, dtype=np.uint16)
    text = base64.b64encode(every.astype("<u2").tobytes()).decode()
    # JSON has no NaN or infinity: the page sends them as strings
    decoded = page.evaluate("""(text) => Array.from(Float16.decode(text), (v) =>
        Number.isNaN(v) ? 'nan' : v === Infinity ? 'inf' : v === -Infinity ? '-inf' : Object.is(v, -0) ? '-0' : v)""",
                            text)
    expected = every.view(np.float16).astype(np.float64)
    special = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "-0": -0.0}
    got = np.array([special.get(v, v) if isinstance(v, str) else v for v in decoded], np.float64)
    np.testing.assert_array_equal(got, expected)  # NaN where numpy has NaN; exact everywhere else
    numbers = ~np.isnan(expected)
    assert np.array_equal(np.signbit(got[numbers]), np.signbit(expected[numbers]))  # -0 is -0
    with pytest.raises(Exception, match="holds 2 numbers, the shape says 3"):
        page.evaluate("Float16.decode('AAAAAA==', 3)")
    with pytest.raises(Exception, match="odd number of bytes"):
        page.evaluate("Float16.decode('AAAA')")


def test_xor_shows_one_heat_map_per_hidden_unit_that_changes_while_training(server, open_page):
    page = open_page(server.url + "/xor", size=LAPTOP)
    page.wait_for_selector("#xor-steps td[data-element]")
    page.wait_for_function("document.body.dataset.socket === 'connected'")
    breakdown = requests.get(f"{server.url}/api/xor/breakdown", params={"x": "0,1"}, timeout=30).json()
    weights = breakdown["weights"]
    units = len(weights["b1"])
    page.wait_for_function(f"document.querySelectorAll('#xor-neurons .neuron').length === {units}")
    # each map's top is the unit's largest output over the square, from the model's weights
    grid = np.linspace(0, 1, 21)
    xs, ys = np.meshgrid(grid, grid)
    for unit in range(units):
        out = np.maximum(0, xs * weights["W1"][0][unit] + ys * weights["W1"][1][unit] + weights["b1"][unit])
        shown = float(page.locator(f"#xor-neurons .neuron[data-unit='{unit}']").get_attribute("data-max"))
        assert shown == pytest.approx(out.max(), abs=1e-5)

    page.fill("#xor-hidden", "4")
    page.fill("#xor-seed", "9")
    page.click("#xor-train")
    page.wait_for_function("document.querySelectorAll('#xor-neurons .neuron').length === 4", timeout=180_000)
    page.wait_for_function("Number(document.querySelector('#xor-neurons').dataset.epoch) > 0", timeout=180_000)
    early = page.eval_on_selector_all("#xor-neurons .neuron", "els => els.map((el) => el.dataset.max)")
    early_pixels = page.eval_on_selector_all("#xor-neurons canvas", "els => els.map((c) => c.toDataURL())")
    page.wait_for_function("Number(document.querySelector('#xor-neurons').dataset.epoch) >= 500", timeout=180_000)
    later = page.eval_on_selector_all("#xor-neurons .neuron", "els => els.map((el) => el.dataset.max)")
    assert later != early
    assert page.eval_on_selector_all("#xor-neurons canvas", "els => els.map((c) => c.toDataURL())") != early_pixels

