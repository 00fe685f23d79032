"""Human names for models: made from the metadata, or the teacher's (PATCH /api/models/<id>), shipped ones too."""
import json
import shutil
import time

import pytest
import requests

from conftest import ROOT, TOKEN, ServerProcess
from webapp.core.modelstore import NAMES_FILE, ModelStore, UnknownModel, clean_name, model_name, percent

TEACHER = {"Authorization": f"Bearer {TOKEN}"}
SAMPLE_ID = "cnn-20261129-014230-6e5a"
# What a `"data": "sample"` CNN job writes beside its model (the shape of a real run's metadata).
SAMPLE_META = {
    "network": "cnn", "epochs": 2, "test_accuracy": 0.934, "parameters": 130890, "drawings": 0,
    "data": {"sample": True, "sha256": "41fd58c4", "source": "sample"}, "date": "2026-11-29T01:42:30+0000",
    "recipe": {"net": "cnn", "epochs": 2, "data": "sample", "augment": False, "batch_size": 64},
}


def home_with_a_sample_model(home):
    """An instance folder holding one CNN trained on the sample (the shipped CNN's weights, a sample run's metadata)."""
    models = home / "models"
    models.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "models" / "cnn.keras", models / f"{SAMPLE_ID}.keras")
    (models / f"{SAMPLE_ID}.json").write_text(json.dumps({**SAMPLE_META, "id": SAMPLE_ID}))
    return home


@pytest.fixture(scope="module")
def lan(tmp_path_factory):
    """A server as on a LAN (no localhost trust) with a sample-trained CNN beside the shipped models."""
    home = home_with_a_sample_model(tmp_path_factory.mktemp("names"))
    process = ServerProcess(home, env={"NEURONLAB_TRUST_LOCALHOST": "0"}).start()
    yield process
    process.stop()


def rename(server, model_id, body, headers=TEACHER):
    return requests.patch(f"{server.url}/api/models/{model_id}", json=body, headers=headers, timeout=30)


# -- names made from the metadata --------------------------------------------------------------------------------

@pytest.mark.parametrize("meta, name", [
    (SAMPLE_META, "CNN · 2 epochs · sample · 93.4%"),
    ({"network": "mlp", "source": "shipped", "epochs": 16, "test_accuracy": 0.9884, "data": {"sample": False}},
     "MLP · shipped · 98.84%"),
    ({"network": "mlp2", "epochs": 1, "test_accuracy": 0.95, "data": "mnist"}, "MLP2 · 1 epoch · 95%"),
    ({"network": "cnn", "epochs": 3, "recipe": {"data": "sample"}}, "CNN · 3 epochs · sample"),
    ({"network": "xor", "hidden": 2, "seed": 3, "success": True}, "XOR · 2 hidden · seed 3"),
    ({"network": "xor", "hidden": 2, "seed": 4, "success": False}, "XOR · 2 hidden · seed 4 · failed"),
    ({"network": "uploaded", "filename": "cnn_digits_28x28.h5", "id": "cnn_digits_28x28"}, "cnn_digits_28x28.h5"),
])
def test_a_name_is_made_from_the_metadata(meta, name):
    assert model_name(meta) == name


def test_percent_keeps_at_most_two_decimals():
    assert [percent(x) for x in (0.934, 0.9935, 1.0, 0.93359)] == ["93.4%", "99.35%", "100%", "93.36%"]


@pytest.mark.parametrize("bad", [None, 5, ["a"], "", "   ", "x" * 81, "two\nlines"])
def test_bad_names_are_refused(bad):
    with pytest.raises(ValueError):
        clean_name(bad)


def test_store_lists_names_and_keeps_renames_of_shipped_models_in_its_own_folder(tmp_path):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "mlp.keras").write_bytes(b"not read here")
    (shipped / "mlp.json").write_text(json.dumps({"network": "mlp", "test_accuracy": 0.9884}))
    shipped.chmod(0o555)  # the app may not write there
    try:
        store = ModelStore(tmp_path / "instance", shipped=[shipped])
        assert store.metadata("mlp")["name"] == "MLP · shipped · 98.84%"
        meta = store.rename("mlp", "  Our MLP  ")
        assert meta["name"] == "Our MLP" and store.list()[0]["name"] == "Our MLP"
        assert json.loads((tmp_path / "instance" / NAMES_FILE).read_text()) == {"mlp": "Our MLP"}
        assert [m["id"] for m in store.list()] == ["mlp"]  # the names file is never listed as a model
        with pytest.raises(UnknownModel):
            store.rename("nope", "A name")
        assert not [p for p in (tmp_path / "instance").iterdir() if p.name.startswith(".tmp-")]
    finally:
        shipped.chmod(0o755)


