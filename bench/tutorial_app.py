"""The baseline: a tutorial-style Flask app, as most "draw a digit" demos write it.

It resizes the whole canvas to 28x28 and calls model.predict per request.
bench/predict.py starts it to compare against Neuron Lab's inference path.

    python -m bench.tutorial_app MODEL.keras PORT
"""
import base64
import io
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from flask import Flask, jsonify, request  # noqa: E402
from PIL import Image  # noqa: E402

model = keras.models.load_model(sys.argv[1])
app = Flask(__name__)


@app.post("/api/predict")
def predict():
    data = request.get_json()["image"].split(",")[-1]
    image = Image.open(io.BytesIO(base64.b64decode(data))).convert("L").resize((28, 28))
    x = (255 - np.asarray(image, dtype=np.float32)) / 255.0  # white paper -> ink = 1
    probabilities = model.predict(x.reshape((1,) + model.input_shape[1:]))[0]
    return jsonify({"digit": int(probabilities.argmax()), "probabilities": probabilities.tolist()})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[2]), threaded=True)
