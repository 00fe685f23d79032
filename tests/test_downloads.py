"""Taking a model home: GET /api/models/<id>/download in both formats, loaded by a Python that has only Keras,
the tutorial's prediction on the file, who may download what, and the Share page's links on a phone."""
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
import requests
from PIL import Image

from conftest import ROOT
from test_model_names import SAMPLE_ID, SAMPLE_META, TEACHER
from webapp.web.downloads import check_setting, file_name, may_download

SAMPLE_NAME = "CNN · 2 epochs · sample · 93.4%"

# Run by a Python started with -I (no webapp on its path): loads each file with plain Keras and prints its
# probabilities for the 28x28 input that /api/predict reported, shaped as the model wants.
LOAD_AND_PREDICT = """
import json, sys
import keras, numpy as np
x = np.load(sys.argv[1]).astype("float32")
out = {}
for path in sys.argv[2:]:
    model = keras.models.load_model(path)
    out[path] = model.predict(x.reshape((1,) + tuple(model.input_shape[1:])), verbose=0)[0].tolist()
assert not any(name.startswith("webapp") for name in sys.modules)
print("PROBABILITIES " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def room(classroom, tmp_path_factory):
    """The classroom server (no localhost trust: without the token a client is a viewer), with a CNN trained on the
    sample that is neither shipped nor active: the default setting keeps it for the teacher."""
    models = classroom.home / "models"
    models.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "models" / "cnn.keras", models / f"{SAMPLE_ID}.keras")
    (models / f"{SAMPLE_ID}.json").write_text(json.dumps({**SAMPLE_META, "id": SAMPLE_ID}))  # listed from now on
    deadline = time.monotonic() + 30
    while SAMPLE_ID not in listed(classroom):
        assert time.monotonic() < deadline, "the server never listed the model written into its folder"
        time.sleep(0.2)
    yield classroom
    requests.delete(f"{classroom.url}/api/models/{SAMPLE_ID}", headers=TEACHER, timeout=30)


def listed(server):
    return {m["id"] for m in requests.get(server.url + "/api/models", timeout=30).json()["models"]}


def download(server, model_id, fmt=None, headers=None):
    params = {} if fmt is None else {"format": fmt}
    return requests.get(f"{server.url}/api/models/{model_id}/download", params=params, headers=headers or {},
                        timeout=300)  # the first .h5 is made by an inference worker


def letter_f_png():
    """A binary letter F exactly 20 pixels tall. The MNIST recipe keeps it as it is (no resampling), so the 28x28
    `input` that /api/predict returns, rounded to 3 decimals, is exactly what the network saw; and no network is
    sure what digit it is (the shipped CNN: 60% a 5, the MLP: 71% a 7), so its probabilities, far from 0 and 1,
    move with any change to the weights."""
    glyph = np.zeros((20, 14), bool)
    glyph[0:3, :] = glyph[:, 0:3] = glyph[9:12, :] = True
    canvas = np.full((60, 60), 255, np.uint8)
    canvas[18:38, 22:36][glyph] = 0
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, "PNG")
    return buffer.getvalue()


def plain_keras(*args, cwd):
    """Run Python code in a fresh, isolated interpreter (-I: no webapp, no PYTHONPATH); its stdout."""
    done = subprocess.run([sys.executable, "-I", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


# -- the files ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model_id", ["cnn", "mlp"])
def test_both_formats_load_in_plain_keras_and_give_the_servers_probabilities(room, model_id, tmp_path):
    answer = requests.post(room.url + "/api/predict", files={"image": ("f.png", letter_f_png(), "image/png")},
                           data={"model": model_id}, timeout=60).json()
    assert answer["model"] == model_id and max(answer["probabilities"]) < 0.9  # unsure: a sensitive check
    seen = np.array(answer["input"], np.float32)
    assert seen.shape == (28, 28) and set(np.unique(seen)) == {0.0, 1.0}  # exact, not rounded
    np.save(tmp_path / "input.npy", seen)

    files = []
    for fmt in ("keras", "h5"):
        response = download(room, model_id, fmt)  # a viewer: shipped models are everyone's
        assert response.status_code == 200, response.text
        path = tmp_path / f"{model_id}.{fmt}"
        path.write_bytes(response.content)
        files.append(path.name)
    assert zipfile.is_zipfile(tmp_path / f"{model_id}.keras")
    assert (tmp_path / f"{model_id}.h5").read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    assert (tmp_path / f"{model_id}.keras").read_bytes() == (ROOT / "models" / f"{model_id}.keras").read_bytes()

    out = plain_keras("-c", LOAD_AND_PREDICT, "input.npy", *files, cwd=tmp_path)
    loaded = json.loads(out.split("PROBABILITIES ", 1)[1])
    for name in files:
        difference = np.abs(np.array(loaded[name]) - np.array(answer["probabilities"])).max()
        print(f"{name}: largest difference from /api/predict {difference:.1e}")
        assert difference <= 1e-5, name


def test_the_tutorials_prediction_in_the_readme_runs_on_a_downloaded_h5(room, tmp_path):
    readme = (ROOT / "README.md").read_text()
    snippet = re.search(r"<!-- tests/test_downloads.py runs this snippet -->\n```python\n(.*?)```", readme, re.S)
    assert snippet, "the README's tutorial snippet is missing"
    response = download(room, "cnn", "h5")
    assert response.status_code == 200
    (tmp_path / "cnn_digits_28x28.h5").write_bytes(response.content)
    sample = np.load(ROOT / "webapp" / "data" / "mnist-sample.npz")
    for digit in range(10):  # as the tutorial saves them: MNIST test digits, white on black, 28x28
        first = int(np.flatnonzero(sample["y_test"] == digit)[0])
        Image.fromarray(sample["x_test"][first]).save(tmp_path / f"digit_{digit}.png")
    (tmp_path / "predict_digits.py").write_text(snippet.group(1))
    out = plain_keras("predict_digits.py", cwd=tmp_path)
    read = dict(re.findall(r"^digit_(\d)\.png: (\d)$", out, re.M))
    assert read == {str(d): str(d) for d in range(10)}, out


def test_the_file_is_named_after_the_model(room):
    response = download(room, "cnn")  # keras is the default
    assert response.headers["Content-Disposition"] == "attachment; filename=CNN-shipped-99.35.keras"
    assert response.headers["Content-Type"] == "application/zip"
    sample = download(room, SAMPLE_ID, "h5", headers=TEACHER)
    assert sample.status_code == 200
    assert sample.headers["Content-Disposition"] == "attachment; filename=CNN-2-epochs-sample-93.4.h5"


def test_a_name_in_another_script_keeps_its_letters(room):
    renamed = requests.patch(f"{room.url}/api/models/{SAMPLE_ID}", json={"name": "Modèle de Zoé · 7/10"},
                             headers=TEACHER, timeout=30)
    assert renamed.status_code == 200
    try:
        disposition = download(room, SAMPLE_ID, headers=TEACHER).headers["Content-Disposition"]
        assert disposition == ("attachment; filename=Modele-de-Zoe-7-10.keras; "
                               "filename*=UTF-8''Mod%C3%A8le-de-Zo%C3%A9-7-10.keras")
    finally:
        requests.patch(f"{room.url}/api/models/{SAMPLE_ID}", json={"name": SAMPLE_NAME}, headers=TEACHER, timeout=30)


def test_a_changed_model_is_exported_again_and_only_its_newest_h5_is_kept(room):
    exports = room.home / "exports"
    first = download(room, SAMPLE_ID, "h5", headers=TEACHER)
    assert first.status_code == 200
    before = sorted(p.name for p in exports.glob(f"{SAMPLE_ID}.*"))
    model_file = room.home / "models" / f"{SAMPLE_ID}.keras"
    later = model_file.stat().st_mtime_ns + 5_000_000_000
    os.utime(model_file, ns=(later, later))  # as if the model were saved again
    second = download(room, SAMPLE_ID, "h5", headers=TEACHER)
    assert second.status_code == 200 and second.content[:8] == b"\x89HDF\r\n\x1a\n"
    after = sorted(p.name for p in exports.glob(f"{SAMPLE_ID}.*"))
    assert len(before) == 1 and after == [f"{SAMPLE_ID}.{later}.h5"]
    assert not list(exports.glob(".tmp-*"))  # no temporary file or folder left behind


# -- bad requests -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model_id", ["no-such-model", "CNN", "cnn.keras", "_names"])
def test_an_unknown_model_is_404(room, model_id):
    response = download(room, model_id, headers=TEACHER)
    assert response.status_code == 404 and "no model called" in response.json()["error"]


@pytest.mark.parametrize("fmt", ["pdf", "", "H5", "keras3", "onnx"])
def test_an_unknown_format_is_400(room, fmt):
    response = download(room, "cnn", fmt, headers=TEACHER)
    assert response.status_code == 400
    assert response.json() == {"error": "format must be one of keras, h5", "field": "format"}


def test_a_viewer_gets_the_shipped_and_active_models_and_a_403_for_the_rest(room):
    assert download(room, "mlp2").status_code == 200  # shipped
    for fmt in ("keras", "h5"):
        refused = download(room, SAMPLE_ID, fmt)
        assert refused.status_code == 403 and "only the teacher" in refused.json()["error"]
        assert download(room, SAMPLE_ID, fmt, headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert download(room, SAMPLE_ID, fmt, headers=TEACHER).status_code == 200


@pytest.mark.parametrize("policy, shipped, active, teacher, allowed", [
    ("shared", True, False, False, True),
    ("shared", False, True, False, True),
    ("shared", False, False, False, False),
    ("shared", False, False, True, True),
    ("everyone", False, False, False, True),
    ("teacher", True, True, False, False),
    ("teacher", False, False, True, True),
])
def test_who_may_download(policy, shipped, active, teacher, allowed):
    meta = {"id": "m", "source": "shipped" if shipped else "trained"}
    assert may_download(policy, meta, {"m"} if active else {"cnn"}, teacher) is allowed


def test_a_misspelt_setting_stops_the_server_rather_than_guess():
    def state(value):
        settings = SimpleNamespace(downloads=value)
        return SimpleNamespace(app=SimpleNamespace(extensions={"neuronlab": SimpleNamespace(settings=settings)})), \
            settings

    registration, settings = state(" Everyone ")
    check_setting(registration)
    assert settings.downloads == "everyone"
    with pytest.raises(ValueError, match="NEURONLAB_DOWNLOADS"):
        check_setting(state("students")[0])


@pytest.mark.parametrize("name, expected", [
    (SAMPLE_NAME, "CNN-2-epochs-sample-93.4.keras"),
    ("../../etc/passwd", "etc-passwd.keras"),
    (".hidden", "hidden.keras"),
    ("· % ·", "m-id.keras"),
    ("数字 CNN", "数字-CNN.keras"),
    ("x" * 300, "x" * 100 + ".keras"),
])
def test_file_names_are_safe(name, expected):
    assert file_name(name, "m-id", "keras") == expected


# -- the Share page --------------------------------------------------------------------------------------------

def test_the_share_page_on_a_phone_has_download_links_that_work(room, open_page, tmp_path):
    page = open_page(room.url + "/share", size=(393, 851))  # a viewer
    cnn = page.locator("#model-list li[data-model='cnn']")
    link = cnn.get_by_role("link", name="Download CNN · shipped · 99.35% as .keras")
    link.wait_for()
    box = link.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 393  # on the screen, not off to the side
    with page.expect_download() as started:
        link.click()
    download = started.value
    assert download.failure() is None and download.suggested_filename == "CNN-shipped-99.35.keras"
    download.save_as(tmp_path / download.suggested_filename)
    assert (tmp_path / download.suggested_filename).read_bytes() == (ROOT / "models" / "cnn.keras").read_bytes()
    assert cnn.locator("a[data-format=h5]").get_attribute("href") == "/api/models/cnn/download?format=h5"
    withheld = page.locator(f"#model-list li[data-model='{SAMPLE_ID}'] .model-downloads")
    assert withheld.locator("a").count() == 0 and withheld.locator("button").is_disabled()
    assert page.evaluate("document.documentElement.scrollWidth") <= 393


def test_the_teacher_sees_download_links_for_every_model(room, open_page):
    page = open_page(room.url + "/share", size=(393, 851), token=room.token)
    page.wait_for_function("document.querySelectorAll('#model-list li').length > 0")
    item = page.locator(f"#model-list li[data-model='{SAMPLE_ID}']")
    assert item.locator("a.download").count() == 2
    with page.expect_download() as started:
        item.locator("a[data-format=h5]").click()
    assert started.value.failure() is None
    assert started.value.suggested_filename == "CNN-2-epochs-sample-93.4.h5"
