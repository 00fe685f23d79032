"""Letters A-Z drawn the way people draw them on our canvas, and synthetic drawings for any label list.

The tutorial ends: "you just have to increase the number of network outputs and find a suitable set of pictures
for training". A class collects a few drawings per letter; these made-up ones fill in the rest, so that five of the
class's drawings per letter already give a usable model.

Styles work as in drawings.py (whose variation and round brush they reuse): a style is a list of strokes, a stroke
a polyline in a unit box (x right, y down), in the order and direction people usually draw it. bench/letter_strokes.py
holds a separate set for measuring, written apart from these.
"""
import numpy as np

from webapp.core import drawings
from webapp.core.drawings import arc, bezier, join, line
from webapp.core.preprocess import ink_map, to_mnist

SMALL_CANVAS = 140  # drawn at the size the preprocessor shrinks a canvas to: half the time, the same 28x28


# --- training styles: letter -> list of styles ----------------------------------

STYLES = {
    "A": [
        [line((0.0, 1.0), (0.5, 0.0), (1.0, 1.0)), line((0.22, 0.6), (0.78, 0.6))],
        # two legs from the apex, a high bar
        [line((0.5, 0.0), (0.05, 1.0)), line((0.5, 0.0), (0.95, 1.0)), line((0.28, 0.5), (0.72, 0.5))],
    ],
    "B": [
        [line((0.1, 0.0), (0.1, 1.0)),
         join(line((0.1, 0.0), (0.5, 0.0)), arc(0.5, 0.24, 0.34, 0.24, -90, 90, 30), line((0.1, 0.48), (0.55, 0.48)),
              arc(0.55, 0.74, 0.38, 0.26, -90, 90, 30), line((0.1, 1.0)))],
        # one stroke: down, back up, both bumps
        [join(line((0.1, 1.0), (0.1, 0.0), (0.45, 0.0)), arc(0.45, 0.24, 0.38, 0.24, -90, 90, 30),
              line((0.15, 0.48), (0.5, 0.48)), arc(0.5, 0.74, 0.42, 0.26, -90, 90, 30), line((0.1, 1.0)))],
    ],
    "C": [
        [arc(0.55, 0.5, 0.45, 0.5, -40, -320, 56)],
        [arc(0.5, 0.5, 0.5, 0.5, -55, -305, 56)],
    ],
    "D": [
        [line((0.1, 0.0), (0.1, 1.0)), join(line((0.1, 0.0), (0.4, 0.0)), arc(0.4, 0.5, 0.5, 0.5, -90, 90, 40),
                                              line((0.1, 1.0)))],
        [join(line((0.1, 1.0), (0.1, 0.0)), bezier((0.1, 0.0), (1.15, -0.05), (1.15, 1.05), (0.1, 1.0)))],
    ],
    "E": [
        [line((0.85, 0.0), (0.1, 0.0), (0.1, 1.0), (0.85, 1.0)), line((0.1, 0.5), (0.7, 0.5))],
        [line((0.1, 0.0), (0.1, 1.0)), line((0.1, 0.0), (0.85, 0.0)), line((0.1, 0.5), (0.65, 0.5)),
         line((0.1, 1.0), (0.85, 1.0))],
    ],
    "F": [
        [line((0.1, 1.0), (0.1, 0.0), (0.85, 0.0)), line((0.1, 0.48), (0.7, 0.48))],
        [line((0.15, 0.0), (0.12, 1.0)), line((0.15, 0.0), (0.9, 0.02)), line((0.12, 0.45), (0.6, 0.45))],
    ],
    "G": [
        [join(arc(0.5, 0.5, 0.45, 0.5, -40, -360, 56), line((0.6, 0.5)))],
        [join(arc(0.5, 0.5, 0.45, 0.5, -45, -335, 56), line((0.92, 0.55), (0.6, 0.55)))],
    ],
    "H": [
        [line((0.1, 0.0), (0.1, 1.0)), line((0.9, 0.0), (0.9, 1.0)), line((0.1, 0.5), (0.9, 0.5))],
        [line((0.15, 0.0), (0.15, 1.0)), line((0.15, 0.45), (0.85, 0.45)), line((0.85, 0.0), (0.85, 1.0))],
    ],
    "I": [
        [line((0.5, 0.0), (0.5, 1.0))],
        [line((0.2, 0.0), (0.8, 0.0)), line((0.5, 0.0), (0.5, 1.0)), line((0.2, 1.0), (0.8, 1.0))],
    ],
    "J": [
        [join(line((0.7, 0.0), (0.7, 0.7)), arc(0.4, 0.7, 0.3, 0.3, 0, 180, 30))],
        [line((0.3, 0.0), (0.95, 0.0)), join(line((0.65, 0.0), (0.65, 0.72)), arc(0.38, 0.72, 0.27, 0.28, 0, 170, 30))],
    ],
    "K": [
        [line((0.1, 0.0), (0.1, 1.0)), line((0.85, 0.0), (0.1, 0.55), (0.85, 1.0))],
        [line((0.1, 0.0), (0.1, 1.0)), line((0.85, 0.0), (0.12, 0.5)), line((0.35, 0.35), (0.9, 1.0))],
    ],
    "L": [
        [line((0.1, 0.0), (0.1, 1.0), (0.8, 1.0))],
        [line((0.2, 0.0), (0.15, 1.0)), line((0.15, 1.0), (0.9, 0.98))],
    ],
    "M": [
        [line((0.05, 1.0), (0.1, 0.0), (0.5, 0.6), (0.9, 0.0), (0.95, 1.0))],
        [line((0.05, 1.0), (0.05, 0.0), (0.5, 1.0), (0.95, 0.0), (0.95, 1.0))],
    ],
    "N": [
        [line((0.1, 1.0), (0.1, 0.0), (0.9, 1.0), (0.9, 0.0))],
        [line((0.1, 0.0), (0.1, 1.0)), line((0.1, 0.0), (0.9, 1.0)), line((0.9, 1.0), (0.9, 0.0))],
    ],
    "O": [
        [arc(0.5, 0.5, 0.45, 0.5, -90, -450, 64)],
        [arc(0.5, 0.5, 0.5, 0.48, -100, 270, 64)],
    ],
    "P": [
        [line((0.1, 1.0), (0.1, 0.0)),
         join(line((0.1, 0.0), (0.5, 0.0)), arc(0.5, 0.27, 0.4, 0.27, -90, 90, 30), line((0.1, 0.54)))],
        [join(line((0.1, 1.0), (0.1, 0.0), (0.5, 0.0)), arc(0.5, 0.25, 0.42, 0.25, -90, 90, 30), line((0.1, 0.5)))],
    ],
    "Q": [
        [arc(0.5, 0.5, 0.45, 0.5, -90, -450, 64), line((0.6, 0.7), (0.95, 1.05))],
        [arc(0.5, 0.48, 0.48, 0.48, -100, 270, 64), line((0.7, 0.8), (1.0, 1.0))],
    ],
    "R": [
        [line((0.1, 1.0), (0.1, 0.0)),
         join(line((0.1, 0.0), (0.5, 0.0)), arc(0.5, 0.27, 0.4, 0.27, -90, 90, 30), line((0.1, 0.54))),
         line((0.4, 0.54), (0.9, 1.0))],
        [join(line((0.1, 1.0), (0.1, 0.0), (0.5, 0.0)), arc(0.5, 0.26, 0.38, 0.26, -90, 90, 30),
              line((0.1, 0.52), (0.9, 1.0)))],
    ],
    "S": [
        [join(arc(0.5, 0.25, 0.4, 0.25, -20, -270, 40), arc(0.5, 0.75, 0.4, 0.25, -90, 160, 40))],
        [bezier((0.9, 0.1), (0.5, -0.1), (0.0, 0.1), (0.2, 0.45), (0.8, 0.55), (1.0, 0.9), (0.5, 1.1), (0.1, 0.9),
                n=60)],
    ],
    "T": [
        [line((0.05, 0.0), (0.95, 0.0)), line((0.5, 0.0), (0.5, 1.0))],
        [line((0.5, 0.02), (0.48, 1.0)), line((0.1, 0.0), (0.9, 0.04))],
    ],
    "U": [
        [join(line((0.1, 0.0), (0.1, 0.6)), arc(0.5, 0.6, 0.4, 0.4, 180, 0, 30), line((0.9, 0.0)))],
        [join(line((0.1, 0.0), (0.1, 0.6)), arc(0.5, 0.6, 0.4, 0.4, 180, 0, 30), line((0.9, 0.0))),
         line((0.9, 0.0), (0.92, 1.0))],
    ],
    "V": [
        [line((0.05, 0.0), (0.5, 1.0), (0.95, 0.0))],
        [line((0.0, 0.0), (0.45, 1.0)), line((0.45, 1.0), (1.0, 0.0))],
    ],
    "W": [
        [line((0.0, 0.0), (0.25, 1.0), (0.5, 0.3), (0.75, 1.0), (1.0, 0.0))],
        [line((0.0, 0.0), (0.2, 1.0), (0.5, 0.0), (0.8, 1.0), (1.0, 0.0))],
    ],
    "X": [
        [line((0.1, 0.0), (0.9, 1.0)), line((0.9, 0.0), (0.1, 1.0))],
        [line((0.9, 0.0), (0.1, 1.0)), line((0.1, 0.0), (0.9, 1.0))],
    ],
    "Y": [
        [line((0.05, 0.0), (0.5, 0.5)), line((0.95, 0.0), (0.5, 0.5), (0.5, 1.0))],
        [line((0.1, 0.0), (0.5, 0.5)), line((0.9, 0.0), (0.1, 1.0))],
    ],
    "Z": [
        [line((0.1, 0.0), (0.9, 0.0), (0.1, 1.0), (0.9, 1.0))],
        [line((0.1, 0.0), (0.9, 0.0), (0.1, 1.0), (0.9, 1.0)), line((0.3, 0.5), (0.7, 0.5))],
    ],
}


