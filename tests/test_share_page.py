"""The Share page in Chromium: names, the class's models, and model actions that ask before they cost anything."""
import json
import shutil
import time

import pytest
import requests

from conftest import LAPTOP, ServerProcess
from test_model_names import SAMPLE_ID, SAMPLE_META, TEACHER, home_with_a_sample_model


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    """A server as on a LAN (no localhost trust) with a sample-trained CNN beside the shipped models."""
    home = home_with_a_sample_model(tmp_path_factory.mktemp("share"))
    process = ServerProcess(home, env={"NEURONLAB_TRUST_LOCALHOST": "0"}).start()
    yield process
    process.stop()


def active(server):
    return requests.get(server.url + "/api/models", timeout=30).json()["active"]


def open_share(open_page, server, teacher, size=LAPTOP):
    page = open_page(server.url + "/share", size=size, token=server.token if teacher else None)
    page.wait_for_function("document.querySelectorAll('#model-list li').length > 0")
    return page


def item(page, model_id):
    return page.locator(f"#model-list li[data-model='{model_id}']")


def test_names_and_the_class_models_are_shown_to_viewers_with_controls_disabled(room, open_page):
    page = open_share(open_page, room, teacher=False)
    assert item(page, SAMPLE_ID).locator(".model-name").inner_text() == "CNN · 2 epochs · sample · 93.4%"
    assert "CNN · trained · 93.4%" in item(page, SAMPLE_ID).locator(".model-details").inner_text()
    assert SAMPLE_ID not in page.locator("#model-list").inner_text()  # names, not ids
    rows = {r["network"]: r for r in page.eval_on_selector_all("#active-models li", """els => els.map((el) => ({
        network: el.dataset.network, text: el.textContent, isDefault: !!el.querySelector('.badge-default')}))""")}
    assert set(rows) == {"mlp", "mlp2", "cnn"}
    assert "CNN · shipped · 99.35%" in rows["cnn"]["text"] and "99.35%" in rows["cnn"]["text"]
    assert [n for n, r in rows.items() if r["isDefault"]] == ["cnn"]
    assert page.locator("#models-note").is_visible()
    buttons = page.locator("#model-list button, #model-upload button, #model-file")
    assert buttons.count() > 0
    assert all(buttons.nth(i).is_disabled() for i in range(buttons.count()))


def test_activating_a_sample_model_asks_first_and_cancel_keeps_the_class_model(room, open_page):
    page = open_share(open_page, room, teacher=True)
    before = active(room)
    item(page, SAMPLE_ID).get_by_role("button", name="Use this model").click()
    dialog = page.locator("dialog.confirm-dialog[open]")
    dialog.wait_for()
    text = dialog.inner_text()
    assert "93.4%" in text and "99.35%" in text and "sample" in text
    assert page.evaluate("document.activeElement.textContent") == "Cancel"  # the safe choice has the focus
    page.keyboard.press("Enter")
    page.wait_for_function("!document.querySelector('dialog[open]')"
                           " && document.querySelector('#models-message').textContent.includes('Kept')")
    assert active(room) == before

    item(page, SAMPLE_ID).get_by_role("button", name="Use this model").click()
    page.locator("dialog.confirm-dialog[open]").get_by_role("button", name="Use it").click()
    page.wait_for_function(f"document.querySelector('#active-models li[data-network=cnn]').dataset.model === '{SAMPLE_ID}'")
    assert active(room)["cnn"] == SAMPLE_ID and active(room)["default"] == SAMPLE_ID
    # back to the shipped CNN: better and on full MNIST, so no question
    item(page, "cnn").get_by_role("button", name="Use this model").click()
    page.wait_for_function("document.querySelector('#active-models li[data-network=cnn]').dataset.model === 'cnn'")
    assert page.locator("dialog[open]").count() == 0
    assert active(room)["cnn"] == "cnn"


def test_delete_asks_first(room, open_page):
    extra = "cnn-20261129-030000-abcd"
    models = room.home / "models"
    shutil.copy(models / f"{SAMPLE_ID}.keras", models / f"{extra}.keras")
    (models / f"{extra}.json").write_text(json.dumps({**SAMPLE_META, "epochs": 3, "id": extra}))
    # Written behind the server's back: its model store notices within a second (RECHECK_S). Open the page then.
    deadline = time.monotonic() + 30
    while extra not in {m["id"] for m in requests.get(room.url + "/api/models", timeout=30).json()["models"]}:
        assert time.monotonic() < deadline, "the server never listed the model written into its folder"
        time.sleep(0.2)
    page = open_share(open_page, room, teacher=True)
    page.wait_for_selector(f"#model-list li[data-model='{extra}']")
    item(page, extra).get_by_role("button", name="Delete").click()
    dialog = page.locator("dialog.confirm-dialog[open]")
    assert "CNN · 3 epochs · sample · 93.4%" in dialog.inner_text()
    dialog.get_by_role("button", name="Cancel").click()
    assert (models / f"{extra}.json").exists()

    item(page, extra).get_by_role("button", name="Delete").click()
    page.locator("dialog.confirm-dialog[open]").get_by_role("button", name="Delete").click()
    page.wait_for_selector(f"#model-list li[data-model='{extra}']", state="detached")
    assert not (models / f"{extra}.json").exists()


def test_the_teacher_renames_a_model_on_the_page(room, open_page):
    page = open_share(open_page, room, teacher=True)
    item(page, "mlp").get_by_role("button", name="Rename").click()
    field = item(page, "mlp").get_by_label("New name for MLP · shipped · 98.84%")
    field.fill("The tutorial's MLP")
    field.press("Enter")
    page.wait_for_function("document.querySelector(\"#model-list li[data-model='mlp'] .model-name\").textContent"
                           " === \"The tutorial's MLP\"")
    assert "The tutorial's MLP" in page.locator("#active-models li[data-network=mlp]").inner_text()
    response = requests.patch(room.url + "/api/models/mlp", json={"name": "MLP · shipped · 98.84%"},
                              headers=TEACHER, timeout=30)
    assert response.status_code == 200
