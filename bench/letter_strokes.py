"""Synthetic letters "drawn in a browser", for measuring letter models (bench/class_data.py).

The drawing machinery (variation, round brush) is the one training uses, webapp/core/drawings.py; the styles here
are written apart from the training styles (webapp/core/letters.py): other proportions, stroke orders, curves and
flourishes, so the bench measures how well a model reads letters drawn in ways its synthetic drawings never showed.
"""
import numpy as np

from webapp.core import drawings
from webapp.core.drawings import arc, bezier, join, line

# --- check styles: letter -> list of styles; a style is a list of strokes ---------

TEMPLATES = {
    "A": [
        # rounded top, bar low, drawn as one stroke then the bar
        [join(bezier((0.05, 1.0), (0.3, -0.2), (0.7, -0.2), (0.95, 1.0))), line((0.15, 0.68), (0.85, 0.68))],
        # narrow, the bar crossing past both legs
        [line((0.2, 1.0), (0.5, 0.0), (0.8, 1.0)), line((0.1, 0.55), (0.9, 0.55))],
    ],
    "B": [
        # bumps of equal size, drawn separately from the stem
        [line((0.15, 0.0), (0.15, 1.0)), join(line((0.15, 0.02), (0.45, 0.0)), arc(0.45, 0.25, 0.4, 0.25, -90, 90, 30)),
         join(line((0.15, 0.5), (0.45, 0.5)), arc(0.45, 0.75, 0.45, 0.25, -90, 90, 30), line((0.15, 1.0)))],
        # pointed bumps
        [join(line((0.1, 0.0), (0.1, 1.0), (0.7, 0.95), (0.9, 0.72), (0.6, 0.5), (0.1, 0.5), (0.55, 0.45), (0.75, 0.22),
               (0.55, 0.0), (0.1, 0.0)))],
    ],
    "C": [
        # nearly closed, drawn from the bottom up (clockwise)
        [arc(0.5, 0.5, 0.42, 0.5, 60, 320, 56)],
        # squarish
        [line((0.9, 0.05), (0.1, 0.0), (0.08, 1.0), (0.9, 0.95))],
    ],
    "D": [
        # a D whose bowl starts above the stem
        [line((0.15, 0.0), (0.15, 1.0)), bezier((0.0, 0.05), (1.3, -0.1), (1.2, 1.1), (0.05, 0.97))],
        # angular bowl
        [join(line((0.1, 0.0), (0.1, 1.0), (0.65, 0.95), (0.95, 0.5), (0.65, 0.05), (0.1, 0.0)))],
    ],
    "E": [
        # round E, like a backwards 3
        [join(arc(0.55, 0.27, 0.4, 0.27, -20, -270, 30), arc(0.55, 0.73, 0.42, 0.27, -90, -340, 30)),
         line((0.15, 0.5), (0.55, 0.5))],
        # short middle bar, long top and base
        [line((0.9, 0.0), (0.15, 0.0)), line((0.15, 0.0), (0.15, 1.0), (0.95, 1.0)), line((0.15, 0.5), (0.5, 0.5))],
    ],
    "F": [
        # top bar curls into the stem
        [join(line((0.95, 0.05)), bezier((0.95, 0.05), (0.3, -0.1), (0.3, 0.2)), line((0.3, 1.0))),
         line((0.1, 0.45), (0.7, 0.45))],
        # bar low
        [line((0.1, 1.0), (0.1, 0.0), (0.9, 0.0)), line((0.1, 0.6), (0.6, 0.6))],
    ],
    "G": [
        # a G with a vertical spur down
        [join(arc(0.5, 0.5, 0.45, 0.5, -30, -360, 56), line((0.95, 0.95))), line((0.6, 0.55), (0.95, 0.55))],
        # squarish G
        [line((0.9, 0.0), (0.1, 0.0), (0.1, 1.0), (0.9, 1.0), (0.9, 0.55), (0.5, 0.55))],
    ],
    "H": [
        # legs lean out, bar drawn past them
        [line((0.2, 0.0), (0.1, 1.0)), line((0.8, 0.0), (0.9, 1.0)), line((0.05, 0.55), (0.95, 0.5))],
        # one stroke: down, back up, across, down
        [line((0.1, 0.0), (0.1, 1.0), (0.1, 0.5), (0.9, 0.5)), line((0.9, 0.0), (0.9, 1.0))],
    ],
    "I": [
        # a top bar only, drawn after the stem
        [line((0.5, 0.0), (0.5, 1.0)), line((0.25, 0.0), (0.75, 0.0))],
        # a slightly bent stroke
        [bezier((0.45, 0.0), (0.6, 0.5), (0.5, 1.0))],
    ],
    "J": [
        # deep hook
        [join(line((0.75, 0.0), (0.75, 0.55)), arc(0.45, 0.55, 0.3, 0.42, 0, 200, 30))],
        # wide top bar, small hook
        [line((0.1, 0.0), (0.9, 0.0)), join(line((0.6, 0.0), (0.6, 0.85)), arc(0.42, 0.85, 0.18, 0.15, 0, 180, 20))],
    ],
    "K": [
        # the arm and leg meet at the stem, drawn as one stroke
        [line((0.15, 0.0), (0.15, 1.0)), line((0.9, 0.05), (0.15, 0.5), (0.95, 0.95))],
        # a curved leg
        [line((0.15, 0.0), (0.15, 1.0)), line((0.8, 0.0), (0.2, 0.5)), bezier((0.2, 0.5), (0.7, 0.5), (0.9, 1.0))],
    ],
    "L": [
        # short base
        [line((0.3, 0.0), (0.3, 1.0), (0.7, 1.0))],
        # curled foot
        [join(line((0.2, 0.0), (0.2, 0.9)), bezier((0.2, 0.9), (0.3, 1.05), (0.9, 1.0)))],
    ],
    "M": [
        # rounded humps
        [join(line((0.05, 1.0), (0.05, 0.2)), arc(0.275, 0.25, 0.225, 0.25, 180, 360, 20), line((0.5, 0.7)),
              line((0.5, 0.25)), arc(0.725, 0.25, 0.225, 0.25, 180, 360, 20), line((0.95, 1.0)))],
        # splayed legs, shallow middle
        [line((0.0, 1.0), (0.2, 0.0), (0.5, 0.45), (0.8, 0.0), (1.0, 1.0))],
    ],
    "N": [
        # curved diagonal
        [line((0.1, 1.0), (0.1, 0.0)), bezier((0.1, 0.0), (0.4, 0.6), (0.9, 1.0)), line((0.9, 1.0), (0.9, 0.0))],
        # slanted, like a lightning strike
        [line((0.05, 1.0), (0.25, 0.0), (0.75, 1.0), (0.95, 0.0))],
    ],
    "O": [
        # drawn clockwise from the bottom
        [arc(0.5, 0.5, 0.4, 0.5, 90, 450, 64)],
        # egg, small at the top
        [join(bezier((0.5, 0.0), (-0.1, 0.05), (-0.05, 1.05), (0.5, 1.0)),
              bezier((0.5, 1.0), (1.05, 0.95), (1.1, 0.05), (0.5, 0.0)))],
    ],
    "P": [
        # small high bowl
        [line((0.15, 0.0), (0.15, 1.0)), join(line((0.15, 0.0), (0.55, 0.0)), arc(0.55, 0.2, 0.3, 0.2, -90, 90, 24),
                                                line((0.15, 0.4)))],
        # bowl that does not close on the stem
        [line((0.2, 1.0), (0.2, 0.0)), join(line((0.2, 0.0), (0.5, 0.0)), arc(0.5, 0.28, 0.45, 0.28, -90, 120, 30))],
    ],
    "Q": [
        # tail through the bottom, drawn as part of the stroke
        [join(arc(0.5, 0.45, 0.42, 0.45, 60, 420, 64), line((0.95, 1.0)))],
        # small tail at the bottom middle
        [arc(0.5, 0.45, 0.45, 0.45, -90, 270, 64), line((0.45, 0.85), (0.65, 1.05))],
    ],
    "R": [
        # the leg leaves from the bowl's end at the stem
        [line((0.1, 1.0), (0.1, 0.0)), join(line((0.1, 0.0), (0.6, 0.0)), arc(0.6, 0.24, 0.3, 0.24, -90, 90, 24),
                                              line((0.1, 0.48), (0.95, 1.0)))],
        # angular bowl, curved leg
        [join(line((0.1, 1.0), (0.1, 0.0), (0.8, 0.05), (0.85, 0.4), (0.15, 0.5)),
              bezier((0.15, 0.5), (0.6, 0.5), (0.7, 1.0), (0.95, 1.0)))],
    ],
    "S": [
        # angular S
        [line((0.9, 0.0), (0.1, 0.0), (0.1, 0.5), (0.9, 0.5), (0.9, 1.0), (0.1, 1.0))],
        # small top, big bottom
        [join(arc(0.55, 0.2, 0.3, 0.2, -10, -270, 30), arc(0.5, 0.7, 0.45, 0.3, -90, 170, 36))],
    ],
    "T": [
        # curved top bar
        [bezier((0.0, 0.1), (0.5, -0.1), (1.0, 0.1)), line((0.55, 0.0), (0.45, 1.0))],
        # slanted bar, the stem hooked at its foot
        [line((0.05, 0.1), (0.95, -0.05)),
         join(line((0.5, 0.03), (0.5, 0.85)), arc(0.35, 0.85, 0.15, 0.15, 0, 140, 16))],
    ],
    "U": [
        # V-like bottom
        [bezier((0.1, 0.0), (0.1, 1.3), (0.9, 1.3), (0.9, 0.0))],
        # square bottom
        [line((0.1, 0.0), (0.1, 1.0), (0.9, 1.0), (0.9, 0.0))],
    ],
    "V": [
        # curved sides
        [join(bezier((0.0, 0.0), (0.3, 0.4), (0.5, 1.0)), bezier((0.5, 1.0), (0.7, 0.4), (1.0, 0.0)))],
        # narrow with a flick
        [line((0.1, 0.1), (0.2, 0.0), (0.5, 1.0), (0.85, 0.0))],
    ],
    "W": [
        # rounded bottoms
        [join(bezier((0.0, 0.0), (0.05, 1.2), (0.45, 1.1), (0.5, 0.3)),
              bezier((0.5, 0.3), (0.55, 1.1), (0.95, 1.2), (1.0, 0.0)))],
        # two Vs drawn apart
        [line((0.0, 0.0), (0.25, 1.0), (0.5, 0.1)), line((0.5, 0.1), (0.75, 1.0), (1.0, 0.0))],
    ],
    "X": [
        # crossing high
        [line((0.15, 0.0), (0.85, 1.0)), line((0.75, 0.0), (0.2, 1.0))],
        # curved strokes
        [bezier((0.1, 0.0), (0.6, 0.4), (0.9, 1.0)), bezier((0.9, 0.0), (0.4, 0.4), (0.1, 1.0))],
    ],
    "Y": [
        # arms meet low
        [line((0.1, 0.0), (0.5, 0.65), (0.9, 0.0)), line((0.5, 0.65), (0.5, 1.0))],
        # like a small y: a cup and a long tail
        [join(bezier((0.1, 0.0), (0.1, 0.5), (0.6, 0.5), (0.85, 0.1))), line((0.85, 0.0), (0.3, 1.0))],
    ],
    "Z": [
        # curved diagonal and a curly base
        [join(line((0.1, 0.05), (0.9, 0.0)), bezier((0.9, 0.0), (0.4, 0.5), (0.1, 1.0)),
              bezier((0.1, 1.0), (0.5, 0.85), (0.95, 1.05)))],
        # serifs turned down at the top and up at the base
        [line((0.05, 0.15), (0.05, 0.0), (0.95, 0.0), (0.05, 1.0), (0.95, 1.0), (0.95, 0.85))],
    ],
}


def drawn_letter(letter, rng, **kw):
    """One letter in a check style as a user might draw it (random brush and background)."""
    return drawings.drawn_digit(letter, rng, TEMPLATES, **kw)


def drawn_set(letters, n_per_letter, seed=0):
    """A deterministic set: n_per_letter drawings of each letter, letters interleaved; (images, letter indices)."""
    rng = np.random.default_rng(seed)
    indices = np.tile(np.arange(len(letters)), n_per_letter)
    return [drawn_letter(letters[i], rng) for i in indices], indices
