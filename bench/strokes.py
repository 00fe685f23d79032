"""Synthetic digits "drawn in a browser", for checking models on canvas drawings.

MNIST digits were written with a pen, scanned and normalised; what people draw
on our 280x280 canvas with a mouse or finger is thicker, more slanted and more
oddly placed and sized. This module draws digits from stroke templates, with
the variation people bring (style, slant, size, position, tremor), so we can
measure how well a model reads browser drawings without collecting a human set.

Templates are polylines in a unit box (x right, y down), one list per stroke,
in the order and direction people usually draw them.
"""
import math

import numpy as np
from PIL import Image, ImageDraw

CANVAS = 280


# --- curve helpers (all in the unit box) -------------------------------------


def arc(cx, cy, rx, ry, start, stop, n=48):
    """Points of an elliptic arc; angles in degrees, 0 = right, 90 = down."""
    t = np.radians(np.linspace(start, stop, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t)))


def bezier(*ctrl, n=32):
    """Points of a Bezier curve through its control points (any degree)."""
    pts = np.asarray(ctrl, dtype=float)
    t = np.linspace(0.0, 1.0, n)[:, None]
    deg = len(pts) - 1
    out = sum(math.comb(deg, k) * t**k * (1 - t) ** (deg - k) * pts[k] for k in range(deg + 1))
    return [tuple(p) for p in out]


def join(*parts):
    """One stroke made of consecutive parts (duplicate joints are harmless)."""
    return [p for part in parts for p in part]


def line(*pts):
    return [tuple(p) for p in pts]


def _figure_eight(top=0.42, width=0.33, n=120):
    """One-stroke 8: start top right, round the top loop, cross, round the bottom."""
    t = np.linspace(0.35, 2 * np.pi + 0.5, n)
    y = 0.5 - 0.5 * np.cos(t)
    x = 0.5 - width * np.sin(2 * t) * np.where(y < 0.5, top / 0.5 * 0.9 + 0.1, 1.0)
    y = np.where(y < 0.5, y * (top / 0.5), top + (y - 0.5) * (1 - top) / 0.5)
    return list(zip(x, y))


# --- templates: digit -> list of styles; a style is a list of strokes --------

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
        [_figure_eight()],
        # two separate loops, small one on top
        [arc(0.5, 0.23, 0.26, 0.23, -60, 310, 56), arc(0.5, 0.71, 0.36, 0.29, -90, 275, 60)],
        # figure eight with a bigger top
        [_figure_eight(top=0.48, width=0.36)],
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


# --- random variation ---------------------------------------------------------


def _resample(points, step):
    """Evenly spaced points along a polyline, `step` apart (unit-box units)."""
    pts = np.asarray(points, dtype=float)
    seg = np.hypot(*np.diff(pts, axis=0).T)
    dist = np.concatenate([[0.0], np.cumsum(seg)])
    if dist[-1] <= 0:
        return pts[:1]
    at = np.linspace(0.0, dist[-1], max(2, int(dist[-1] / step) + 1))
    return np.column_stack([np.interp(at, dist, pts[:, 0]), np.interp(at, dist, pts[:, 1])])


def _trim_or_extend(pts, start, end):
    """Move a stroke's ends: positive = overshoot along the tangent, negative = gap."""
    def extend(p, amount):
        if amount >= 0:
            d = p[-1] - p[-2]
            d = d / (np.hypot(*d) or 1.0)
            extra = [p[-1] + d * amount * k / 4 for k in range(1, 5)]
            return np.vstack([p, extra])
        cut = int(round(-amount / 0.01))  # points are 0.01 apart
        return p[: max(2, len(p) - cut)]

    pts = extend(pts, end)
    return extend(pts[::-1], start)[::-1]


def _wobble(pts, rng, amplitude):
    """Smooth hand tremor: a few random sine waves along the stroke."""
    s = np.arange(len(pts)) * 0.01
    out = pts.copy()
    for axis in (0, 1):
        for _ in range(3):
            freq = rng.uniform(0.5, 3.5)
            out[:, axis] += amplitude * rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * freq * s + rng.uniform(0, 2 * np.pi))
    return out


