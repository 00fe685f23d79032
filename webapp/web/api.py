"""The JSON API: /api/predict and /api/models (list, show, activate, rename, upload, delete)."""
import base64
import binascii
import os
import re
import tempfile
import threading
import time
from pathlib import PurePosixPath

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from webapp.core.model_files import Limits, ModelFileRefused
from webapp.core.models import LoadError
from webapp.core.modelstore import TMP_PREFIX, UnknownModel, free_id
from webapp.core.recipes import DIGIT_NETWORKS
from webapp.core.preprocess import BadImage
from webapp.web import limits
from webapp.web.auth import teacher_required
from webapp.web.lab import ApiError, current_lab, write_error, writing

bp = Blueprint("api", __name__, url_prefix="/api")

DATA_URL = re.compile(r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)


lab = current_lab


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


def predict_answer(image_bytes, model, caller=None):
    """Shared by the REST route and the Socket.IO event; `caller` names the connection."""
    if model is not None and not isinstance(model, str):
        raise ApiError(400, "model must be a string")
    try:
        return lab().read_digit(image_bytes, model, caller)
    except BadImage as exc:
        raise ApiError(400, str(exc)) from None
    except LoadError as exc:
        raise ApiError(422, str(exc)) from None


@bp.post("/predict")
def predict():
    allowed, wait = limits.allow_prediction()  # one bucket per address, REST and Socket.IO alike
    if not allowed:
        return jsonify(limits.too_many(wait)), 429, {"Retry-After": str(max(1, round(wait)))}
    image_bytes, model = image_from_request()
    caller = ("http", request.remote_addr, request.environ.get("REMOTE_PORT"))  # one keep-alive connection
    return jsonify(predict_answer(image_bytes, model, caller))


MODEL_FIELDS = ("id", "name", "network", "parameters", "test_accuracy", "source", "epochs", "seconds", "date",
                "device", "active", "default", "data", "recipe", "hidden", "seed", "success", "broken", "labels",
                "dataset")


@bp.get("/models")
def models():
    listed = [{k: m[k] for k in MODEL_FIELDS if k in m} for m in lab().models()]
    return jsonify({"models": listed, "active": lab().active()})


@bp.get("/models/<model_id>")
def model(model_id):
    return jsonify(lab().metadata(model_id))


@bp.patch("/models/<model_id>")
@teacher_required
def rename_model(model_id):
    """{"name": "..."} -> the model with its new name; shipped models may be renamed too."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or "name" not in body:
        raise ApiError(400, "send a JSON object like {\"name\": \"CNN for Monday\"}")
    meta = lab().rename(model_id, body["name"])
    models_changed(renamed=model_id)
    return jsonify({"model": meta})


@bp.post("/models/<model_id>/activate")
@teacher_required
def activate(model_id):
    active = lab().activate(model_id)
    models_changed(activated=model_id)
    return jsonify({"active": active})


# -- upload and delete (teacher) ------------------------------------------------

UPLOAD_SUFFIXES = (".keras", ".h5")
_upload_lock = threading.Lock()  # one upload loads at a time: they are big and rare


def models_changed(**what):
    """Tell every open page to refresh its model picker."""
    lab().socketio.emit("models", what)


def base_name(filename):
    """The last part of a client's file name, whichever slash it used."""
    return PurePosixPath(filename.replace("\\", "/")).name


def sanitised_id(filename, taken):
    """A store id from an uploaded file's name, without its suffix; an id that names a network gets a number."""
    stem = base_name(filename)
    for suffix in UPLOAD_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    return free_id(stem, taken, "uploaded", reserved=DIGIT_NETWORKS)


FILE_SIGNATURES = {b"PK\x03\x04": ".keras", b"\x89HDF\r\n\x1a\n": ".h5"}  # a zip, an HDF5 file


def with_format_suffix(path, filename):
    """Rename the saved upload to the suffix its contents call for: Keras picks
    the loader by suffix, and a renamed .h5 is still the tutorial's model."""
    with open(path, "rb") as f:
        head = f.read(8)
    suffix = next((s for magic, s in FILE_SIGNATURES.items() if head.startswith(magic)), None)
    if suffix is None:
        raise LoadError(f"{filename} is neither a .keras file (a zip) nor an .h5 file (HDF5)")
    os.replace(path, path + suffix)
    return path + suffix


@bp.post("/models")
@teacher_required
def upload_model():
    """Upload a .keras or legacy .h5 digit model (form field 'file'; optional 'name')."""
    settings = lab().settings
    request.max_content_length = settings.max_upload_bytes
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, "send the model as a multipart form with a file field called 'file'")
    try:
        upload = request.files.get("file")
        name = request.form.get("name") or None
    except RequestEntityTooLarge:
        raise ApiError(413, f"the model file is too large: the limit is {settings.max_upload_bytes:,} bytes") from None
    if upload is None or not upload.filename:
        raise ApiError(400, "no model file: send it in a form field called 'file'")
    filename = base_name(upload.filename)
    suffix = next((s for s in UPLOAD_SUFFIXES if filename.lower().endswith(s)), None)
    if suffix is None:
        raise ApiError(400, "only .keras files or legacy .h5 files can be uploaded")
    if name is not None and len(name) > 80:
        raise ApiError(400, "name must be at most 80 characters")

    uploads = lab().home / "uploads"
    with writing("could not store the upload"):
        uploads.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=uploads)  # inside the instance folder
    try:
        with writing("could not store the upload"):
            with os.fdopen(fd, "wb") as f:
                upload.save(f)
            tmp = with_format_suffix(tmp, filename)
        with _upload_lock:
            model_id = sanitised_id(name or filename, {m["id"] for m in lab().models()})
            meta = {
                "network": "uploaded",
                "source": "uploaded",
                "name": (name or filename)[:80],
                "filename": filename[:120],
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            with writing("could not store the model"):  # checked, loaded and saved in an inference worker
                lab().predictor.accept_upload(tmp, model_id, meta, Limits.from_settings(settings))
            lab().store.refresh()
    except ModelFileRefused as exc:
        raise ApiError(exc.status, f"the model was refused before loading: {exc}") from None
    except LoadError as exc:  # name the user's file, never our paths
        text = str(exc).replace(tmp, filename).replace(os.path.basename(tmp), filename)
        raise ApiError(422, text.replace(str(uploads), "")) from None
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    lab().forget_model(model_id)  # a deleted model of the same id may still be cached
    models_changed(added=model_id)
    return jsonify({"model": lab().metadata(model_id)}), 201


@bp.delete("/models/<model_id>")
@teacher_required
def delete_model(model_id):
    """Delete a trained or uploaded model; the models that ship with the app stay."""
    meta = lab().metadata(model_id)  # 404 for anything that isn't a listed model
    try:
        lab().store.delete(model_id)
    except UnknownModel:
        raise ApiError(409, f"model {model_id!r} ships with the app and cannot be deleted") from None
    except OSError as exc:
        raise write_error(exc, "could not delete the model") from None
    lab().forget_model(model_id)
    models_changed(deleted=model_id)
    return jsonify({"deleted": model_id, "network": meta.get("network"), "active": lab().active()})
