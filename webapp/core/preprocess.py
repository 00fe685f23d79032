"""Turn any picture of a digit into the 28x28 image MNIST's own recipe gives.

MNIST's recipe (LeCun et al.): crop to the ink, scale it to fit a 20x20 box
keeping the aspect ratio (anti-aliased), then place it in a 28x28 field so that
its centre of mass sits at the centre. A network trained on MNIST has only ever
seen digits prepared this way, which is why a plain resize of a canvas fails.
"""
import functools
import io

import numpy as np
from PIL import Image, ImageChops, ImageSequence, UnidentifiedImageError

FIELD = 28  # the image the network sees
BOX = 20  # the digit is scaled to fit this box inside it
MAX_WORKING_SIDE = 512  # larger pictures are decoded small where the format allows
WORKING_SIDE = 64  # then shrunk by a whole factor until the short side is 64-127 pixels: the digit ends up 20 pixels tall anyway

FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
DEFAULT_MAX_PIXELS = 16_000_000


class BadImage(ValueError):
    """The bytes are not a picture we can read."""


class TooManyPixels(BadImage):
    """The picture has more pixels than allowed."""


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
        raise TooManyPixels(f"the image has {width}x{height} pixels; the limit is {max_pixels:,}")
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
    """Ink as an 8-bit 'L' image: 255 = the strongest stroke, 0 = paper, whatever the mode and polarity.

    - transparent background: ink is where the strokes are opaque;
    - otherwise the border tells the background colour, and ink is what
      differs from it, so dark-on-light and light-on-dark both work.
    Every step is one call into PIL's C code: on a 70-pixel drawing, per-call
    overhead costs more than the pixels, so the recipe makes as few calls as it can.
    """
    if image.mode in ("P", "PA", "LA", "La", "RGBa") or "transparency" in image.info:
        image = image.convert("RGBA")
    elif image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        image = _to_grey(image)
    elif image.mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGB")
    factor = min(image.size) // WORKING_SIDE  # the short side: a wide picture's digit keeps its height
    if factor > 1:  # a 280-pixel canvas becomes 70: sixteen times fewer pixels, same digit
        image = image.reduce(factor)
    if image.mode == "RGBA":
        alpha = image.getchannel("A")
        see_through = sum(alpha.histogram()[:128])  # pixels under half opaque
        if see_through > 0.05 * alpha.width * alpha.height:  # a real transparent background
            return _normalise(alpha)
        image = image.convert("RGB")
    # Ink is whatever differs from the background colour, dark or light: the
    # largest difference over the channels.
    pixels = np.asarray(image)
    border = np.sort(np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]), axis=0)
    background = border[len(border) // 2]  # the median colour (np.median costs 4x more)
    paper = Image.new(image.mode, image.size, tuple(int(c) for c in background) if image.mode == "RGB"
                      else int(background))
    difference = ImageChops.difference(image, paper)
    if image.mode == "RGB":
        red, green, blue = difference.split()
        difference = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    return _normalise(difference)


def _to_grey(image):
    """16-bit and float images, stretched to 8-bit grey."""
    values = np.asarray(image, dtype=np.float32)
    span = float(values.max() - values.min())
    values = (values - values.min()) / span if span > 0 else np.zeros_like(values)
    return Image.fromarray((values * 255).astype(np.uint8), mode="L")


def _normalise(levels):
    """Stretch an 'L' image of ink levels so that its strongest stroke is 255; faint marks become paper."""
    peak = levels.getextrema()[1]
    if peak < 0.1 * 255:  # no stroke stands out from the background
        raise BlankImage("nothing drawn: the image has no ink")
    return levels.point(_stretch(peak))


@functools.lru_cache(maxsize=256)
def _stretch(peak):
    """The table that maps ink levels up to `peak` onto 0-255; below 15% of it is paper texture or JPEG noise."""
    faint = 0.15 * peak
    return tuple(0 if v < faint else min(255, round(v * 255 / peak)) for v in range(256))


def to_mnist(ink):
    """An ink map -> the 28x28 float32 image MNIST's recipe gives. `ink` is what ink_map gives, or a 2-D
    array of floats in [0, 1] (1 = ink)."""
    if not isinstance(ink, Image.Image):
        ink = Image.fromarray(np.round(np.clip(ink, 0.0, 1.0) * 255).astype(np.uint8), mode="L")
    box = ink.getbbox()
    if box is None:
        raise BlankImage("nothing drawn: the image has no ink")
    crop = ink.crop(box)

    width, height = crop.size
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    digit = np.asarray(crop.resize(size, Image.Resampling.LANCZOS), dtype=np.float32) * np.float32(1 / 255)
    mass = float(digit.sum())
    if mass <= 0:
        raise BlankImage("nothing drawn: the image has no ink")

    # Place it so that its centre of mass lands on MNIST's (14, 14).
    top = round(14.0 - float(digit.sum(axis=1) @ np.arange(size[1])) / mass)
    left = round(14.0 - float(digit.sum(axis=0) @ np.arange(size[0])) / mass)
    top = min(max(top, 0), FIELD - size[1])
    left = min(max(left, 0), FIELD - size[0])

    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    field[top : top + size[1], left : left + size[0]] = digit
    return field


def preprocess(data, max_pixels=DEFAULT_MAX_PIXELS):
    """Image bytes -> 28x28 float32 in [0, 1], ink = 1. Raises BadImage or BlankImage."""
    return to_mnist(ink_map(decode_image(data, max_pixels)))
