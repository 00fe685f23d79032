"""The tutorial's recipes: how each network is trained, as plain data.

Kept apart from the Keras builders (networks.py) so that the web process can
read them without importing Keras and TensorFlow.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """How the tutorial trains a network."""

    optimizer: str
    learning_rate: float
    epochs: int
    batch_size: int
    hidden: int | None = None  # hidden units, for the networks that have them


RECIPES = {
    "xor": Recipe("sgd", 0.1, 1000, 1, hidden=2),
    "mlp": Recipe("rmsprop", 0.001, 8, 64, hidden=784),
    "mlp2": Recipe("rmsprop", 0.001, 8, 64, hidden=1024),
    "cnn": Recipe("adam", 0.001, 8, 64, hidden=128),
}
OPTIMIZER_NAMES = ("sgd", "rmsprop", "adam")
DIGIT_NETWORKS = ("mlp", "mlp2", "cnn")
