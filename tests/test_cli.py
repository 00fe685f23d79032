"""The command line mirrors the tutorial's scripts."""
import json
import subprocess
import sys

from conftest import ROOT
from drawing import drawn_png


def run(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "webapp", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, **kwargs)


def test_help_explains_train_and_predict():
    result = run("--help")
    assert result.returncode == 0 and "train" in result.stdout and "predict" in result.stdout
    train_help = run("train", "--help").stdout
    assert "--epochs" in train_help and "--mnist" in train_help and "models/" in train_help
    assert "image" in run("predict", "--help").stdout


def test_predict_prints_the_digit_and_its_probability(tmp_path):
    image = tmp_path / "digit_8.png"
    image.write_bytes(drawn_png(8, seed=9))
    result = run("predict", "cnn", str(image))
    assert result.returncode == 0, result.stderr
    digit, probability = result.stdout.split()
    assert digit == "8" and probability.startswith("(") and probability.endswith("%)")


def test_predict_errors_are_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    for args in (["cnn", str(tmp_path / "missing.png")], ["cnn", str(tmp_path / "notes.txt")],
                 ["nosuchmodel", str(tmp_path / "notes.txt")]):
        result = run("predict", *args)
        assert result.returncode == 1 and result.stderr.startswith("error:") and "Traceback" not in result.stderr


def test_train_saves_a_model_with_metadata(tmp_path):
    logs = tmp_path / "logs"
    result = run("train", "mlp", "--epochs", "1", "--hidden", "32", "--data", "sample", "--out", str(tmp_path),
                 "--tensorboard", str(logs))
    assert result.returncode == 0, result.stderr
    assert list((logs / "train").glob("events.out.tfevents.*")), "--tensorboard wrote no event file"
    meta = json.loads((tmp_path / "mlp.json").read_text())
    assert (tmp_path / "mlp.keras").is_file()
    assert meta["network"] == "mlp" and meta["epochs"] == 1 and 0 < meta["test_accuracy"] <= 1
    assert len(meta["data"]["sha256"]) == 64 and meta["seconds"] > 0 and meta["date"]
    assert meta["recipe"]["optimizer"] == "rmsprop" and meta["recipe"]["hidden"] == 32
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_train_rejects_bad_options_clearly(tmp_path):
    result = run("train", "cnn", "--epochs", "0", "--out", str(tmp_path))
    assert result.returncode == 1 and "--epochs" in result.stderr and "Traceback" not in result.stderr


def test_train_on_labelled_drawings_from_a_file(tmp_path):
    """--data FILE.npz (a class's dataset as exported): letters give a model with one output per label, saved
    beside, never over, the digit model."""
    from webapp.core import letters
    from webapp.core.labelled_data import write_npz

    labels = ["A", "B", "C"]
    images, indices = letters.drawn_labels(labels, 5, seed=2)
    write_npz(tmp_path / "Our Letters.npz", images, indices, labels)
    result = run("train", "cnn", "--data", str(tmp_path / "Our Letters.npz"), "--epochs", "1", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "held-out accuracy" in result.stdout and "  B: " in result.stdout
    meta = json.loads((tmp_path / "cnn-our-letters.json").read_text())
    assert meta["labels"] == labels and meta["dataset"] == "our-letters" and meta["network"] == "cnn"
    assert not (tmp_path / "cnn.keras").exists()

    few = tmp_path / "few.npz"
    write_npz(few, images[:6], indices[:6], labels)
    for data, words in ((few, "at least 5 drawings"), (tmp_path / "none.npz", "no file"),
                        (tmp_path / "cnn-our-letters.json", "not an npz file")):
        result = run("train", "cnn", "--data", str(data), "--epochs", "1", "--out", str(tmp_path))
        assert result.returncode == 1 and words in result.stderr and "Traceback" not in result.stderr
