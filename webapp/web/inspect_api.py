"""Look inside a network: POST /api/inspect (every layer's output and a saliency map for one drawing) and
GET /api/models/<id>/weights?layer=<name>. The Socket.IO event `inspect` (webapp/web/events.py) answers through
`inspect_answer`, as `predict` does through predict_answer.

The inference worker sends numbers as little-endian float16 bytes (webapp/core/inspection.py); here they only
become base64 text. Input, errors and the rate limit are /api/predict's.
"""
import base64

from flask import Blueprint, jsonify, request

from webapp.core.inspection import NotInspectable, TooLarge, UnknownLayer
from webapp.core.models import LoadError
from webapp.core.preprocess import BadImage
from webapp.core.recipes import DIGIT_NETWORKS
from webapp.web import limits
from webapp.web.api import image_from_request
from webapp.web.lab import ApiError, current_lab

bp = Blueprint("inspect_api", __name__, url_prefix="/api")


def as_text(block):
    """A {"data": float16 bytes, ...} block with its data as base64 text (None stays None)."""
    if block is None or block.get("data") is None:
        return block
    return {**block, "data": base64.b64encode(block["data"]).decode("ascii")}


def inspect_answer(image_bytes, model):
    """Shared by the REST route and the Socket.IO event: the JSON answer, or an ApiError."""
    if model is not None and not isinstance(model, str):
        raise ApiError(400, "model must be a string")
    try:
        answer = current_lab().inspect_digit(image_bytes, model)
    except BadImage as exc:
        raise ApiError(400, str(exc)) from None
    except (LoadError, NotInspectable) as exc:
        raise ApiError(422, str(exc)) from None
    return {**answer, "layers": [as_text(layer) for layer in answer["layers"]],
            "saliency": as_text(answer["saliency"]), "kernels": as_text(answer["kernels"])}


def rate_limited():
    """The 429 response when this address has used its predictions, else None (one bucket with predict)."""
    allowed, wait = limits.allow_prediction()
    if allowed:
        return None
    return jsonify(limits.too_many(wait)), 429, {"Retry-After": str(max(1, round(wait)))}


@bp.post("/inspect")
def inspect():
    refused = rate_limited()
    if refused:
        return refused
    image_bytes, model = image_from_request()
    return jsonify(inspect_answer(image_bytes, model))


@bp.get("/models/<model_id>/weights")
def weights(model_id):
    """{"model", "layer", "type", "weights": [{"name", "shape", "data"}]}: a layer's kernel and bias (and any
    other weights, in Keras's order) as base64 float16."""
    refused = rate_limited()  # a worker round trip and up to megabytes: counted like a prediction
    if refused:
        return refused
    layer = request.args.get("layer")
    if not layer:
        raise ApiError(400, "say which layer: ?layer=<name> (the names are in /api/inspect's layers)")
    meta = current_lab().metadata(model_id)  # this very id (404 if unknown), not a network's active model
    if meta.get("network") not in DIGIT_NETWORKS and meta.get("source") != "uploaded":
        raise ApiError(400, f"model {model_id!r} is not a digit model")
    try:
        found = current_lab().predictor.weights(model_id, layer)
    except UnknownLayer as exc:
        raise ApiError(404, str(exc)) from None
    except TooLarge as exc:
        raise ApiError(413, str(exc)) from None
    except LoadError as exc:
        raise ApiError(422, str(exc)) from None
    return jsonify({"model": model_id, "layer": found["layer"], "type": found["type"],
                    "weights": [as_text(w) for w in found["weights"]]})
