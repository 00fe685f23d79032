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
    predict_rate: float = 20.0  # predictions per second per client (IP for REST, connection for Socket.IO); 0: off
    allowed_origins: list = field(default_factory=list)  # extra Socket.IO origins
    threads: int = 300  # gunicorn threads: each open Socket.IO connection holds one
    preprocess_processes: int = 2  # worker processes that prepare drawn digits; 0: in the web process

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
        "threads": "NEURONLAB_THREADS",
        "preprocess_processes": "NEURONLAB_PREPROCESS_PROCESSES",
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


def model_store(settings=None):
    """The model store: trained and uploaded models in the instance folder,
    and the shipped ones in models/."""
    from webapp.core.modelstore import ModelStore

    settings = settings or Settings.from_env()
    return ModelStore(Path(settings.home) / "models", shipped=[settings.models])
