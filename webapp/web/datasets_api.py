"""The class's datasets over REST: list, create, delete, drawings (add, list, relabel, delete, clear), the canvas
images, export and import. Adding a drawing is shared with the Socket.IO `add_drawing` event
(webapp/web/datasets_events.py); every change is told to the pages watching the dataset (room `dataset:<id>`),
and creating, deleting or importing a dataset to everyone (`datasets_changed`).

Viewers add drawings and read; the teacher does the rest. The web process never decodes an image: the 28x28
input comes from an inference worker (`predictor.preprocess`), the canvas image is stored as it arrived.
"""
import logging
from contextlib import contextmanager

from flask import Blueprint, Response, jsonify, request, send_file
from werkzeug.exceptions import RequestEntityTooLarge

from webapp.core.class_data import DatasetError, DatasetStore, check_client, check_guess, shown, storable
from webapp.core.preprocess import BadImage, BlankImage
from webapp.web import limits
from webapp.web.api import decode_base64_image
from webapp.web.auth import teacher_required
from webapp.web.lab import ApiError, current_lab, storage_reason, writing
from webapp.web.limits import RateLimiter

log = logging.getLogger(__name__)

bp = Blueprint("datasets", __name__, url_prefix="/api")

MAX_LIST = 500  # drawings in one GET .../drawings
IMAGE_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif", b"RIFF": "image/webp"}


def room(dataset_id):
    return f"dataset:{dataset_id}"


def store():
    return current_lab().dataset_store()


@contextmanager
def storing(doing):
    """A store call: DatasetError -> its status and words; a full or read-only disk -> 507."""
    try:
        with writing(doing):
            yield
    except DatasetError as exc:
        raise ApiError(exc.status, str(exc)) from None


def json_body(example):
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, f"the body must be a JSON object like {example}")
    return body


def emit(event, payload, dataset_id=None):
    """To the pages watching `dataset_id`, or to everyone."""
    socketio = current_lab().socketio
    if dataset_id is None:
        socketio.emit(event, payload)
    else:
        socketio.emit(event, payload, to=room(dataset_id))


def changed_counts(dataset_id):
    """A round on this dataset tells everyone its fresh counts."""
    rounds = current_lab().rounds
    if rounds is not None:
        rounds.drawn(dataset_id)


# -- datasets -----------------------------------------------------------------------

@bp.get("/datasets")
def list_datasets():
    with storing("could not read the datasets"):
        return jsonify({"datasets": store().list()})


@bp.post("/datasets")
@teacher_required
def create_dataset():
    body = json_body('{"name": "letters", "labels": ["A", "B", "C"]}')
    with storing("could not store the dataset"):
        dataset = store().create(body.get("name"), body.get("labels"))
    emit("datasets_changed", {})
    return jsonify({"dataset": dataset}), 201


@bp.get("/datasets/<dataset_id>")
def get_dataset(dataset_id):
    with storing("could not read the dataset"):
        return jsonify({"dataset": store().get(dataset_id, by_client=True)})


@bp.delete("/datasets/<dataset_id>")
@teacher_required
def delete_dataset(dataset_id):
    with storing("could not delete the dataset"):
        store().delete(dataset_id)
    rounds = current_lab().rounds
    if rounds is not None:
        rounds.dataset_gone(dataset_id)
    emit("datasets_changed", {})
    return jsonify({"deleted": dataset_id})


# -- drawings ------------------------------------------------------------------------

def drawing_limiter():
    return current_lab().drawing_limiter


