"""The app's services in one place: settings, the model store, the active
models, the inference workers, the jobs, the limits and the Socket.IO server.
Views and socket handlers reach them through `current_lab()`, the one accessor;
nothing here imports Flask except that accessor."""
import errno
import json
import logging
import shutil
import sqlite3
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from webapp.config import model_store
from webapp.core.inference import InferenceWorkers
from webapp.core.models import LoadError
from webapp.core.modelstore import SHARED_FOLDER_GRACE_S, TMP_PREFIX, UnknownModel, atomic_write_json, valid_id
from webapp.core.recipes import DIGIT_NETWORKS
from webapp.core.preprocess import BlankImage


class ApiError(Exception):
    """An error for the client: an HTTP status and a message."""

    def __init__(self, status, message, **extra):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra

    def to_dict(self):
        return {"error": self.message, **self.extra}


# -- writes the disk refuses ------------------------------------------------------
# One mapping from what the OS or SQLite says to what a client is told (507, the reason).

log = logging.getLogger(__name__)
DISK_FULL = "the server's disk is full"
READ_ONLY = "the instance folder is read-only"
CANNOT_WRITE = "the server cannot write to its instance folder"
FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}


def storage_reason(exc):
    """(kind, words) for an OSError or SQLite error that a full or read-only disk
    causes, else None. Never uses str(exc) for an OSError: it holds the path."""
    if isinstance(exc, OSError):
        if exc.errno in FULL_ERRNOS:
            return "disk_full", DISK_FULL
        if exc.errno in READ_ONLY_ERRNOS:
            return "read_only", READ_ONLY
        detail = exc.strerror or errno.errorcode.get(exc.errno or 0) or type(exc).__name__
        return "cannot_write", f"{CANNOT_WRITE} ({detail.lower()})"
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        if "full" in text:  # "database or disk is full"
            return "disk_full", DISK_FULL
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            return "read_only", READ_ONLY
        if "disk i/o error" in text:
            return "cannot_write", f"{CANNOT_WRITE} (disk I/O error)"
    return None


def write_error(exc, doing="could not save"):
    """The 507 answer for a write the disk refused, e.g. "could not store the name:
    the server's disk is full"; None for an error that is not the disk's."""
    reason = storage_reason(exc)
    if reason is None:
        return None
    kind, words = reason
    return ApiError(507, f"{doing}: {words}", reason=kind)


@contextmanager
def writing(doing):
    """Turn a full or read-only disk inside the block into a 507 ApiError (logged)."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as exc:
        error = write_error(exc, doing)
        if error is None:
            raise
        log.warning("%s: %s", doing, exc)
        raise error from None


def write_problem(folder):
    """Why nothing can be written in `folder` (its words), or None: checked once at start-up."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=TMP_PREFIX) as f:
            f.write(b"x")
            f.flush()
    except OSError as exc:
        return storage_reason(exc)[1]
    return None


def remove_upload_leftovers(uploads, older_than=0):
    """A server killed mid-upload leaves `uploads/.tmp-*` files (and extraction folders): drop those older than
    `older_than` seconds (with several web processes, a younger one may be another's upload in progress)."""
    removed = []
    try:
        leftovers = list(Path(uploads).glob(TMP_PREFIX + "*"))
    except OSError:
        return removed
    now = time.time()
    for leftover in leftovers:
        try:
            if older_than > 0 and now - leftover.stat().st_mtime <= older_than:
                continue
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()
            removed.append(leftover.name)
        except FileNotFoundError:
            pass
        except OSError as exc:  # a read-only folder: they stay until a start that can write
            log.warning("could not remove the upload leftover %s: %s", leftover.name, exc.strerror)
    if removed:
        log.warning("removed %d file(s) left by an interrupted upload: %s", len(removed), ", ".join(removed))
    return removed


def current_lab():
    """The app's Lab (its services), from a view or a Socket.IO handler."""
    from flask import current_app

    return current_app.extensions["neuronlab"]


FALLBACK_NETWORKS = ("cnn", "mlp", "mlp2")  # the default's order, as in Lab.active()


