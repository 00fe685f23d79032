"""Letters A-Z as synthetic canvas drawings (core.letters): every letter draws and becomes a 28x28 input with ink,
and the bench's letter styles are not the training ones."""
import io
import string

import numpy as np
import pytest

from bench import letter_strokes
from webapp.core import drawings, letters
from webapp.core.preprocess import preprocess

ALPHABET = list(string.ascii_uppercase)


def png(image):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("letter", ALPHABET)
def test_every_letter_draws_and_preprocesses_to_28x28_ink(letter):
    rng = np.random.default_rng(ALPHABET.index(letter))
    for style in range(len(letters.STYLES[letter])):
        image = letters.drawn_letter(letter, rng, styles={letter: [letters.STYLES[letter][style]]})
        assert image.size == (drawings.CANVAS, drawings.CANVAS)
        x = preprocess(png(image))  # the app's own path: BlankImage would mean nothing was drawn
        assert x.shape == (28, 28) and x.max() == pytest.approx(1.0) and 30 < (x > 0.5).sum() < 400


def test_labels_get_synthetic_drawings_where_the_project_can_draw_them():
    labels = ["B", "7", "b", "smiley", "Z"]
    assert letters.drawable(labels) == [0, 1, 4]  # upper-case letters and digits only
    images, indices = letters.drawn_labels(labels, 3, seed=1)
    assert images.shape == (9, 28, 28) and images.dtype == np.float32
    assert sorted(indices.tolist()) == [0, 0, 0, 1, 1, 1, 4, 4, 4]
    assert all(image.max() == pytest.approx(1.0) for image in images)
    again, _ = letters.drawn_labels(labels, 3, seed=1)
    assert np.array_equal(images, again)  # a job's seed gives the same drawings
    assert letters.drawn_labels(["smiley"], 3)[0].shape == (0, 28, 28)


def test_drawing_small_gives_the_same_28x28_as_a_full_canvas():
    """Synthetic letters are drawn at 140 pixels, the size the preprocessor shrinks a canvas to."""
    small = letters.drawn_letter("R", np.random.default_rng(4), size=letters.SMALL_CANVAS, background="white")
    full = letters.drawn_letter("R", np.random.default_rng(4), background="white")
    assert small.size == (letters.SMALL_CANVAS,) * 2
    assert np.abs(preprocess(png(small)) - preprocess(png(full))).mean() < 0.03


def test_a_cancelled_drawing_run_stops():
    assert letters.drawn_labels(ALPHABET, 10, should_stop=lambda: True) is None


def test_the_bench_letters_are_drawn_in_styles_training_never_sees():
    assert set(letter_strokes.TEMPLATES) == set(letters.STYLES) == set(ALPHABET)
    for letter in ALPHABET:
        for bench_style in letter_strokes.TEMPLATES[letter]:
            for training_style in letters.STYLES[letter]:
                assert not same_style(bench_style, training_style), letter


def same_style(a, b):
    return len(a) == len(b) and all(len(p) == len(q) and np.allclose(p, q, atol=0.05) for p, q in zip(a, b))