# -- PATCH /api/models/<id> ----------------------------------------------------------------------------------------

def test_every_listed_model_has_a_name(lan):
    models = {m["id"]: m for m in requests.get(lan.url + "/api/models", timeout=30).json()["models"]}
    assert models[SAMPLE_ID]["name"] == "CNN · 2 epochs · sample · 93.4%"
    assert models["cnn"]["name"] == "CNN · shipped · 99.35%"
    assert all(m["name"] for m in models.values())


def test_the_teacher_renames_a_model_and_pages_hear_of_it(lan):
    import socketio

    heard = []
    client = socketio.Client(reconnection=False)
    client.on("models", lambda data: heard.append(data))
    client.connect(lan.url, transports=["websocket"], wait_timeout=20)
    try:
        response = rename(lan, SAMPLE_ID, {"name": "Monday's quick CNN"})
        assert response.status_code == 200, response.text
        assert response.json()["model"]["name"] == "Monday's quick CNN"
        assert requests.get(f"{lan.url}/api/models/{SAMPLE_ID}", timeout=30).json()["name"] == "Monday's quick CNN"
        for _ in range(50):
            if heard:
                break
            client.sleep(0.1)
        assert heard and heard[0].get("renamed") == SAMPLE_ID
    finally:
        client.disconnect()


def test_a_shipped_model_can_be_renamed_though_its_folder_is_not_written(lan):
    before = sorted(p.name for p in (ROOT / "models").iterdir())
    response = rename(lan, "mlp2", {"name": "MLP2, the deep one"})
    assert response.status_code == 200 and response.json()["model"]["name"] == "MLP2, the deep one"
    assert sorted(p.name for p in (ROOT / "models").iterdir()) == before
    assert json.loads((lan.home / "models" / NAMES_FILE).read_text())["mlp2"] == "MLP2, the deep one"


@pytest.mark.parametrize("body, words", [
    ({}, "name"), ({"name": ""}, "empty"), ({"name": "   "}, "empty"), ({"name": "x" * 81}, "80"),
    ({"name": 42}, "string"), ({"name": None}, "string"), (["name"], "JSON object"),
])
def test_bad_renames_get_400(lan, body, words):
    response = rename(lan, "cnn", body)
    assert response.status_code == 400 and words in response.json()["error"]
    assert requests.get(f"{lan.url}/api/models/cnn", timeout=30).json()["name"] == "CNN · shipped · 99.35%"


def test_a_name_of_80_characters_is_fine(lan):
    response = rename(lan, "mlp", {"name": "m" * 80})
    assert response.status_code == 200
    assert rename(lan, "mlp", {"name": "MLP · shipped · 98.84%"}).status_code == 200


def test_renaming_an_unknown_model_is_404(lan):
    assert rename(lan, "no-such-model", {"name": "x"}).status_code == 404
    assert rename(lan, "..%2Fmodels%2Fcnn", {"name": "x"}).status_code == 404  # not a way out of the store


@pytest.mark.parametrize("headers, status", [({}, 401), ({"Authorization": "Bearer wrong"}, 403)])
def test_only_the_teacher_renames(lan, headers, status):
    response = rename(lan, "cnn", {"name": "Hacked"}, headers=headers)
    assert response.status_code == status and "error" in response.json()
    assert requests.get(f"{lan.url}/api/models/cnn", timeout=30).json()["name"] != "Hacked"


def test_a_deleted_models_name_goes_with_it(lan, tmp_path):
    extra = "cnn-20261129-020000-beef"
    models = lan.home / "models"
    shutil.copy(models / f"{SAMPLE_ID}.keras", models / f"{extra}.keras")
    (models / f"{extra}.json").write_text(json.dumps({**SAMPLE_META, "id": extra}))
    for _ in range(30):  # the store looks at its folder again within a second
        if rename(lan, extra, {"name": "Soon gone"}).status_code == 200:
            break
        time.sleep(0.2)
    assert requests.delete(f"{lan.url}/api/models/{extra}", headers=TEACHER, timeout=30).status_code == 200
    assert extra not in json.loads((models / NAMES_FILE).read_text())
