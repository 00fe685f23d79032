"""The JSON API: /api/predict and /api/models."""
import base64
import binascii
import re

from flask import Blueprint, current_app, jsonify, request

from webapp.core.models import LoadError
from webapp.core.preprocess import BadImage
from webapp.web.auth import teacher_required
from webapp.web.lab import ApiError

bp = Blueprint("api", __name__, url_prefix="/api")

DATA_URL = re.compile(r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)


def lab():
    return current_app.extensions["neuronlab"]


def decode_base64_image(text):
    """The bytes of a data URL or a bare base64 string."""
    if not isinstance(text, str):
        raise ApiError(400, "image must be a data URL or base64 text")
    text = DATA_URL.sub("", text.strip(), count=1)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "image is not valid base64") from None


def image_from_request():
    """(image bytes, model name) from JSON, a multipart upload or a raw image body."""
    if request.mimetype == "application/json":
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object like {\"image\": \"data:image/png;base64,...\"}")
        if body.get("image") in (None, ""):
            raise ApiError(400, "no image: send {\"image\": \"<data URL or base64>\"}")
        return decode_base64_image(body["image"]), body.get("model")
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("image")
        if upload is None:
            raise ApiError(400, "no image: send the file in a form field called 'image'")
        return upload.read(), request.form.get("model")
    if request.mimetype.startswith("image/"):
        return request.get_data(), request.args.get("model")
    raise ApiError(415, "send JSON {\"image\": ...}, a multipart form with an 'image' file, or an image body")


def predict_answer(image_bytes, model):
    """Shared by the REST route and the Socket.IO event."""
    if model is not None and not isinstance(model, str):
        raise ApiError(400, "model must be a string")
    try:
        return lab().predict(image_bytes, model)
    except BadImage as exc:
        raise ApiError(400, str(exc)) from None
    except LoadError as exc:
        raise ApiError(422, str(exc)) from None


@bp.post("/predict")
def predict():
    image_bytes, model = image_from_request()
    return jsonify(predict_answer(image_bytes, model))


MODEL_FIELDS = ("id", "network", "parameters", "test_accuracy", "source", "epochs", "seconds", "date",
                "device", "active", "default", "data", "recipe", "name")


@bp.get("/models")
def models():
    listed = [{k: m[k] for k in MODEL_FIELDS if k in m} for m in lab().models()]
    for m in listed:
        m.setdefault("name", m["id"])
    return jsonify({"models": listed, "active": lab().active()})


@bp.get("/models/<model_id>")
def model(model_id):
    return jsonify(lab().metadata(model_id))


@bp.post("/models/<model_id>/activate")
@teacher_required
def activate(model_id):
    return jsonify({"active": lab().activate(model_id)})
