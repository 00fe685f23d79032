"""Take a model home: GET /api/models/<id>/download?format=keras|h5, as a file named after the model.

The .keras file is the store's own, sent as it is; an .h5 is made by an inference worker
(webapp/core/export.py) into a cache in the instance folder. Both stream from disk. Who may download is
NEURONLAB_DOWNLOADS (webapp/config.py): "shared" (everyone gets the shipped and the class's active models, the
teacher the rest), "everyone", or "teacher".
"""
import re
import unicodedata

from flask import Blueprint, request, send_file

from webapp.core.export import FORMATS
from webapp.core.models import LoadError, without_paths
from webapp.core.modelstore import UnknownModel
from webapp.web import auth
from webapp.web.lab import ApiError, current_lab, write_error

bp = Blueprint("downloads", __name__)

POLICIES = ("shared", "everyone", "teacher")
EXPORTS_FOLDER = "exports"  # in the instance folder: the .h5 files made for download
MIMETYPES = {"keras": "application/zip", "h5": "application/x-hdf5"}  # a .keras is a zip archive
MAX_FILE_NAME = 100  # characters before the suffix
UNSAFE = re.compile(r"[^\w.]+")  # runs of anything but letters, digits, "_" and "." (any script's letters)


def check_setting(state):
    """Run when the app registers this blueprint: the setting, normalised, or a refusal to start."""
    settings = state.app.extensions["neuronlab"].settings
    policy = settings.downloads = str(settings.downloads).strip().lower()
    if policy not in POLICIES:  # refuse to start rather than guess who may take the models
        raise ValueError(f"NEURONLAB_DOWNLOADS is {policy!r}: it must be one of {', '.join(POLICIES)}")


bp.record_once(check_setting)


def file_name(name, model_id, fmt):
    """A model's human name as a file name: "CNN · 2 epochs · sample · 93.4%" -> "CNN-2-epochs-sample-93.4.keras".

    Letters of any script stay (the header carries them as filename*); separators, slashes and symbols become one
    "-"; the model's id stands in for a name with nothing left."""
    text = unicodedata.normalize("NFC", str(name or ""))
    stem = UNSAFE.sub("-", text).strip("-.")[:MAX_FILE_NAME].strip("-.")
    return f"{stem or model_id}.{fmt}"


def may_download(policy, meta, active_ids, teacher):
    """Whether this caller may take this model home (see the module's docstring)."""
    if teacher or policy == "everyone":
        return True
    if policy == "shared":
        return meta.get("source") == "shipped" or meta.get("id") in active_ids
    return False  # "teacher"


@bp.get("/api/models/<model_id>/download")
def download(model_id):
    lab = current_lab()
    fmt = request.args.get("format", "keras")
    meta = lab.metadata(model_id)  # 404 for anything that is not a listed model
    if fmt not in FORMATS:
        raise ApiError(400, f"format must be one of {', '.join(FORMATS)}", field="format")
    active_ids = {v for v in lab.active().values() if v}
    if not may_download(lab.settings.downloads, meta, active_ids, auth.is_teacher()):
        raise ApiError(403, "only the teacher may download this model: everyone may download the shipped models "
                            "and the ones the class uses" if lab.settings.downloads == "shared"
                       else "only the teacher may download models")
    for attempt in (1, 2):  # a file replaced between finding and opening it (saved again, re-exported): once more
        try:
            path = lab.store.path(model_id) if fmt == "keras" else exported(lab, model_id, fmt)
            # conditional: ETag, Last-Modified and Range from the file; send_file streams it, never reads it whole
            return send_file(path, mimetype=MIMETYPES[fmt], as_attachment=True,
                             download_name=file_name(meta.get("name"), model_id, fmt), conditional=True, max_age=0)
        except (UnknownModel, FileNotFoundError):
            lab.store.refresh()
            if attempt == 2:
                raise ApiError(404, f"no model called {model_id[:80]!r}") from None


def exported(lab, model_id, fmt):
    """The path of the model saved as `fmt`, made (or found in the cache) by an inference worker."""
    try:
        return lab.predictor.export(model_id, fmt, lab.home / EXPORTS_FOLDER)
    except LoadError as exc:  # a broken file
        raise ApiError(422, f"the model cannot be exported: {without_paths(str(exc))}") from None
    except OSError as exc:
        raise (write_error(exc, "could not export the model")
               or ApiError(503, "the model could not be exported: the server could not write the file")) from None
    except RuntimeError:  # the worker's answer to anything else, e.g. the model deleted a moment ago
        lab.store.refresh()
        lab.metadata(model_id)  # 404 if it is gone
        raise ApiError(503, "the model could not be exported: try again") from None
