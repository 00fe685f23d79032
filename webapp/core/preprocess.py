"""Turn any picture of a digit into the 28x28 image MNIST's own recipe gives.

MNIST's recipe (LeCun et al.): crop to the ink, scale it to fit a 20x20 box
keeping the aspect ratio (anti-aliased), then place it in a 28x28 field so that
its centre of mass sits at the centre. A network trained on MNIST has only ever
seen digits prepared this way, which is why a plain resize of a canvas fails.
"""
import io

import numpy as np
from PIL import Image, ImageChops, ImageSequence, UnidentifiedImageError

FIELD = 28  # the image the network sees
BOX = 20  # the digit is scaled to fit this box inside it
MAX_WORKING_SIDE = 512  # larger pictures are decoded small where the format allows
WORKING_SIDE = 128  # then shrunk by a whole factor to about this: the digit ends up 20 pixels tall anyway

FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
DEFAULT_MAX_PIXELS = 16_000_000


class BadImage(ValueError):
    """The bytes are not a picture we can read."""


class BlankImage(ValueError):
    """The picture has no ink in it: nothing was drawn."""


def decode_image(data, max_pixels=DEFAULT_MAX_PIXELS):
    """Decode PNG/JPEG/WebP/GIF bytes, refusing decompression bombs."""
    if not data:
        raise BadImage("the image is empty")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise BadImage("not a PNG, JPEG, WebP or GIF image") from None
    width, height = image.size
    if width * height > max_pixels:
        raise BadImage(f"the image has {width}x{height} pixels; the limit is {max_pixels:,}")
    try:
        if getattr(image, "n_frames", 1) > 1:
            image = ImageSequence.Iterator(image)[0]
        if image.format == "JPEG":
            image.draft("L", (MAX_WORKING_SIDE, MAX_WORKING_SIDE))  # decode big JPEGs small
        image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError):
        raise BadImage("the image is truncated or corrupt") from None
    return image


def ink_map(image):
    """Ink as floats in [0, 1] (1 = ink), whatever the mode and polarity.

    - transparent background: ink is where the strokes are opaque;
    - otherwise the border tells the background colour, and ink is what
      differs from it, so dark-on-light and light-on-dark both work.
    """
    if image.mode in ("P", "PA", "LA", "La", "RGBa") or "transparency" in image.info:
        image = image.convert("RGBA")
    elif image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        image = _to_grey(image)
    elif image.mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGB")
    factor = max(image.size) // WORKING_SIDE
    if factor > 1:  # a 280-pixel canvas becomes 140: four times less work, same digit
        image = image.reduce(factor)
    if image.mode == "RGBA":
        alpha = image.getchannel("A")
        see_through = sum(alpha.histogram()[:128])  # pixels under half opaque, counted in C
        if see_through > 0.05 * alpha.width * alpha.height:  # a real transparent background
            return _normalise(np.asarray(alpha, dtype=np.float32) / 255.0)
        image = image.convert("RGB")
    # Ink is whatever differs from the background colour, dark or light: the
    # largest difference over the channels, computed by PIL in C (the hot path).
    pixels = np.asarray(image)
    border = np.sort(np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]), axis=0)
    background = border[len(border) // 2].astype(int)  # the median colour (np.median costs 4x more)
    paper = Image.new(image.mode, image.size, tuple(background) if image.mode == "RGB" else int(background))
    difference = ImageChops.difference(image, paper)
    if image.mode == "RGB":
        red, green, blue = difference.split()
        difference = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    return _normalise(np.asarray(difference, dtype=np.float32) / 255.0)


def _to_grey(image):
    """16-bit and float images, stretched to 8-bit grey."""
    values = np.asarray(image, dtype=np.float32)
    span = float(values.max() - values.min())
    values = (values - values.min()) / span if span > 0 else np.zeros_like(values)
    return Image.fromarray((values * 255).astype(np.uint8), mode="L")


def _normalise(ink):
    ink = np.clip(ink, 0.0, 1.0)
    peak = float(ink.max())
    if peak < 0.1:  # no stroke stands out from the background
        raise BlankImage("nothing drawn: the image has no ink")
    ink = ink / peak
    ink[ink < 0.15] = 0.0  # paper texture and JPEG noise are not ink
    return ink


def to_mnist(ink):
    """A 2-D ink map of any size -> the 28x28 float32 image MNIST's recipe gives."""
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        raise BlankImage("nothing drawn: the image has no ink")
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]

    height, width = crop.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    digit = Image.fromarray(crop.astype(np.float32), mode="F").resize(size, Image.Resampling.LANCZOS)
    digit = np.clip(np.asarray(digit), 0.0, 1.0)
    if digit.max() <= 0:
        raise BlankImage("nothing drawn: the image has no ink")

    # Place it so that its centre of mass lands on MNIST's (14, 14).
    ys, xs = np.indices(digit.shape)
    mass = digit.sum()
    top = round(14.0 - (ys * digit).sum() / mass)
    left = round(14.0 - (xs * digit).sum() / mass)
    top = min(max(top, 0), FIELD - digit.shape[0])
    left = min(max(left, 0), FIELD - digit.shape[1])

    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    field[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    return field


def preprocess(data, max_pixels=DEFAULT_MAX_PIXELS):
    """Image bytes -> 28x28 float32 in [0, 1], ink = 1. Raises BadImage or BlankImage."""
    return to_mnist(ink_map(decode_image(data, max_pixels)))