def strokes(digit: int, rng: np.random.Generator, size: int = CANVAS, margin: float = 15.0) -> list[list[tuple[float, float]]]:
    """Polylines, in canvas pixels, of one randomly varied hand-drawn `digit`."""
    style = TEMPLATES[digit][rng.integers(len(TEMPLATES[digit]))]
    wobble = rng.uniform(0.002, 0.011)
    lines = []
    for stroke in style:
        pts = _resample(stroke, 0.01)
        pts = _trim_or_extend(pts, rng.normal(0, 0.025), rng.normal(0, 0.025))
        pts = _wobble(pts, rng, wobble)
        lines.append(pts - 0.5)  # centre on the origin

    aspect = rng.uniform(0.6, 1.3)
    slant = math.radians(rng.uniform(-25, 25))
    rot = math.radians(rng.uniform(-15, 15))
    cos, sin = math.cos(rot), math.sin(rot)
    transform = np.array([[cos, -sin], [sin, cos]]) @ np.array([[aspect, -math.tan(slant)], [0.0, 1.0]])
    lines = [p @ transform.T for p in lines]

    # scale to the chosen height, shrink if it would not fit, then place anywhere
    allpts = np.vstack(lines)
    lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    extent = hi - lo
    height = rng.uniform(0.25, 0.9) * size
    scale = min(height / max(extent[1], 1e-6), (size - 2 * margin) / max(extent.max(), 1e-6))
    room = size - 2 * margin - extent * scale
    offset = margin + rng.uniform(0, 1, 2) * np.maximum(room, 0) - lo * scale
    jitter = rng.uniform(0.0, 0.8)
    return [
        [tuple(p) for p in (pts * scale + offset + rng.normal(0, jitter, pts.shape))]
        for pts in lines
    ]


# --- rendering ------------------------------------------------------------------


def render(polylines, size=CANVAS, width=18, background="white", color="black", supersample=2) -> Image.Image:
    """Draw polylines like a canvas brush: round caps and joins, anti-aliased.

    background="transparent" gives RGBA with ink only where the strokes are, as a
    browser canvas exports it; any other value is a fill colour for an RGB image.
    """
    k = supersample
    mask = Image.new("L", (size * k, size * k), 0)
    draw = ImageDraw.Draw(mask)
    r = width * k / 2
    for poly in polylines:
        pts = [(x * k, y * k) for x, y in poly]
        if len(pts) > 1:
            draw.line(pts, fill=255, width=max(1, round(width * k)), joint="curve")
        for x, y in pts:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    if k > 1:
        mask = mask.resize((size, size), Image.Resampling.BOX)
    if background == "transparent":
        image = Image.new("RGBA", (size, size), color)
        image.putalpha(mask)
        return image
    image = Image.new("RGB", (size, size), background)
    image.paste(Image.new("RGB", (size, size), color), (0, 0), mask)
    return image


def drawn_digit(digit: int, rng: np.random.Generator, **kw) -> Image.Image:
    """One digit as a user might draw it: random brush width and background.

    The brush is 12-30 px, but at most about a fifth of the digit's height, since
    people who draw small with a fat brush get a blob and draw again.
    """
    polylines = strokes(digit, rng)
    pts = np.vstack([np.asarray(p) for p in polylines])
    height = float(np.ptp(pts[:, 1]))
    width = min(rng.uniform(12, 30), max(12.0, 0.2 * height))
    background = "transparent" if rng.random() < 0.25 else "white"
    options = {"width": width, "background": background}
    options.update(kw)
    return render(polylines, **options)


def drawn_set(n_per_digit: int = 100, seed: int = 0) -> tuple[list[Image.Image], np.ndarray]:
    """A deterministic set: n_per_digit drawings of each digit, digits interleaved."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(10), n_per_digit)
    return [drawn_digit(int(d), rng) for d in labels], labels
