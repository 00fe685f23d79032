"""Training on a class's own drawings (core.class_training through run_job): letters, fine-tuning class-digits,
the hold-out, per-label accuracy, model metadata, cancelling, and refusals that say why."""
import json

import numpy as np
import pytest

from webapp.core import class_training, letters
from webapp.core.drawings import drawn_digits
from webapp.core.labelled_data import MIN_DRAWINGS_PER_LABEL, write_npz
from webapp.core.models import LoadError, check_digit_model, load_file
from webapp.core.modelstore import ModelStore
from webapp.core.job_progress import EventStream
from webapp.core.training import SpecError, parse_spec, run_job

from conftest import ROOT

LETTERS = ["A", "B", "C", "D", "E"]


@pytest.fixture(autouse=True)
def small_epochs(monkeypatch):
    """Tiny epochs: the tests check what a job does, not how well it learns (bench/class_data.py measures that)."""
    monkeypatch.setattr(class_training, "SYNTHETIC_PER_LABEL", 12)
    monkeypatch.setattr(class_training, "MIN_EPOCH", 192)
    monkeypatch.setattr(class_training, "FINE_TUNE_MNIST_PER_EPOCH", 256)


def dataset_spec(npz, labels, dataset_id="letters", base_model=None, **params):
    spec = parse_spec({"net": "cnn", "epochs": 1, "data": dataset_id, **params})
    spec.dataset = {"id": dataset_id, "name": dataset_id.title(), "labels": labels, "npz": str(npz),
                    "base_model": base_model}
    return spec


def run(spec, store, should_stop=lambda: False):
    events = []
    final = run_job(spec, EventStream("job", events.append), should_stop, store)
    return final, events


def letters_file(path, labels=LETTERS, per_label=MIN_DRAWINGS_PER_LABEL, seed=7):
    images, indices = letters.drawn_labels(labels, per_label, seed=seed)
    write_npz(path, images, indices, labels)
    return path


def test_a_letters_job_trains_a_network_with_one_output_per_label(tmp_path):
    store = ModelStore(tmp_path / "models")
    final, events = run(dataset_spec(letters_file(tmp_path / "letters.npz"), LETTERS), store)
    assert final["state"] == "succeeded", final.get("error")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    kinds = {e["type"] for e in events}
    assert {"state", "batch", "epoch", "done"} <= kinds

    result = final["result"]
    per_label = result["per_label"]
    assert per_label["labels"] == LETTERS and per_label["before"] is None
    assert per_label["held_out"] == {label: 1 for label in LETTERS}  # a fifth of five: one of each
    assert set(per_label["after"]) == set(LETTERS) and all(0 <= a <= 1 for a in per_label["after"].values())
    assert result["test_accuracy"] == result["held_out_accuracy"] and result["test_samples"] == len(LETTERS)
    assert "confusion" not in result  # the page offers "Use this model" (as the digit default) only with one

    meta = json.loads((tmp_path / "models" / f"{result['model']}.json").read_text())
    assert meta["labels"] == LETTERS and meta["dataset"] == "letters" and meta["dataset_name"] == "Letters"
    assert meta["network"] == "cnn" and "base_model" not in meta
    assert "npz" not in json.dumps(meta["recipe"])  # no server path in what clients read
    model = load_file(store.path(result["model"]))
    assert model.output_shape[1:] == (len(LETTERS),)
    check_digit_model(model, labels=meta["labels"])  # what an inference worker checks for a labels model
    with pytest.raises(LoadError):
        check_digit_model(model)  # and it is no digit model


def test_fine_tuning_class_digits_reports_accuracy_per_digit_before_and_after(tmp_path):
    images, digits = drawn_digits(10 * MIN_DRAWINGS_PER_LABEL, seed=3)
    labels = [str(d) for d in range(10)]
    write_npz(tmp_path / "class-digits.npz", images, digits, labels)
    store = ModelStore(tmp_path / "models", shipped=[ROOT / "models"])
    shipped = (ROOT / "models" / "cnn.keras").read_bytes()
    final, events = run(dataset_spec(tmp_path / "class-digits.npz", labels, "class-digits", base_model="cnn"), store)
    assert final["state"] == "succeeded", final.get("error")

    result = final["result"]
    per_label = result["per_label"]
    assert per_label["labels"] == labels
    assert set(per_label["before"]) == set(labels) == set(per_label["after"])
    assert all(0 <= per_label["before"][d] <= 1 for d in labels)
    assert result["base_model"] == "cnn" and result["mnist"] == "sample"
    assert result["test_samples"] == 500 and len(result["confusion"]) == 10  # MNIST's test set (the sample's)

    meta = store.metadata(result["model"])
    assert "labels" not in meta  # a fine-tuned digit model stays a digit model
    assert meta["base_model"] == "cnn" and meta["dataset"] == "class-digits" and meta["data"]["sample"] is True
    check_digit_model(load_file(store.path(result["model"])))
    assert (ROOT / "models" / "cnn.keras").read_bytes() == shipped  # the model fine-tuned is left as it was
    assert next(e for e in events if e["type"] == "state")["mnist"] == "sample"


