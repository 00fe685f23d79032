"""The tutorial's four networks, as plain Keras 3 builders.

Each builder returns a compiled model with exactly the layers and optimizer of
the tutorial's recipe; hyperparameters only change sizes and rates. `outputs` is
10 for digits, or as many as a class's labels ("increase the number of network
outputs", as the tutorial ends).
"""
import keras
from keras import layers

from webapp.core.recipes import DIGIT_NETWORKS, OPTIMIZER_NAMES, RECIPES, Recipe  # noqa: F401 (re-exported)

OPTIMIZERS = {
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
    "adam": keras.optimizers.Adam,
}
assert tuple(OPTIMIZERS) == OPTIMIZER_NAMES


def make_optimizer(name, learning_rate):
    return OPTIMIZERS[name](learning_rate=learning_rate)


def build_xor(hidden=2, optimizer="sgd", learning_rate=0.1):
    model = keras.Sequential(
        [
            keras.Input(shape=(2,)),
            layers.Dense(hidden, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="xor",
    )
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def build_mlp(hidden=784, optimizer="rmsprop", learning_rate=0.001, outputs=10):
    model = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            layers.Dense(hidden, activation="relu"),
            layers.Dense(outputs, activation="softmax"),
        ],
        name="mlp",
    )
    return _compile_digits(model, optimizer, learning_rate)


def build_mlp2(hidden=1024, optimizer="rmsprop", learning_rate=0.001, outputs=10):
    model = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            layers.Dense(hidden, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(hidden, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(outputs, activation="softmax"),
        ],
        name="mlp2",
    )
    return _compile_digits(model, optimizer, learning_rate)


def build_cnn(hidden=128, optimizer="adam", learning_rate=0.001, outputs=10):
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(hidden, activation="relu"),
            layers.Dense(outputs, activation="softmax"),
        ],
        name="cnn",
    )
    return _compile_digits(model, optimizer, learning_rate)


def _compile_digits(model, optimizer, learning_rate):
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


BUILDERS = {"xor": build_xor, "mlp": build_mlp, "mlp2": build_mlp2, "cnn": build_cnn}


def build(net, hidden=None, optimizer=None, learning_rate=None, outputs=10):
    """Build `net` with the tutorial's recipe, overriding what is given; `outputs`: digit networks only."""
    recipe = RECIPES[net]
    sizes = {} if net == "xor" else {"outputs": outputs}
    return BUILDERS[net](
        hidden=hidden or recipe.hidden,
        optimizer=optimizer or recipe.optimizer,
        learning_rate=learning_rate or recipe.learning_rate,
        **sizes,
    )


def input_layout(model):
    """'flat' for a model that takes 784 numbers, 'image' for 28x28(x1)."""
    shape = tuple(model.input_shape[1:])
    if shape == (784,):
        return "flat"
    if shape in ((28, 28), (28, 28, 1)):
        return "image"
    raise ValueError(f"expected an input of 784 or 28x28x1, got {shape}")


def shape_inputs(model, images):
    """Reshape a batch of 28x28 images to what `model` takes."""
    shape = (-1,) + tuple(model.input_shape[1:])
    return images.reshape(shape)
