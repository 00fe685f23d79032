"""gunicorn settings for Neuron Lab (read by `gunicorn` from this folder).

One worker: jobs, Socket.IO rooms and loaded models live in one process.
Threads give the concurrency (async_mode='threading'); no eventlet or gevent.
"""

from webapp.config import Settings
from webapp.web.server import banner, ensure_token, tune_worker_process

ensure_token()  # before the fork, so the printed teacher link works in the worker
_settings = Settings.from_env()

bind = f"{_settings.host}:{_settings.port}"
workers = 1
worker_class = "gthread"
threads = _settings.threads  # each open Socket.IO connection holds one
timeout = 0  # websockets stay open for a whole lesson
accesslog = None


def when_ready(server):
    print(banner(Settings.from_env()), flush=True)


def post_worker_init(worker):
    tune_worker_process()