def styles_for(label):
    """The training styles of a label this module can draw (A-Z, 0-9), or None."""
    if label in STYLES:
        return STYLES[label]
    if len(label) == 1 and label.isdigit():
        return drawings.STYLES[int(label)]
    return None


def drawable(labels):
    """The indices of `labels` that get synthetic drawings."""
    return [i for i, label in enumerate(labels) if styles_for(label) is not None]


def drawn_letter(letter, rng, styles=None, **kw):
    """One letter as a user might draw it (random brush and background); `styles`: default STYLES."""
    return drawings.drawn_digit(letter, rng, styles or STYLES, **kw)


def drawn_labels(labels, per_label, seed=0, should_stop=lambda: False):
    """`per_label` drawings of every label this module can draw, labels in turn, as (N, 28, 28) float32
    MNIST-style images and their indices into `labels`. None if `should_stop()` turns true on the way."""
    styles = {i: styles_for(labels[i]) for i in drawable(labels)}
    order = np.tile(np.array(sorted(styles), dtype=np.int64), per_label)
    rng = np.random.default_rng(seed)
    images = np.zeros((len(order), 28, 28), dtype=np.float32)
    for n, index in enumerate(order):
        if n % 100 == 0 and should_stop():
            return None
        picture = drawings.drawn_digit(int(index), rng, styles, size=SMALL_CANVAS)
        images[n] = to_mnist(ink_map(picture))  # a 6 px brush at this size is never blank
    return images, order
