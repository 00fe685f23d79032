"""Digits drawn the way people draw them on our canvas, made up from strokes.

MNIST digits were written with a pen, scanned and normalised; what people draw
on a 280x280 canvas with a mouse or finger is thicker, more slanted, more oddly
placed and sized, and often in styles MNIST has few of (a 1 with a base, a 7
with a bar, a 6 with a big loop). Training mixes these drawings in with MNIST.

A style is a list of strokes; a stroke is a polyline in a unit box (x right,
y down), in the order and direction people usually draw it. Each drawing varies
a style the way hands do (slant, aspect, size, position, tremor, over- and
undershoot) and renders it with a round canvas brush of random width.

bench/strokes.py holds a separate set of styles for checking models: the
training styles below are written independently of those, so the check
measures how well a model reads styles it never saw.
"""
import math
import os

import numpy as np
from PIL import Image, ImageDraw

from webapp.core.preprocess import ink_map, to_mnist

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


def figure_eight(top=0.42, width=0.33, n=120):
    """One-stroke 8: start top right, round the top loop, cross, round the bottom."""
    t = np.linspace(0.35, 2 * np.pi + 0.5, n)
    y = 0.5 - 0.5 * np.cos(t)
    x = 0.5 - width * np.sin(2 * t) * np.where(y < 0.5, top / 0.5 * 0.9 + 0.1, 1.0)
    y = np.where(y < 0.5, y * (top / 0.5), top + (y - 0.5) * (1 - top) / 0.5)
    return list(zip(x, y))


# --- training styles: digit -> list of styles ---------------------------------

