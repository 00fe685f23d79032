"""The floor: a trivial Flask JSON endpoint, served by bench/predict.py with our gunicorn command.

POST /api/predict reads the JSON body and answers a small JSON: what HTTP, Flask
and the gevent worker cost with no inference at all.

    gunicorn -k webapp.web.front_door.Worker --workers 1 bench.bare_flask:app
"""
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/api/predict")
def predict():
    data = request.get_json()
    return jsonify({"digit": 0, "characters": len(data.get("image", ""))})
