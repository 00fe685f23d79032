"""Synthetic digits "drawn in a browser", for checking models on canvas drawings.

The drawing machinery (variation, round-brush rendering) is the one training
uses, webapp/core/drawings.py; the styles here are a separate set, written
apart from the training styles, so the check measures how well a model reads
digits drawn in ways it never saw.

Templates are polylines in a unit box (x right, y down), one list per stroke,
in the order and direction people usually draw them.
"""
import io

import numpy as np
from PIL import Image

from webapp.core import drawings
from webapp.core.drawings import arc, bezier, figure_eight, join, line


# --- check styles: digit -> list of styles; a style is a list of strokes -----

TEMPLATES = {
    0: [
        # an ellipse drawn anticlockwise from the top, closing with a little overlap
        [arc(0.5, 0.5, 0.36, 0.5, -80, -440, 72)],
        # egg leaning right, drawn clockwise from the top left
        [join(arc(0.5, 0.5, 0.4, 0.5, -110, 235, 72))],
        # narrow oval, open at the top (the stroke does not quite close)
        [arc(0.5, 0.5, 0.28, 0.5, -70, -410, 72)],
    ],
    1: [
        [line((0.5, 0.0), (0.48, 1.0))],
        [line((0.43, 0.18), (0.56, 0.0), (0.55, 1.0))],
        [line((0.43, 0.18), (0.56, 0.0), (0.55, 1.0)), line((0.2, 1.0), (0.85, 1.0))],
    ],
    2: [
        # round top, diagonal, flat base
        [join(arc(0.5, 0.3, 0.38, 0.3, 200, 380, 40), bezier((0.87, 0.4), (0.7, 0.7), (0.1, 1.0)), line((0.9, 1.0)))],
        # with a loop where the diagonal meets the base
        [
            join(
                arc(0.5, 0.3, 0.38, 0.3, 195, 375, 40),
                bezier((0.87, 0.4), (0.65, 0.7), (0.28, 0.93)),
                arc(0.2, 0.87, 0.1, 0.09, 45, 400, 36),
                line((0.95, 0.97)),
            )
        ],
        # "Z-like" 2: short hook then a straight diagonal
        [join(arc(0.45, 0.25, 0.35, 0.25, 210, 360, 30), line((0.8, 0.25), (0.12, 1.0), (0.88, 0.98)))],
    ],
    3: [
        # two round bumps
        [join(arc(0.45, 0.25, 0.36, 0.25, 205, 450, 44), arc(0.45, 0.74, 0.42, 0.26, -90, 150, 44))],
        # flat top ("Ʒ")
        [join(line((0.15, 0.0), (0.85, 0.0), (0.4, 0.42)), arc(0.45, 0.72, 0.42, 0.28, -95, 150, 44))],
        # pointed middle: two bumps meeting in a sharp corner
        [join(arc(0.48, 0.24, 0.34, 0.24, 200, 465, 44), arc(0.48, 0.74, 0.4, 0.26, -120, 155, 44))],
    ],
    4: [
        # open: an "L" then the long downstroke
        [line((0.3, 0.0), (0.12, 0.62), (0.92, 0.62)), line((0.7, 0.15), (0.7, 1.0))],
        # closed: slanted side meets the downstroke at the top
        [line((0.68, 0.0), (0.08, 0.66), (0.92, 0.66)), line((0.68, 0.0), (0.68, 1.0))],
        # open, slanted first stroke, cross bar drawn well past the stem
        [line((0.45, 0.0), (0.1, 0.6), (0.95, 0.58)), line((0.72, 0.25), (0.7, 1.0))],
    ],
    5: [
        # stem and belly, then the flag
        [
            join(line((0.28, 0.0), (0.22, 0.45)), bezier((0.22, 0.45), (0.5, 0.3), (0.9, 0.45), (0.85, 0.8), (0.5, 1.05), (0.12, 0.88))),
            line((0.28, 0.0), (0.85, 0.0)),
        ],
        # one stroke: flag first, right to left
        [join(line((0.85, 0.0), (0.25, 0.02), (0.2, 0.45)), arc(0.45, 0.7, 0.38, 0.3, -125, 150, 44))],
        # rounder belly, shorter stem
        [
            join(line((0.3, 0.0), (0.25, 0.38)), arc(0.48, 0.67, 0.4, 0.33, -135, 145, 44)),
            line((0.3, 0.02), (0.9, 0.0)),
        ],
    ],
    6: [
        # curved stem into a round loop
        [join(bezier((0.75, 0.0), (0.35, 0.12), (0.14, 0.5), (0.18, 0.72)), arc(0.5, 0.72, 0.32, 0.28, 180, -170, 56))],
        # straight slanted stem, smaller loop
        [join(line((0.7, 0.0), (0.2, 0.7)), arc(0.5, 0.75, 0.3, 0.25, 190, -160, 56))],
        # big loop, short stem
        [join(bezier((0.7, 0.0), (0.3, 0.2), (0.12, 0.45)), arc(0.52, 0.65, 0.4, 0.35, 200, -140, 60))],
    ],
    7: [
        [line((0.08, 0.02), (0.92, 0.0), (0.38, 1.0))],
        [line((0.08, 0.02), (0.92, 0.0), (0.42, 1.0)), line((0.35, 0.52), (0.85, 0.5))],
        # small lead-in tick and a curved downstroke
        [join(line((0.08, 0.15), (0.1, 0.0), (0.9, 0.02)), bezier((0.9, 0.02), (0.6, 0.4), (0.45, 1.0)))],
    ],
    8: [
        [figure_eight()],
        # two separate loops, small one on top
        [arc(0.5, 0.23, 0.26, 0.23, -60, 310, 56), arc(0.5, 0.71, 0.36, 0.29, -90, 275, 60)],
        # figure eight with a bigger top
        [figure_eight(top=0.48, width=0.36)],
    ],
    9: [
        # loop then straight tail
        [join(arc(0.45, 0.27, 0.33, 0.27, -10, -380, 56), line((0.78, 0.3), (0.74, 1.0)))],
        # loop then curved tail
        [join(arc(0.45, 0.27, 0.33, 0.27, -10, -380, 56), bezier((0.78, 0.3), (0.8, 0.85), (0.45, 1.05), (0.2, 0.88)))],
        # loop then slanted stick, like an "a"-style 9
        [join(arc(0.4, 0.28, 0.32, 0.28, 0, -360, 56), line((0.72, 0.28), (0.55, 1.0)))],
    ],
}


