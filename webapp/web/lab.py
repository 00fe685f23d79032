"""The app's services in one place: settings, the model store, the active
models and the predictor. Views and socket handlers reach them through
`current_lab()`; nothing here imports Flask except that accessor."""
import json
import threading
from pathlib import Path

import numpy as np

from webapp.config import model_store
from webapp.core.inference import Predictor
from webapp.core.models import check_digit_model, load_file
from webapp.core.modelstore import UnknownModel, atomic_write_json, valid_id
from webapp.core.networks import DIGIT_NETWORKS
from webapp.core.preprocess import BlankImage, preprocess
from webapp.core.preprocess_pool import PreprocessPool


class ApiError(Exception):
    """An error for the client: an HTTP status and a message."""

    def __init__(self, status, message, **extra):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra

    def to_dict(self):
        return {"error": self.message, **self.extra}


class Lab:
    def __init__(self, settings):
        self.settings = settings
        self.home = Path(settings.home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.store = model_store(settings)
        self._active_file = self.home / "active.json"
        self._lock = threading.Lock()
        self._chosen_cache = None
        self.predictor = Predictor(self._load_digit_model)
        self.preprocess_pool = (PreprocessPool(settings.preprocess_processes, settings.max_image_pixels)
                                if settings.preprocess_processes > 0 else None)
        self.jobs = None  # set by webapp.web.jobs

    # -- models ---------------------------------------------------------

    def _load_digit_model(self, model_id):
        model = load_file(self.store.path(model_id))
        check_digit_model(model)
        return model

    def models(self):
        active = self.active()
        models = self.store.list()
        for meta in models:
            meta["active"] = meta["id"] == active.get(meta.get("network")) or meta["id"] == active.get("default")
            meta["default"] = meta["id"] == active.get("default")
        return models

    def _chosen(self):
        """The teacher's picks from active.json. Only this process writes it
        (one gunicorn worker), so it is read once and kept until activate()."""
        if self._chosen_cache is None:
            try:
                self._chosen_cache = json.loads(self._active_file.read_text())
            except (OSError, ValueError):
                self._chosen_cache = {}
        return self._chosen_cache

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
        with self._lock:
            chosen = {k: v for k, v in self.active().items() if v}
            chosen[network] = model_id
            chosen["default"] = model_id
            atomic_write_json(self._active_file, chosen)
            self._chosen_cache = chosen
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
            raise ApiError(507, f"could not store the name: {exc.strerror or exc}") from None

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

    def read_digit(self, image_bytes, model=None):
        """The whole answer to one drawn digit, as the API returns it."""
        model_id, meta = self.resolve(model)
        network = meta.get("network")
        try:
            image = self.prepare(image_bytes)
        except BlankImage as exc:
            return {"digit": None, "blank": True, "message": str(exc), "probabilities": None,
                    "model": model_id, "network": network, "input": np.zeros((28, 28)).tolist()}
        probabilities = self.predictor.probabilities(model_id, image)
        return {
            "digit": int(np.argmax(probabilities)),
            "probabilities": [round(float(p), 6) for p in probabilities],
            "model": model_id,
            "network": network,
            "input": np.round(image, 3).tolist(),
        }

    def prepare(self, image_bytes):
        """Image bytes -> the 28x28 image, in a worker process where there are any."""
        if self.preprocess_pool is not None:
            return self.preprocess_pool.preprocess(image_bytes)
        return preprocess(image_bytes, self.settings.max_image_pixels)

    def forget_model(self, model_id):
        self.predictor.forget(model_id)
