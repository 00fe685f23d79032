"""Make MNIST digits look more like digits drawn in a browser.

Browser digits are slanted, squashed, unevenly proportioned (a 6 with a big
loop, a 9 with a small one) and drawn with a thick brush. Each distorted digit
goes back through MNIST's recipe (preprocess.to_mnist), just as a drawn one
does before the network sees it.
"""
import math

import keras
import numpy as np
from PIL import Image, ImageFilter

from webapp.core.preprocess import BlankImage, to_mnist

UPSCALE = 2  # distort at 56x56 so that a one-pixel brush change is half an MNIST pixel


def distort(image, rng):
    """One random browser-style variant of a 28x28 digit."""
    size = 28 * UPSCALE
    big = Image.fromarray(image, mode="F").resize((size, size), Image.Resampling.BILINEAR)

    angle = math.radians(rng.uniform(-18, 18))
    shear = rng.uniform(-0.35, 0.35)
    sx, sy = rng.uniform(0.75, 1.2), rng.uniform(0.85, 1.15)
    # Inverse affine map (output -> input) about the centre, as PIL wants it.
    cos, sin = math.cos(angle), math.sin(angle)
    a, b = cos / sx, (sin + shear * cos) / sx
    d, e = -sin / sy, cos / sy
    c = size / 2 - a * size / 2 - b * size / 2
    f = size / 2 - d * size / 2 - e * size / 2
    big = big.transform((size, size), Image.Transform.AFFINE, (a, b, c, d, e, f), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:  # keystone: one end of the digit bigger than the other
        corners = [(0, 0), (size, 0), (size, size), (0, size)]
        moved = [(x + rng.uniform(-0.15, 0.15) * size, y + rng.uniform(-0.15, 0.15) * size) for x, y in corners]
        big = big.transform((size, size), Image.Transform.PERSPECTIVE, perspective_coefficients(corners, moved),
                            Image.Resampling.BILINEAR)
    pixels = np.asarray(big, dtype=np.float32)
    if rng.random() < 0.5:
        pixels = reproportion(pixels, rng)
    if rng.random() < 0.4:
        pixels = elastic(pixels, rng)
    big = Image.fromarray(pixels, mode="F")

    brush = rng.choice([0, 0, 1, 1, 2, 3])  # a canvas brush is as thick as MNIST's pen or fatter
    for _ in range(brush):
        big = big.filter(ImageFilter.MaxFilter(3))
    ink = np.clip(np.asarray(big, dtype=np.float32), 0.0, 1.0)
    if ink.max() > 0:
        ink /= ink.max()
    try:
        return to_mnist(ink)
    except BlankImage:  # a distortion pushed the whole digit out of the frame: keep the original
        return image


def perspective_coefficients(output_corners, input_corners):
    """PIL's eight coefficients mapping output points to input points."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(output_corners, input_corners):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return np.linalg.solve(np.array(rows, dtype=float), np.array(rhs, dtype=float)).tolist()


def reproportion(image, rng, amount=0.3):
    """Cut the digit at a random height and stretch one part while squashing the
    other (then the same across): a 6 gets a big loop and a short stem, a 9 a
    small loop and a long tail, as people draw them."""
    picture = Image.fromarray(image, mode="F")
    for _ in range(2):
        size = picture.height
        cut = round(size * rng.uniform(0.35, 0.65))
        moved = min(max(round(cut + size * rng.uniform(-amount, amount)), 2), size - 2)
        top = picture.crop((0, 0, picture.width, cut)).resize((picture.width, moved), Image.Resampling.BILINEAR)
        bottom = picture.crop((0, cut, picture.width, size)).resize((picture.width, size - moved),
                                                                    Image.Resampling.BILINEAR)
        picture = Image.new("F", picture.size)
        picture.paste(top, (0, 0))
        picture.paste(bottom, (0, moved))
        picture = picture.transpose(Image.Transpose.TRANSPOSE)  # the second pass works across
    return np.asarray(picture, dtype=np.float32)


def elastic(image, rng, alpha=2.0, grid=4):
    """An elastic distortion (after Simard et al.): every pixel moves along a
    smooth random field, up to `alpha` MNIST pixels. The field is a coarse
    random grid, smoothly upsampled, which is much cheaper than blurring noise."""
    from scipy.ndimage import map_coordinates

    size = image.shape[0]
    shift = alpha * size / 28

    def field():
        coarse = rng.uniform(-1, 1, (grid, grid)).astype(np.float32)
        return np.asarray(Image.fromarray(coarse, mode="F").resize((size, size), Image.Resampling.BICUBIC)) * shift

    ys, xs = np.indices(image.shape, dtype=np.float32)
    return map_coordinates(image, [ys + field(), xs + field()], order=1, mode="constant").astype(np.float32)


class AugmentedDigits(keras.utils.PyDataset):
    """Batches of MNIST in which a fraction of the digits are distorted afresh each epoch."""

    def __init__(self, images, labels, batch_size, fraction=0.5, seed=0, reshape=None, **kwargs):
        super().__init__(**kwargs)
        self.images, self.labels, self.reshape = images, labels, reshape
        self.batch_size, self.fraction = batch_size, fraction
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images))

    def __len__(self):
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index):
        picked = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        batch = self.images[picked].copy()
        rng = np.random.default_rng(self.rng.integers(1 << 32))
        for i in np.flatnonzero(rng.random(len(batch)) < self.fraction):
            batch[i] = distort(batch[i], rng)
        if self.reshape:
            batch = batch.reshape(self.reshape)
        return batch, self.labels[picked]

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.images))