def add_drawing(dataset_id, body):
    """File one drawing (REST and Socket.IO alike): the POST's answer, or ApiError."""
    allowed, wait = drawing_limiter().allow(("address", limits.client_address()))
    if not allowed:
        per_minute = current_lab().settings.drawing_rate
        raise ApiError(429, f"too many drawings: at most {per_minute:g} a minute from one address; "
                            "try again shortly", retry_after=round(wait, 3))
    if not isinstance(body, dict):
        raise ApiError(400, 'send {"image": "<data URL>", "label": "C", "client": "<browser id>"}')
    datasets = store()
    with storing("could not read the dataset"):
        labels = datasets.get(dataset_id)["labels"]  # unknown -> 404, before any image work
    label = body.get("label")
    if not isinstance(label, str) or label not in labels:
        raise ApiError(400, f"label must be one of the dataset's labels: {', '.join(labels[:20])}"
                            f"{'…' if len(labels) > 20 else ''}", field="label")
    try:
        client, guess = check_client(body.get("client")), check_guess(body.get("guess"))
    except DatasetError as exc:
        raise ApiError(exc.status, str(exc)) from None
    if body.get("image") in (None, ""):
        raise ApiError(400, "no image: send {\"image\": \"<data URL or base64>\"}", field="image")
    image_bytes = decode_base64_image(body["image"])
    try:
        image = current_lab().predictor.preprocess(image_bytes)  # an inference worker reads it
    except BlankImage:
        raise ApiError(400, "nothing drawn: draw something first", field="image", blank=True) from None
    except BadImage as exc:
        raise ApiError(400, str(exc), field="image") from None
    except RuntimeError:  # the worker stopped under it
        raise ApiError(503, "the drawing could not be read just now: try again") from None
    with storing("could not store the drawing"):
        drawing, counts = datasets.add(dataset_id, label, client, image, png=image_bytes, guess=guess)
    total = sum(counts.values())
    emit("drawing_added", {"dataset": dataset_id, "drawing": drawing, "counts": counts, "total": total}, dataset_id)
    rounds = current_lab().rounds
    next_label = rounds.next_label(dataset_id, counts, label) if rounds is not None else None
    changed_counts(dataset_id)
    return {"drawing": drawing, "counts": counts, "total": total, "next_label": next_label}


@bp.post("/datasets/<dataset_id>/drawings")
def post_drawing(dataset_id):
    body = json_body('{"image": "data:image/png;base64,...", "label": "C", "client": "<browser id>"}')
    return jsonify(add_drawing(dataset_id, body)), 201


