"""The preprocessor gives MNIST's 28x28 recipe for any picture of a digit."""
import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from webapp.core.datasets import load_mnist
from webapp.core.preprocess import BadImage, BlankImage, preprocess

SEVEN = [(0.1, 0.1), (0.9, 0.1), (0.45, 1.0)]  # a 7 as a polyline in a unit box


def drawing(box, size=(280, 280), width=18, ink=0, paper=255, mode="L", points=SEVEN):
    """The seven drawn into `box` = (left, top, side) of a canvas."""
    left, top, side = box
    image = Image.new(mode, size, paper)
    pen = ImageDraw.Draw(image)
    xy = [(left + x * side, top + y * side) for x, y in points]
    pen.line(xy, fill=ink, width=width, joint="curve")
    return image


def encode(image, fmt="PNG"):
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def centre_of_mass(image):
    ys, xs = np.indices(image.shape)
    return (ys * image).sum() / image.sum(), (xs * image).sum() / image.sum()


def test_output_follows_mnist_recipe():
    image = preprocess(encode(drawing((40, 40, 200))))
    assert image.shape == (28, 28) and image.dtype == np.float32
    assert image.min() >= 0 and image.max() == pytest.approx(1.0, abs=0.05)
    rows, cols = np.flatnonzero(image.any(1)), np.flatnonzero(image.any(0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 21  # fits the 20x20 box (+ anti-aliasing)
    cy, cx = centre_of_mass(image)
    assert abs(cy - 14) <= 0.6 and abs(cx - 14) <= 0.6


def test_small_in_a_corner_equals_large_in_the_centre():
    small = preprocess(encode(drawing((5, 200, 60), width=5)))
    large = preprocess(encode(drawing((40, 40, 200), width=18)))
    assert np.abs(small - large).mean() < 0.04
    assert np.corrcoef(small.ravel(), large.ravel())[0, 1] > 0.9


@pytest.mark.parametrize(
    "name, image",
    [
        ("dark on light, L", drawing((40, 40, 200))),
        ("dark on light, RGB", drawing((40, 40, 200), mode="RGB", ink=(20, 20, 60), paper=(250, 250, 240))),
        ("light on dark", drawing((40, 40, 200), ink=255, paper=0)),
        ("coloured ink on grey", drawing((40, 40, 200), mode="RGB", ink=(200, 30, 30), paper=(90, 90, 90))),
        ("transparent background", drawing((40, 40, 200), mode="RGBA", ink=(0, 0, 0, 255), paper=(0, 0, 0, 0))),
        ("white ink, transparent", drawing((40, 40, 200), mode="RGBA", ink=(255, 255, 255, 255), paper=(255, 255, 255, 0))),
        ("wide canvas", drawing((300, 20, 200), size=(800, 240))),
    ],
)
def test_any_mode_and_polarity_gives_the_same_digit(name, image):
    reference = preprocess(encode(drawing((40, 40, 200))))
    assert np.abs(preprocess(encode(image)) - reference).mean() < 0.03, name


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_formats(fmt):
    image = drawing((40, 40, 200))
    if fmt == "GIF":
        image = image.convert("P")
    reference = preprocess(encode(drawing((40, 40, 200))))
    assert np.abs(preprocess(encode(image, fmt)) - reference).mean() < 0.05


def test_an_mnist_digit_comes_back_as_itself():
    mnist = load_mnist("sample")
    digit = mnist.x_test[0]
    again = preprocess(encode(Image.fromarray((digit * 255).astype(np.uint8))))
    assert np.corrcoef(digit.ravel(), again.ravel())[0, 1] > 0.9


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (280, 280), 255),
        Image.new("L", (280, 280), 0),
        Image.new("RGBA", (280, 280), (0, 0, 0, 0)),
        Image.new("RGB", (50, 50), (128, 40, 40)),
    ],
)
def test_blank_is_nothing_drawn(image):
    with pytest.raises(BlankImage, match="nothing drawn"):
        preprocess(encode(image))


@pytest.mark.parametrize("data", [b"", b"hello", b"\x89PNG\r\n\x1a\n", b"GIF89a" + b"\0" * 10])
def test_not_an_image(data):
    with pytest.raises(BadImage):
        preprocess(data)


def test_truncated_image():
    data = encode(drawing((40, 40, 200)))
    with pytest.raises(BadImage):
        preprocess(data[: len(data) // 2])


def test_too_many_pixels_is_refused_before_decoding():
    huge = encode(Image.new("L", (5000, 5000), 255))
    with pytest.raises(BadImage, match="pixels"):
        preprocess(huge, max_pixels=4_000_000)