# --- drawing them -------------------------------------------------------------


def strokes(digit: int, rng: np.random.Generator, **kw) -> list[list[tuple[float, float]]]:
    """Polylines, in canvas pixels, of one randomly varied `digit` in a check style."""
    return drawings.strokes(digit, rng, TEMPLATES, **kw)


def drawn_digit(digit: int, rng: np.random.Generator, **kw) -> Image.Image:
    """One digit in a check style as a user might draw it (random brush and background)."""
    return drawings.drawn_digit(digit, rng, TEMPLATES, **kw)


def drawn_set(n_per_digit: int = 100, seed: int = 0) -> tuple[list[Image.Image], np.ndarray]:
    """A deterministic set: n_per_digit drawings of each digit, digits interleaved."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(10), n_per_digit)
    return [drawn_digit(int(d), rng) for d in labels], labels


SENT_SIDE = 70  # static/js/drawing-pad.js sends the 280-pixel pad at this size


def canvas_png(image: Image.Image) -> bytes:
    """A drawing as the Draw page sends it: shrunk to SENT_SIDE pixels, an RGBA PNG (what a canvas encodes)."""
    canvas = Image.new("RGBA", image.size, "white")  # the pad's paper: opaque, as a canvas is
    canvas.alpha_composite(image.convert("RGBA"))
    buffer = io.BytesIO()
    canvas.resize((SENT_SIDE, SENT_SIDE), Image.Resampling.BOX).save(buffer, "PNG")
    return buffer.getvalue()
