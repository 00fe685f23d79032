"""Settings, read from NEURONLAB_* environment variables (and PORT).

Every setting is documented in README.md; keep the two in step.
"""
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODELS = ROOT / "models"


def _bool(text):
    return text.strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Settings:
    host: str = "0.0.0.0"
    port: int = 5000
    home: Path = ROOT / "instance"  # job database, trained and uploaded models
    models: Path = SHIPPED_MODELS  # the models that ship with the repo
    mnist: str | None = None  # MNIST npz path; None: keras.datasets
    token: str | None = None  # teacher token; None: generated at start-up
    trust_localhost: bool = True  # requests from this machine act as the teacher
    max_request_bytes: int = 5 * 1024 * 1024  # any request body; also Socket.IO's max_http_buffer_size
    max_upload_bytes: int = 64 * 1024 * 1024  # an uploaded model file (POST /api/models) only
    max_image_pixels: int = 16_000_000
    max_queued_jobs: int = 5
    predict_rate: float = 20.0  # predictions per second per address (REST and all its Socket.IO connections); 0: off
    allowed_origins: list = field(default_factory=list)  # extra Socket.IO origins
    inference_processes: int = 2  # worker processes that prepare drawings and run the models (at least 1)
    inference_runtime: str = "litert"  # how they run them: "litert", or "keras" (webapp/core/forward.py)
    lone_drawer_inline: bool = True  # one connection drawing alone is read in the web process (webapp/core/inline.py)
    request_timeout: float = 10.0  # seconds for a request's headers, and again for its body (slowloris)
    max_sockets_per_address: int = 20  # open Socket.IO connections per client address (x3: TCP connections)
    # An uploaded model is checked from its metadata before Keras reads it (webapp/core/model_files.py).
    # Keras stores a .keras's members and an .h5's datasets uncompressed, so a real model unpacks to about
    # its file's size: the upload limit's default. Loading and saving a model costs the web process about
    # 4x its weights (a 58 MB model: +229 MB RSS), so more would break the 300 MB budget. Raise with it.
    max_model_unpacked_bytes: int = 64 * 1024 * 1024  # a .keras's files, or an .h5's datasets, in all
    max_model_config_bytes: int = 1024 * 1024  # its config.json or model_config; the shipped ones: 2-7 KB
    max_model_config_depth: int = 64  # JSON nesting of that config; the shipped ones: 7
    max_model_members: int = 100  # files in a .keras: a model has 3, plus any assets
    max_model_objects: int = 10_000  # groups and datasets in an .h5; the shipped CNN's weights have 30
    max_model_ratio: float = 200.0  # unpacked / stored size of one file or dataset (Keras's own: 1)...
    model_ratio_floor_bytes: int = 1024 * 1024  # ...over this size
    # Who may download model files (webapp/web/downloads.py): "shared" (everyone the shipped models and the
    # class's active ones, the teacher every model), "everyone", or "teacher" (the teacher only).
    downloads: str = "shared"
    # The class's datasets (webapp/web/datasets_api.py): drawings a client address may add per minute (REST and
    # Socket.IO together; 0: off), drawings one browser id may add to one dataset, and drawings in one dataset.
    drawing_rate: float = 60.0
    max_drawings_per_client: int = 500
    max_dataset_drawings: int = 20_000
    # The distributed mode (docs/SCALING.md): training on Celery workers and several web processes, through one
    # Redis, e.g. redis://HOST:6379/0. None: the embedded mode, one web process and a local training process.
    redis_url: str | None = None
    web_processes: int = 1  # gunicorn workers (`serve --workers N`); more than one needs redis_url

    ENV = {
        "host": "NEURONLAB_HOST",
        "port": "PORT",
        "home": "NEURONLAB_HOME",
        "models": "NEURONLAB_MODELS",
        "mnist": "NEURONLAB_MNIST",
        "token": "NEURONLAB_TOKEN",
        "trust_localhost": "NEURONLAB_TRUST_LOCALHOST",
        "max_request_bytes": "NEURONLAB_MAX_REQUEST_BYTES",
        "max_upload_bytes": "NEURONLAB_MAX_UPLOAD_BYTES",
        "max_image_pixels": "NEURONLAB_MAX_IMAGE_PIXELS",
        "max_queued_jobs": "NEURONLAB_MAX_QUEUED_JOBS",
        "predict_rate": "NEURONLAB_PREDICT_RATE",
        "allowed_origins": "NEURONLAB_ALLOWED_ORIGINS",
        "inference_processes": "NEURONLAB_INFERENCE_PROCESSES",
        "inference_runtime": "NEURONLAB_INFERENCE_RUNTIME",
        "lone_drawer_inline": "NEURONLAB_LONE_DRAWER_INLINE",
        "request_timeout": "NEURONLAB_REQUEST_TIMEOUT",
        "max_sockets_per_address": "NEURONLAB_MAX_SOCKETS_PER_ADDRESS",
        "max_model_unpacked_bytes": "NEURONLAB_MAX_MODEL_UNPACKED_BYTES",
        "max_model_config_bytes": "NEURONLAB_MAX_MODEL_CONFIG_BYTES",
        "max_model_config_depth": "NEURONLAB_MAX_MODEL_CONFIG_DEPTH",
        "max_model_members": "NEURONLAB_MAX_MODEL_MEMBERS",
        "max_model_objects": "NEURONLAB_MAX_MODEL_OBJECTS",
        "max_model_ratio": "NEURONLAB_MAX_MODEL_RATIO",
        "model_ratio_floor_bytes": "NEURONLAB_MODEL_RATIO_FLOOR_BYTES",
        "downloads": "NEURONLAB_DOWNLOADS",
        "drawing_rate": "NEURONLAB_DRAWING_RATE",
        "max_drawings_per_client": "NEURONLAB_MAX_DRAWINGS_PER_CLIENT",
        "max_dataset_drawings": "NEURONLAB_MAX_DATASET_DRAWINGS",
        "redis_url": "NEURONLAB_REDIS_URL",
        "web_processes": "NEURONLAB_WEB_PROCESSES",
    }

    @classmethod
    def from_env(cls, environ=None, **overrides):
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            name = cls.ENV.get(f.name)
            if name and environ.get(name, "") != "":
                values[f.name] = cls._parse(f.name, environ[name])
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.home = Path(settings.home)
        settings.models = Path(settings.models)
        return settings

    @classmethod
    def _parse(cls, name, text):
        default = getattr(cls(), name)
        if isinstance(default, bool):
            return _bool(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, list):
            return [part.strip() for part in text.split(",") if part.strip()]
        if isinstance(default, Path):
            return Path(text).expanduser()
        return text


def model_store(settings=None, owner=True):
    """The model store: trained and uploaded models in the instance folder,
    and the shipped ones in models/ (`owner`: see ModelStore)."""
    from webapp.core.modelstore import SHARED_FOLDER_GRACE_S, ModelStore

    settings = settings or Settings.from_env()
    return ModelStore(Path(settings.home) / "models", shipped=[settings.models], owner=owner,
                      leftover_age=SHARED_FOLDER_GRACE_S if settings.redis_url else 0)
