"""How well do our models read digits drawn in a browser?

    python -m bench.drawn_digits [--n 100] [--seed 0] [--models models/] [--montage out.png]

Generates a deterministic set of synthetic canvas drawings (bench.strokes), runs
each through the product's own preprocessor as PNG bytes, and reports every
models/*.keras model's accuracy overall, per digit, and its commonest confusions.
--montage saves a grid of the raw drawings next to their 28x28 versions.
"""
import argparse
import io
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from bench.strokes import drawn_set
from webapp.core.preprocess import BlankImage, preprocess


def png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def prepare(images):
    """PIL images -> (N, 28, 28) float32 through the product's preprocessor.

    A drawing the preprocessor calls blank stays all zeros (and will count as
    whatever the model guesses for an empty field, almost surely wrong).
    """
    out = np.zeros((len(images), 28, 28), dtype=np.float32)
    for i, image in enumerate(images):
        try:
            out[i] = preprocess(png_bytes(image))
        except BlankImage:
            pass
    return out


def predict(model, images):
    """Predicted digits for PIL images or an (N, 28, 28) array already prepared."""
    if not isinstance(images, np.ndarray):
        images = prepare(images)
    batch = images.reshape((-1,) + tuple(model.input_shape[1:])).astype(np.float32)
    return np.asarray(model.predict(batch, verbose=0)).argmax(axis=1)


def evaluate(model, images, labels) -> float:
    """Accuracy of a Keras model on drawings (PIL images or prepared 28x28 arrays)."""
    labels = np.asarray(labels)
    return float((predict(model, images) == labels).mean())


def report(name, predicted, labels, top=8):
    accuracy = (predicted == labels).mean()
    print(f"\n{name}: {accuracy:.1%} of {len(labels)} drawings")
    per_digit = "  ".join(f"{d}:{(predicted[labels == d] == d).mean():.0%}" for d in range(10))
    print(f"  per digit  {per_digit}")
    confusions = Counter((int(t), int(p)) for t, p in zip(labels, predicted) if t != p)
    if confusions:
        print("  confusions " + ", ".join(f"{t}->{p} x{c}" for (t, p), c in confusions.most_common(top)))


def montage(path, images, prepared, labels, per_digit=12, cell=56):
    """Rows of each digit: raw drawings on the left, their 28x28 versions on the right."""
    gap = cell // 4
    sheet = Image.new("RGB", (2 * per_digit * cell + gap, 10 * cell), (200, 200, 200))
    for d in range(10):
        picks = np.flatnonzero(labels == d)[:per_digit]
        for j, i in enumerate(picks):
            raw = images[i]
            if raw.mode == "RGBA":  # show transparency on a light checkerboard
                board = Image.new("RGB", raw.size, (235, 235, 255))
                board.paste(raw, (0, 0), raw)
                raw = board
            thumb = raw.convert("RGB").resize((cell - 2, cell - 2), Image.Resampling.LANCZOS)
            sheet.paste(thumb, (j * cell + 1, d * cell + 1))
            small = Image.fromarray(np.uint8(255 - 255 * prepared[i]), "L")
            small = small.resize((cell - 2, cell - 2), Image.Resampling.NEAREST).convert("RGB")
            sheet.paste(small, (per_digit * cell + gap + j * cell + 1, d * cell + 1))
    sheet.save(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="drawings per digit (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="models/", help="folder of *.keras models")
    parser.add_argument("--montage", metavar="PATH", help="save a PNG grid of drawings and 28x28 versions")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    images, labels = drawn_set(args.n, args.seed)
    prepared = prepare(images)
    blank = int((prepared.reshape(len(prepared), -1).max(axis=1) == 0).sum())
    print(f"{len(images)} drawings generated and preprocessed in {time.perf_counter() - start:.1f}s"
          + (f" ({blank} judged blank)" if blank else ""))
    if args.montage:
        montage(args.montage, images, prepared, labels)
        print(f"montage saved to {args.montage}")

    paths = sorted(Path(args.models).glob("*.keras"))
    if not paths:
        print(f"no *.keras models in {args.models}")
        return 0
    import keras  # only when there is something to evaluate

    for path in paths:
        model = keras.models.load_model(path, compile=False)
        if tuple(model.output_shape[1:]) != (10,):
            continue  # not a digit model (xor)
        report(path.name, predict(model, prepared), labels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
