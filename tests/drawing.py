"""Digits drawn the way a browser canvas draws them, for API and page tests."""
import base64
import io

import numpy as np

from bench.strokes import drawn_digit


def drawn_png(digit, seed=0, **kw):
    image = drawn_digit(digit, np.random.default_rng(seed), **kw)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def data_url(png):
    return "data:image/png;base64," + base64.b64encode(png).decode()
