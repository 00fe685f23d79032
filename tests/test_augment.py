"""Training data for browser drawings: distorted MNIST and synthetic canvas drawings."""
import json
import subprocess
import sys

import numpy as np
import pytest

from bench.strokes import TEMPLATES as CHECK_STYLES
from conftest import ROOT
from webapp.core import drawings
from webapp.core.augment import AugmentedDigits, distort
from webapp.core.datasets import load_mnist
from webapp.core.drawings import STYLES, drawn_digits, drawn_digits_in_parallel
from webapp.core.training import DRAWINGS_PER


@pytest.fixture(scope="module")
def sample():
    return load_mnist("sample")


def centre_of_mass(image):
    ys, xs = np.indices(image.shape)
    return (ys * image).sum() / image.sum(), (xs * image).sum() / image.sum()


def test_a_distorted_digit_is_a_new_mnist_style_image(sample):
    digit = sample.x_train[0]
    changed = distort(digit, np.random.default_rng(1))
    assert changed.shape == (28, 28) and changed.dtype == np.float32
    assert 0.0 <= changed.min() and changed.max() <= 1.0
    assert np.abs(changed - digit).mean() > 0.01
    assert np.allclose(centre_of_mass(changed), (14, 14), atol=1.0)  # back through MNIST's recipe
    assert np.array_equal(changed, distort(digit, np.random.default_rng(1)))  # a seed gives one variant


def test_augmented_batches_keep_images_and_labels_together(sample):
    untouched = AugmentedDigits(sample.x_train, sample.y_train, 32, fraction=0.0, seed=3)
    images, labels = untouched[0]
    picked = untouched.order[:32]
    assert np.array_equal(images, sample.x_train[picked]) and np.array_equal(labels, sample.y_train[picked])

    distorted = AugmentedDigits(sample.x_train, sample.y_train, 32, fraction=1.0, seed=3, reshape=(-1, 784))
    images, labels = distorted[0]
    assert images.shape == (32, 784) and np.array_equal(labels, sample.y_train[picked])
    assert not np.array_equal(images, sample.x_train[picked].reshape(-1, 784))
    assert len(distorted) == -(-len(sample.x_train) // 32)


def test_drawn_digits_are_labelled_mnist_style_images():
    images, labels = drawn_digits(40, seed=5)
    assert images.shape == (40, 28, 28) and images.dtype == np.float32
    assert list(labels[:12]) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert (images.reshape(40, -1).max(axis=1) == 1.0).all()  # none blank
    for image in images:
        assert np.allclose(centre_of_mass(image), (14, 14), atol=1.0)
    again, _ = drawn_digits(40, seed=5)
    other, _ = drawn_digits(40, seed=6)
    assert np.array_equal(images, again) and not np.array_equal(images, other)


def test_drawing_on_every_core_gives_the_same_set_as_drawing_in_chunks():
    images, labels = drawn_digits_in_parallel(25, seed=2, chunk=10)
    expected = [drawn_digits(size, seed=2 * 1000 + i) for i, size in enumerate([10, 10, 5])]
    assert np.array_equal(images, np.concatenate([e[0] for e in expected]))
    assert np.array_equal(labels, np.concatenate([e[1] for e in expected]))


def test_drawing_stops_when_asked():
    assert drawn_digits_in_parallel(30, chunk=10, should_stop=lambda: True) is None


def test_training_styles_are_not_the_check_styles():
    """The drawn-digit check (bench/strokes.py) must measure styles the model never trained on."""
    def key(style):
        return tuple(tuple(np.round(np.asarray(stroke, dtype=float), 3).ravel()) for stroke in style)

    for digit in range(10):
        assert STYLES[digit] and CHECK_STYLES[digit]
        assert not {key(s) for s in STYLES[digit]} & {key(s) for s in CHECK_STYLES[digit]}
    assert drawings.strokes(6, np.random.default_rng(0))  # the default styles are the training ones


def test_training_with_augment_mixes_in_synthetic_drawings(tmp_path, sample):
    result = subprocess.run([sys.executable, "-m", "webapp", "train", "cnn", "--epochs", "1", "--augment",
                             "--data", "sample", "--out", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / "cnn.json").read_text())
    assert meta["recipe"]["augment"] is True
    assert meta["drawings"] == len(sample.x_train) // DRAWINGS_PER > 0
