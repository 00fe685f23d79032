"""gunicorn settings for Neuron Lab (read by `gunicorn` from this folder: the Procfile's command).

One gevent worker (webapp.web.front_door): jobs and Socket.IO rooms live in one
process, its event loop holds every connection, and inference runs in worker
processes of its own. The same settings as `python -m webapp` (webapp.web.server.GUNICORN).
NEURONLAB_WEB_PROCESSES=N (with NEURONLAB_REDIS_URL) runs N of them, as `serve --workers N` does.
"""
import sys

from webapp.config import Settings
from webapp.web.server import GUNICORN, CannotServe, banner, check_mode, ensure_token

ensure_token()  # before the fork, so the printed teacher link works in the worker
_settings = Settings.from_env()
try:
    check_mode(_settings)
except CannotServe as exc:
    sys.exit(f"error: {exc}")

bind = f"{_settings.host}:{_settings.port}"
globals().update(GUNICORN)
workers = _settings.web_processes


def when_ready(server):
    print(banner(Settings.from_env()), flush=True)
