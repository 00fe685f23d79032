"""Small Keras model files for the upload, fuzz and fault tests (built in seconds)."""
from pathlib import Path


def make_model_files(folder):
    """{"mlp_h5", "cnn_keras", "xor_keras", "five_out_keras", "lambda_keras", "garbage_h5"} -> paths."""
    import keras
    from keras import layers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    files = {}

    mlp = keras.Sequential([keras.Input((784,)), layers.Dense(16, activation="relu"), layers.Dense(10, activation="softmax")])
    mlp.compile("rmsprop", "sparse_categorical_crossentropy")
    files["mlp_h5"] = folder / "mlp_digits_28x28.h5"  # the tutorial's legacy format and name
    mlp.save(files["mlp_h5"])

    cnn = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(4, 3, activation="relu"), layers.Flatten(),
                            layers.Dense(10, activation="softmax")])
    files["cnn_keras"] = folder / "cnn_digits_28x28.keras"
    cnn.save(files["cnn_keras"])

    xor = keras.Sequential([keras.Input((2,)), layers.Dense(2, activation="relu"), layers.Dense(1, activation="sigmoid")])
    files["xor_keras"] = folder / "xor.keras"
    xor.save(files["xor_keras"])

    five = keras.Sequential([keras.Input((784,)), layers.Dense(5, activation="softmax")])
    files["five_out_keras"] = folder / "five_outputs.keras"
    five.save(files["five_out_keras"])

    # A Lambda layer is arbitrary Python: safe_mode must refuse to load it.
    sneaky = keras.Sequential([keras.Input((784,)), layers.Lambda(lambda x: x * 2), layers.Dense(10, activation="softmax")])
    files["lambda_keras"] = folder / "sneaky.keras"
    sneaky.save(files["lambda_keras"])

    files["garbage_h5"] = folder / "garbage.h5"
    files["garbage_h5"].write_bytes(b"this is not an HDF5 file\n" * 40)
    return files
