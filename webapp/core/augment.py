"""Make MNIST digits look more like digits drawn in a browser.

Browser digits are slanted, squashed and drawn with a thick brush. Each
distorted digit goes back through MNIST's recipe (preprocess.to_mnist), just as
a drawn one does before the network sees it.
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

    brush = rng.choice([-1, 0, 0, 1, 1, 2, 3])  # thinner, same, or up to three (half-)pixels fatter
    for _ in range(max(brush, 0)):
        big = big.filter(ImageFilter.MaxFilter(3))
    if brush < 0:
        big = big.filter(ImageFilter.MinFilter(3))
    ink = np.clip(np.asarray(big, dtype=np.float32), 0.0, 1.0)
    if ink.max() > 0:
        ink /= ink.max()
    try:
        return to_mnist(ink)
    except BlankImage:  # an erosion can wipe out a faint digit; keep the original
        return image


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