def named(meta, probabilities):
    """What the answer is called: a digit model says `digit` and `label`; a model trained on the class's own
    labels (metadata `labels`, e.g. letters) says `label` and lists `labels`. None when nothing was drawn."""
    best = None if probabilities is None else int(np.argmax(probabilities))
    labels = meta.get("labels")
    if labels:
        return {"label": None if best is None else labels[best], "labels": list(labels)}
    return {"digit": best, "label": None if best is None else str(best)}


class Lab:
    def __init__(self, settings):
        self.settings = settings
        self.home = Path(settings.home)
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # the server still starts: predictions need no writes
            log.warning("cannot create the instance folder %s: %s", self.home, exc.strerror)
        self.write_problem = write_problem(self.home) if self.home.is_dir() else READ_ONLY
        if self.write_problem:
            log.warning("%s (%s): every write will be answered 507; predictions go on",
                        self.write_problem, self.home)
        self.store = model_store(settings)
        remove_upload_leftovers(self.home / "uploads", SHARED_FOLDER_GRACE_S if settings.redis_url else 0)
        self._active_file = self.home / "active.json"
        self._lock = threading.Lock()
        self._chosen_cache = None
        self._broken = {}  # model id -> (its file's modification time, why it cannot load)
        self.predictor = InferenceWorkers(settings)  # the drawings' recipe and the models, in worker processes
        # Set by the app factory and the modules that make them (create_app, jobs, xor_api):
        self.socketio = None
        self.jobs = None  # JobManager
        self.limiter = None  # predictions per address (limits.RateLimiter)
        self.connections = None  # open Socket.IO connections per address (connections.Connections)
        self.xor_models = None  # xor_api.XorModels
        self.studies = None  # xor_api.Studies
        self.datasets = None  # the class's drawings (core.class_data.DatasetStore)
        self.datasets_problem = None  # why the datasets cannot be written, when they cannot
        self.drawing_limiter = None  # drawings added per address (limits.RateLimiter)
        self.rounds = None  # the collection round under way, if any

    def dataset_store(self):
        """The class's DatasetStore; 507 when the instance folder could not hold one at start-up."""
        if self.datasets is None:
            problem = self.datasets_problem or "the server cannot write its datasets"
            raise ApiError(507, f"the class's datasets are unavailable: {problem}", reason="unavailable")
        return self.datasets

    # -- models ---------------------------------------------------------

    def models(self):
        active = self.active()
        models = self.store.list()
        for meta in models:
            meta["active"] = meta["id"] == active.get(meta.get("network")) or meta["id"] == active.get("default")
            meta["default"] = meta["id"] == active.get("default")
            if meta["id"] in self._broken:
                meta["broken"] = self._broken[meta["id"]][1]
        return models

    def _chosen(self):
        """The teacher's picks from active.json, read again when the file changes: several web processes
        (the distributed mode) share it, and any of them may write it. A stat per call (hot path: ~2 us)."""
        try:
            stat = self._active_file.stat()
            signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except OSError:
            signature = None
        cached = self._chosen_cache
        if cached is None or cached[0] != signature:
            try:
                chosen = json.loads(self._active_file.read_text()) if signature else {}
            except (OSError, ValueError):
                chosen = {}
            cached = self._chosen_cache = (signature, chosen if isinstance(chosen, dict) else {})
        return cached[1]

    def active(self):
        """Which model answers for each network, and the default one."""
        chosen = self._chosen()
        available = {m["id"]: m.get("network") for m in self.store.list()}
        active = {}
        for network in DIGIT_NETWORKS:
            pick = chosen.get(network)
            if pick not in available:
                pick = network if network in available else None
            if pick:
                active[network] = pick
        default = chosen.get("default")
        if default not in available:
            default = active.get("cnn") or active.get("mlp") or next(iter(active.values()), None)
        active["default"] = default
        return active

    def activate(self, model_id):
        meta = self.metadata(model_id)
        network = meta.get("network")
        if network not in DIGIT_NETWORKS and meta.get("source") != "uploaded":
            raise ApiError(400, f"model {model_id!r} is not a digit model")
        if meta.get("labels"):  # the class's default answers digits; a letters model is chosen on the Draw page
            raise ApiError(400, f"model {model_id!r} reads {', '.join(meta['labels'][:5])}…, not digits: "
                                "choose it on the Draw page instead")
        with self._lock:
            chosen = {k: v for k, v in self.active().items() if v}
            chosen[network] = model_id
            chosen["default"] = model_id
            with writing("could not activate the model"):
                atomic_write_json(self._active_file, chosen)
            self._chosen_cache = None  # read back with the new file's signature
        return self.active()

    def rename(self, model_id, name):
        """The teacher's name for a model; 400 for a bad name, 404 for an unknown model."""
        try:
            return self.store.rename(model_id, name)
        except UnknownModel:
            raise ApiError(404, f"no model called {str(model_id)[:80]!r}") from None
        except ValueError as exc:
            raise ApiError(400, str(exc), field="name") from None
        except OSError as exc:
            raise write_error(exc, "could not store the name") from None

    def metadata(self, model_id):
        try:
            return self.store.metadata(model_id)
        except (UnknownModel, OSError, ValueError):
            raise ApiError(404, f"no model called {str(model_id)[:80]!r}") from None

    def resolve(self, name):
        """A request's model as (id, metadata): None -> the default, a network
        -> its active model, else an id. Lists the store once (hot path)."""
        active = self.active()
        if name is None or name == "":
            name = active.get("default")
            if name is None:
                raise ApiError(404, "no digit model is available yet: train one first")
        if not isinstance(name, str):
            raise ApiError(400, "model must be a string")
        if name in DIGIT_NETWORKS and active.get(name):
            name = active[name]
        elif not valid_id(name):
            raise ApiError(404, f"no model called {name[:80]!r}")
        meta = self.metadata(name)
        if meta.get("network") not in DIGIT_NETWORKS and meta.get("source") != "uploaded":
            raise ApiError(400, f"model {name!r} is not a digit model")
        return name, meta

    # -- prediction -----------------------------------------------------

    def read_digit(self, image_bytes, model=None, caller=None):
        """The whole answer to one drawn digit, as the API returns it. `caller` names the connection (see
        InferenceWorkers.read).

        When the chosen model cannot be loaded, the next working one of its network
        answers, and the answer says so under "fallback" (see `_fallbacks`)."""
        model_id, meta = self.resolve(model)
        network = meta.get("network")
        try:
            if self._is_broken(model_id):
                raise LoadError("known to be broken")
            image, probabilities = self.predictor.read(model_id, image_bytes, caller)  # the usual case
            answered = meta
        except BlankImage as exc:
            return {**named(meta, None), "blank": True, "message": str(exc), "probabilities": None,
                    "model": model_id, "network": network, "input": np.zeros((28, 28)).tolist()}
        except LoadError:  # a broken model: the image first, then the models in the fallback order
            image = self.prepare(image_bytes)
            probabilities, answered = self._probabilities(model_id, meta, image)
        answer = {
            **named(answered, probabilities),
            "probabilities": np.round(np.asarray(probabilities, np.float64), 6),  # orjson writes arrays in C
            "model": answered["id"],
            "network": answered.get("network"),
            "input": np.round(image, 3),
        }
        if answered["id"] != model_id:
            why = self._broken.get(model_id, (None, "it cannot be loaded"))[1]
            answer["fallback"] = {
                "broken": model_id, "broken_name": meta.get("name", model_id), "error": why,
                "message": f"{meta.get('name', model_id)} ({model_id}) is broken: {why}. "
                           f"{answered.get('name', answered['id'])} ({answered['id']}) answered instead.",
            }
        return answer

    def inspect_digit(self, image_bytes, model=None):
        """Inside the network for one drawn digit: read_digit's answer plus every layer's output, the saliency map
        and the first convolution's kernels, numbers still as float16 bytes (webapp/core/inspection.py). No
        fallback: the layers are those of the model asked for, so a broken one raises LoadError. `input` is the
        image exactly as the network saw it (not rounded), so the layers can be checked against it."""
        model_id, meta = self.resolve(model)
        answer = {"model": model_id, "network": meta.get("network")}
        try:
            if self._is_broken(model_id):
                raise LoadError(self._broken[model_id][1])
            image, inside = self.predictor.inspect(model_id, image_bytes)
        except BlankImage as exc:
            return {**named(meta, None), "blank": True, "message": str(exc), "probabilities": None, **answer,
                    "input": np.zeros((28, 28)).tolist(), "layers": [], "saliency": None, "kernels": None}
        probabilities = inside["probabilities"]
        return {**named(meta, probabilities), "probabilities": [round(float(p), 6) for p in probabilities],
                "input": np.asarray(image, np.float64).tolist(), **answer, "layers": inside["layers"],
                "saliency": inside["saliency"], "kernels": inside["kernels"]}

    # -- broken models ----------------------------------------------------
    # A model whose file cannot be loaded is remembered with its file's modification
    # time, so predictions skip it without retrying, until the file changes.

    def _file_mtime(self, model_id):
        try:
            return self.store.path(model_id).stat().st_mtime_ns
        except (UnknownModel, OSError):
            return None

    def _is_broken(self, model_id):
        known = self._broken.get(model_id)  # a healthy model costs one dict look-up
        if known is None:
            return False
        if self._file_mtime(model_id) != known[0]:
            self._broken.pop(model_id, None)  # the file changed: try it again
            return False
        return True

    def _mark_broken(self, model_id, exc):
        self._broken[model_id] = (self._file_mtime(model_id), str(exc))
        log.warning("model %s cannot be loaded, predictions fall back to another: %s", model_id, exc)

    def _probabilities(self, model_id, meta, image):
        """(probabilities, metadata of the model that answered): the chosen one if it loads."""
        if not self._is_broken(model_id):
            try:
                return self.predictor.probabilities(model_id, image), meta
            except LoadError as exc:
                self._mark_broken(model_id, exc)
        for candidate in self._fallbacks(model_id, meta):
            if self._is_broken(candidate["id"]):
                continue
            try:
                return self.predictor.probabilities(candidate["id"], image), candidate
            except LoadError as exc:
                self._mark_broken(candidate["id"], exc)
        why = self._broken.get(model_id, (None, "it cannot be loaded"))[1]
        raise ApiError(503, f"no working digit model: {meta.get('name', model_id)} ({model_id}) is broken: {why}, "
                            "and no other digit model loads", model=model_id)

    def _fallbacks(self, model_id, meta):
        """Who answers when `model_id` cannot: for each network (its own first, then
        cnn, mlp, mlp2: the page asks for the default by id, and a student should get
        an answer), the teacher's active model, then the shipped one, then the others,
        newest first."""
        models = [m for m in self.store.list() if m["id"] != model_id]
        by_id = {m["id"]: m for m in models}
        active = self.active()
        network = meta.get("network")
        networks = [network] if network in DIGIT_NETWORKS else []
        networks += [n for n in FALLBACK_NETWORKS if n not in networks]
        order = []
        for net in networks:
            order.append(by_id.get(active.get(net)))
            shipped = by_id.get(net)
            order.append(shipped if shipped and shipped.get("source") == "shipped" else None)
            order += sorted((m for m in models if m.get("network") == net),
                            key=lambda m: str(m.get("date") or ""), reverse=True)
        seen = set()
        for candidate in order:
            if candidate and candidate.get("network") in networks and candidate["id"] not in seen \
                    and candidate.get("labels") == meta.get("labels"):  # letters never answer for digits
                seen.add(candidate["id"])
                yield candidate

    def prepare(self, image_bytes):
        """Image bytes -> the 28x28 image, prepared in an inference worker."""
        return self.predictor.preprocess(image_bytes)

    def forget_model(self, model_id):
        self.predictor.forget(model_id)