def whole_number(name, default, low, high):
    text = request.args.get(name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or not low <= int(text) <= high:
        raise ApiError(400, f"{name} must be a whole number from {low} to {high}", field=name)
    return int(text)


@bp.get("/datasets/<dataset_id>/drawings")
def list_drawings(dataset_id):
    after = whole_number("after", 0, 0, 2**63 - 1)
    limit = whole_number("limit", MAX_LIST, 1, MAX_LIST)
    label = request.args.get("label")
    with storing("could not read the dataset"):
        labels = store().get(dataset_id)["labels"]
        if label is not None and label not in labels:
            raise ApiError(400, "label must be one of the dataset's labels", field="label")
        return jsonify({"drawings": store().drawings(dataset_id, after=after, label=label, limit=limit)})


@bp.get("/datasets/<dataset_id>/drawings/<drawing_id>")
def get_drawing(dataset_id, drawing_id):
    with storing("could not read the drawing"):
        return jsonify({"drawing": store().drawing(dataset_id, drawing_id)})


@bp.get("/datasets/<dataset_id>/drawings/<drawing_id>.png")
def drawing_image(dataset_id, drawing_id):
    """The canvas image as it was drawn (its own type: the browser sends PNG; an upload may be JPEG...)."""
    with storing("could not read the drawing"):
        path = store().image_path(dataset_id, drawing_id)
        with open(path, "rb") as f:
            head = f.read(4)
    mimetype = next((kind for magic, kind in IMAGE_TYPES.items() if head.startswith(magic)),
                    "application/octet-stream")
    response = send_file(path, mimetype=mimetype, max_age=3600)  # a drawing's image never changes
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.patch("/datasets/<dataset_id>/drawings/<drawing_id>")
@teacher_required
def relabel_drawing(dataset_id, drawing_id):
    body = json_body('{"label": "C"}')
    with storing("could not change the label"):
        drawing, counts = store().relabel(dataset_id, drawing_id, body.get("label"))
    emit("drawing_changed", {"dataset": dataset_id, "drawing": drawing, "counts": counts}, dataset_id)
    changed_counts(dataset_id)
    return jsonify({"drawing": drawing, "counts": counts})


@bp.delete("/datasets/<dataset_id>/drawings/<drawing_id>")
@teacher_required
def delete_drawing(dataset_id, drawing_id):
    with storing("could not delete the drawing"):
        deleted, counts = store().delete_drawing(dataset_id, drawing_id)
    emit("drawing_deleted", {"dataset": dataset_id, "id": deleted, "counts": counts}, dataset_id)
    changed_counts(dataset_id)
    return jsonify({"deleted": deleted, "counts": counts})


@bp.delete("/datasets/<dataset_id>/drawings")
@teacher_required
def clear_dataset(dataset_id):
    with storing("could not clear the dataset"):
        counts = store().clear(dataset_id)
    emit("dataset_cleared", {"dataset": dataset_id, "counts": counts}, dataset_id)
    changed_counts(dataset_id)
    return jsonify({"cleared": dataset_id, "counts": counts})


# -- as a file ---------------------------------------------------------------------

@bp.get("/datasets/<dataset_id>/export")
def export_dataset(dataset_id):
    """The drawings as Keras's MNIST npz layout plus `labels` (webapp/core/labelled_data.py)."""
    with storing("could not read the dataset"):
        data = store().export_bytes(dataset_id)
    return Response(data, mimetype="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{dataset_id}.npz"', "Cache-Control": "no-store"})


@bp.post("/datasets/import")
@teacher_required
def import_dataset():
    """Multipart field `file` (an npz in the export's layout), optional `name` (else the file's name)."""
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, "send the npz as a multipart form with a file field called 'file'")
    try:
        upload = request.files.get("file")
        name = request.form.get("name") or None
    except RequestEntityTooLarge:
        raise ApiError(413, "the file is too large: the limit is "
                            f"{current_lab().settings.max_request_bytes:,} bytes") from None
    if upload is None:
        raise ApiError(400, "no file: send the npz in a form field called 'file'", field="file")
    if name is None:
        stem = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
        name = stem[:-4] if stem.lower().endswith(".npz") else stem
        name = name if name.strip() and storable(name) else "imported"
    data = upload.read()
    with storing("could not store the dataset"):
        dataset = store().import_npz(data, name)
    emit("datasets_changed", {})
    return jsonify({"dataset": dataset}), 201


# -- a job's data ----------------------------------------------------------------------

def job_dataset(dataset_id, path):
    """For POST /api/jobs: write the dataset's npz to `path`; the dataset (DATASET). 400 for an unknown dataset,
    too few drawings (labelled_data.too_few's words); 507 when the disk refuses."""
    from webapp.core.labelled_data import too_few

    datasets = store()
    try:
        dataset = datasets.get(dataset_id)
    except DatasetError:
        raise ApiError(400, f"data: there is no dataset called {shown(dataset_id)}: choose 'mnist', 'sample' or one "
                             "of the class's datasets (GET /api/datasets)", field="data") from None
    problem = too_few(dataset["counts"], dataset["labels"])
    if problem:
        raise ApiError(400, f"data: {dataset['name']}: {problem}", field="data")
    with storing("could not store the job's data"):
        path.parent.mkdir(parents=True, exist_ok=True)
        datasets.write_npz(dataset_id, path)
    return dataset


def open_store(lab, app):
    """The store, or None (and why, in words) when the instance folder cannot hold it: predictions go on."""
    settings = lab.settings
    limits_ = {"max_drawings": settings.max_dataset_drawings, "max_per_client": settings.max_drawings_per_client}
    try:
        return DatasetStore(lab.home, **limits_)
    except Exception as exc:  # sqlite3.Error or OSError: a read-only, full or damaged instance folder
        reason = storage_reason(exc)
        lab.datasets_problem = reason[1] if reason else "its file cannot be opened"
        log.warning("the class's datasets cannot be written (%s): they are read-only until a restart", exc)
    try:  # the gallery still shows what the class drew; every write answers 507
        return DatasetStore(lab.home, read_only=True, **limits_)
    except Exception as exc:
        log.warning("the class's datasets cannot be read either: %s", exc)
        return None


def init_app(app, socketio, lab):
    """The store and the drawing limiter (the app factory registers rounds and the Socket.IO events)."""
    lab.datasets = open_store(lab, app)
    per_minute = lab.settings.drawing_rate
    lab.drawing_limiter = RateLimiter(per_minute / 60.0, burst=max(1.0, per_minute / 4))
    app.register_blueprint(bp)