STYLES = {
    0: [
        # round, drawn clockwise from the top right
        [arc(0.5, 0.5, 0.42, 0.5, -60, 300, 72)],
        # closes past its start, leaving a tail at the top
        [arc(0.5, 0.52, 0.38, 0.48, -90, -480, 76)],
        # tall, pointed at top and bottom
        [join(bezier((0.5, 0.0), (0.05, 0.1), (0.1, 1.05), (0.5, 1.0)),
              bezier((0.5, 1.0), (0.95, 0.95), (0.9, 0.05), (0.5, 0.0)))],
    ],
    1: [
        [line((0.55, 0.0), (0.45, 1.0))],
        # long flag
        [line((0.2, 0.3), (0.6, 0.0), (0.6, 1.0))],
        # flag and a short base, drawn after the stem
        [line((0.3, 0.22), (0.55, 0.0), (0.55, 1.0)), line((0.3, 1.0), (0.8, 1.0))],
    ],
    2: [
        # swan neck and a wavy base
        [join(arc(0.48, 0.28, 0.36, 0.28, 190, 360, 36), bezier((0.84, 0.28), (0.8, 0.6), (0.3, 0.8), (0.08, 1.0)),
              bezier((0.08, 1.0), (0.4, 0.9), (0.7, 1.0), (0.95, 0.95)))],
        # small head, long straight diagonal
        [join(arc(0.55, 0.15, 0.25, 0.15, 180, 370, 30), line((0.8, 0.2), (0.05, 1.0), (0.95, 0.97)))],
    ],
    3: [
        # small top, big bottom
        [join(arc(0.5, 0.2, 0.3, 0.2, 200, 440, 40), arc(0.48, 0.68, 0.42, 0.32, -90, 150, 44))],
        # the middle drawn in as a short bar
        [join(arc(0.5, 0.24, 0.38, 0.24, 210, 420, 40), line((0.3, 0.48)), arc(0.5, 0.74, 0.4, 0.26, -120, 150, 44))],
    ],
    4: [
        # closed, the stem starting above the slanted side
        [line((0.55, 0.05), (0.1, 0.62), (0.9, 0.62)), line((0.68, 0.0), (0.66, 1.0))],
        # open, square
        [line((0.2, 0.0), (0.2, 0.55), (0.9, 0.55)), line((0.72, 0.0), (0.72, 1.0))],
        # one stroke: up the stem, down the side, across
        [line((0.7, 1.0), (0.7, 0.0), (0.08, 0.65), (0.95, 0.65))],
    ],
    5: [
        # flag first, then stem and belly
        [line((0.2, 0.02), (0.85, 0.0)), join(line((0.22, 0.02), (0.18, 0.48)), arc(0.47, 0.7, 0.38, 0.3, -130, 140, 44))],
        # angular
        [join(line((0.88, 0.0), (0.22, 0.0), (0.18, 0.42), (0.7, 0.42)),
              bezier((0.7, 0.42), (0.98, 0.6), (0.8, 1.05), (0.1, 0.92)))],
        # short stem, big belly
        [join(line((0.25, 0.0), (0.22, 0.35)), arc(0.5, 0.65, 0.4, 0.35, -140, 150, 48)), line((0.25, 0.0), (0.7, 0.0))],
    ],
    6: [
        # straight stem, small loop
        [join(line((0.35, 0.0), (0.2, 0.75)), arc(0.48, 0.78, 0.28, 0.22, 180, -175, 56))],
        # curved stem, loop two thirds of the height
        [join(bezier((0.8, 0.05), (0.4, 0.05), (0.15, 0.4), (0.15, 0.65)), arc(0.5, 0.68, 0.35, 0.32, 180, -170, 56))],
        # the loop closes on the stem
        [join(bezier((0.6, 0.0), (0.2, 0.3), (0.15, 0.8)), arc(0.45, 0.72, 0.3, 0.28, 160, -160, 56))],
    ],
    7: [
        # the downstroke bends
        [join(line((0.05, 0.0), (0.95, 0.0)), bezier((0.95, 0.0), (0.7, 0.3), (0.55, 0.6), (0.5, 1.0)))],
        # steep
        [line((0.1, 0.05), (0.9, 0.0), (0.6, 1.0))],
        # a short bar across
        [line((0.1, 0.0), (0.9, 0.0), (0.35, 1.0)), line((0.4, 0.55), (0.75, 0.45))],
    ],
    8: [
        # an S down, then back up through the middle
        [join(bezier((0.8, 0.12), (0.55, -0.08), (0.1, 0.05), (0.25, 0.35), (0.5, 0.5)),
              bezier((0.5, 0.5), (0.95, 0.7), (0.8, 1.05), (0.45, 1.0), (0.1, 0.9), (0.25, 0.6), (0.5, 0.5)),
              bezier((0.5, 0.5), (0.75, 0.4), (0.9, 0.2), (0.8, 0.12)))],
        # snowman: small head, big body
        [arc(0.5, 0.2, 0.22, 0.2, -90, 270, 48), arc(0.5, 0.7, 0.4, 0.3, -90, 270, 56)],
    ],
    9: [
        # small loop, long stem
        [join(arc(0.5, 0.2, 0.3, 0.2, -10, -375, 48), line((0.8, 0.22), (0.7, 1.0)))],
        # the tail curls left like a g
        [join(arc(0.5, 0.28, 0.34, 0.28, 0, -365, 48), bezier((0.84, 0.28), (0.85, 0.8), (0.6, 1.0), (0.3, 0.95)))],
        # the stem leans right
        [join(arc(0.42, 0.3, 0.36, 0.3, -5, -370, 48), line((0.78, 0.3), (0.85, 1.0)))],
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


def strokes(digit: int, rng: np.random.Generator, styles=None, size: int = CANVAS,
            margin: float = 15.0) -> list[list[tuple[float, float]]]:
    """Polylines, in canvas pixels, of one randomly varied hand-drawn `digit`
    in one of its `styles` (default: STYLES, the training styles)."""
    choices = (styles or STYLES)[digit]
    style = choices[rng.integers(len(choices))]
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


def drawn_digit(digit, rng: np.random.Generator, styles=None, size=CANVAS, **kw) -> Image.Image:
    """One digit (or any symbol `styles` has) as a user might draw it: random brush width and background.

    The brush is 12-30 px, but at most about a fifth of the digit's height, since
    people who draw small with a fat brush get a blob and draw again. `size` < CANVAS draws the
    same picture smaller (the preprocessor shrinks a 280-pixel canvas to 140 anyway): half the time.
    """
    scale = size / CANVAS
    polylines = strokes(digit, rng, styles, size=size, margin=15.0 * scale)
    pts = np.vstack([np.asarray(p) for p in polylines])
    height = float(np.ptp(pts[:, 1])) / scale
    width = min(rng.uniform(12, 30), max(12.0, 0.2 * height)) * scale
    background = "transparent" if rng.random() < 0.25 else "white"
    options = {"width": width, "background": background, "size": size}
    options.update(kw)
    return render(polylines, **options)


def drawn_digits(count: int, seed: int = 0, styles=None) -> tuple[np.ndarray, np.ndarray]:
    """`count` drawings (digits in turn), as (count, 28, 28) float32 MNIST-style
    images and their labels, ready to train on."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 28, 28), dtype=np.float32)
    labels = np.arange(count, dtype=np.uint8) % 10
    for i, digit in enumerate(labels):
        images[i] = to_mnist(ink_map(drawn_digit(int(digit), rng, styles)))  # a 12 px brush is never blank
    return images, labels


def drawn_digits_in_parallel(count, seed=0, should_stop=lambda: False, chunk=1000):
    """drawn_digits on every CPU core, in chunks of `chunk` (each with its own
    seed, so the result does not depend on the number of cores). Returns None
    if `should_stop()` turns true on the way.

    A daemonic process (a web job's training process) may not start processes
    of its own, so there the chunks are drawn one after another, on one core."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import current_process, get_context

    sizes = [min(chunk, count - start) for start in range(0, count, chunk)]
    seeds = [seed * 1000 + i for i in range(len(sizes))]
    none_yet = drawn_digits(0)  # so that count=0 concatenates too
    images, labels = [none_yet[0]], [none_yet[1]]
    if current_process().daemon:
        parts = map(drawn_digits, sizes, seeds)
        pool = None
    else:  # spawn, not fork: the training process has TensorFlow's threads running
        pool = ProcessPoolExecutor(os.cpu_count() or 1, mp_context=get_context("spawn"))
        parts = pool.map(drawn_digits, sizes, seeds)
    try:
        for part_images, part_labels in parts:
            if should_stop():
                return None
            images.append(part_images)
            labels.append(part_labels)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    return np.concatenate(images), np.concatenate(labels)