def test_a_digit_dataset_with_no_model_to_start_from_trains_a_digit_model_on_mnist_and_the_drawings(tmp_path):
    images, digits = drawn_digits(10 * MIN_DRAWINGS_PER_LABEL, seed=4)
    labels = [str(d) for d in reversed(range(10))]  # an imported file may list them in any order
    write_npz(tmp_path / "digits.npz", images, 9 - digits, labels)
    store = ModelStore(tmp_path / "models")
    final, _ = run(dataset_spec(tmp_path / "digits.npz", labels, "our-digits"), store)
    assert final["state"] == "succeeded", final.get("error")
    result = final["result"]
    assert result["per_label"]["labels"] == [str(d) for d in range(10)] and result["per_label"]["before"] is None
    assert result["test_samples"] == 500 and result["mnist"] == "sample"  # tested on MNIST's test digits
    meta = store.metadata(result["model"])
    assert "labels" not in meta and "base_model" not in meta and meta["dataset"] == "our-digits"
    check_digit_model(load_file(store.path(result["model"])))


def test_too_few_drawings_fail_saying_how_many_are_needed(tmp_path):
    npz = letters_file(tmp_path / "few.npz", per_label=MIN_DRAWINGS_PER_LABEL - 1)
    final, events = run(dataset_spec(npz, LETTERS), ModelStore(tmp_path / "models"))
    assert final["state"] == "failed"
    assert f"at least {MIN_DRAWINGS_PER_LABEL} drawings" in final["error"] and "'A' has 4" in final["error"]
    assert not list((tmp_path / "models").glob("*.keras"))


def test_a_dataset_job_without_its_file_fails_clearly(tmp_path):
    spec = parse_spec({"net": "cnn", "epochs": 1, "data": "letters"})  # the web never filled spec.dataset
    final, _ = run(spec, ModelStore(tmp_path / "models"))
    assert final["state"] == "failed" and "did not reach the job" in final["error"]

    missing = dataset_spec(tmp_path / "gone.npz", LETTERS)
    final, _ = run(missing, ModelStore(tmp_path / "models"))
    assert final["state"] == "failed" and "could not be read" in final["error"]
    assert str(tmp_path) not in final["error"]


def test_labels_it_cannot_draw_train_on_the_class_drawings_alone(tmp_path):
    images, indices = letters.drawn_labels(["A", "B"], MIN_DRAWINGS_PER_LABEL, seed=5)
    labels = ["A", "smiley"]  # the B drawings stand for smileys: nothing synthetic may join them
    write_npz(tmp_path / "mixed.npz", images, indices, labels)
    store = ModelStore(tmp_path / "models")
    final, events = run(dataset_spec(tmp_path / "mixed.npz", labels, "mixed"), store)
    assert final["state"] == "succeeded", final.get("error")
    stages = [e["stage"] for e in events if e.get("stage")]
    assert stages == [f"drawing {class_training.SYNTHETIC_PER_LABEL} examples of its labels to train on"]
    assert store.metadata(final["result"]["model"])["labels"] == labels


def test_a_dataset_job_stops_when_cancelled(tmp_path):
    events_seen = []

    def cancel_after_first_batch():
        return any(e["type"] == "batch" for e in events_seen)

    spec = dataset_spec(letters_file(tmp_path / "letters.npz"), LETTERS, epochs=3)
    store = ModelStore(tmp_path / "models")
    final = run_job(spec, EventStream("job", events_seen.append), cancel_after_first_batch, store)
    assert final["state"] == "cancelled"
    assert not [e for e in events_seen if e["type"] == "epoch" and e["epoch"] == 3]
    assert not list((tmp_path / "models").glob("*.keras"))


def test_the_hold_out_is_stratified_and_never_trained_on():
    labels = np.repeat(np.arange(3), [5, 10, 21])
    train, held = class_training.hold_out(labels, 3, seed=0)
    assert sorted(np.bincount(labels[held]).tolist()) == [1, 2, 4]  # a fifth of each, at least one
    assert not set(train) & set(held) and len(train) + len(held) == len(labels)


def test_a_job_may_name_a_dataset_by_its_id():
    assert parse_spec({"net": "cnn", "data": "letters-2"}).data == "letters-2"
    for bad in ("Letters", "../etc", "", "a" * 65, 7, None.__class__.__name__ + " x"):
        with pytest.raises(SpecError) as raised:
            parse_spec({"net": "cnn", "data": bad})
        assert raised.value.field == "data" and "dataset's id" in raised.value.message
    with pytest.raises(SpecError, match="XOR learns its four points"):
        parse_spec({"net": "xor", "data": "letters"})
    spec = parse_spec({"net": "mlp", "data": "letters"})
    spec.dataset = {"id": "letters", "name": "Letters", "labels": ["A"], "npz": "/srv/x.npz", "base_model": None}
    assert spec.public_dict()["dataset"] == {"id": "letters", "name": "Letters", "labels": ["A"], "base_model": None}
    assert spec.to_dict()["dataset"]["npz"] == "/srv/x.npz"  # the worker's child still gets it


def test_a_model_trained_on_a_dataset_is_named_after_it():
    from webapp.core.modelstore import model_name

    meta = {"network": "cnn", "dataset": "letters", "dataset_name": "Letters", "epochs": 8, "test_accuracy": 0.962,
            "labels": LETTERS}
    assert model_name(meta) == "CNN · Letters · 8 epochs · 96.2%"
