"""The four networks match the tutorial's recipes."""
import keras
import pytest

from webapp.core import networks


@pytest.mark.parametrize(
    "net, parameters",
    [("xor", 9), ("mlp", 623_290), ("mlp2", 1_863_690), ("cnn", 130_890)],
)
def test_parameter_counts(net, parameters):
    assert networks.build(net).count_params() == parameters


@pytest.mark.parametrize(
    "net, optimizer, loss",
    [
        ("xor", keras.optimizers.SGD, "binary_crossentropy"),
        ("mlp", keras.optimizers.RMSprop, "sparse_categorical_crossentropy"),
        ("mlp2", keras.optimizers.RMSprop, "sparse_categorical_crossentropy"),
        ("cnn", keras.optimizers.Adam, "sparse_categorical_crossentropy"),
    ],
)
def test_optimizers_and_losses(net, optimizer, loss):
    model = networks.build(net)
    assert isinstance(model.optimizer, optimizer)
    assert model.loss == loss
    assert float(model.optimizer.learning_rate) == pytest.approx(networks.RECIPES[net].learning_rate)


def test_cnn_layers():
    kinds = [type(layer).__name__ for layer in networks.build("cnn").layers]
    assert kinds == ["Conv2D", "MaxPooling2D"] * 3 + ["Flatten", "Dense", "Dense"]
    convs = [layer for layer in networks.build("cnn").layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 64, 64]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs)


def test_mlp2_layers():
    kinds = [type(layer).__name__ for layer in networks.build("mlp2").layers]
    assert kinds == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]


def test_recipes_follow_the_tutorial():
    assert networks.RECIPES["xor"] == networks.Recipe("sgd", 0.1, 1000, 1, hidden=2)
    assert (networks.RECIPES["cnn"].epochs, networks.RECIPES["cnn"].batch_size) == (8, 64)


def test_input_layout():
    assert networks.input_layout(networks.build("mlp")) == "flat"
    assert networks.input_layout(networks.build("cnn")) == "image"
    with pytest.raises(ValueError):
        networks.input_layout(networks.build("xor"))
