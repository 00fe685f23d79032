"""Start the app: gunicorn with gevent workers (webapp.web.front_door) where it runs, else Werkzeug.

One worker by default: the embedded mode's jobs and Socket.IO rooms live in that process; its event loop gives
the concurrency, and the inference workers (processes of their own) do the computing. `serve --workers N` runs
N such processes on one port (gunicorn's), which needs the distributed mode (NEURONLAB_REDIS_URL): the history
is shared through SQLite, and events cross processes through Redis (docs/SCALING.md).
"""
import os
import secrets
import sys

from webapp.config import Settings
from webapp.web.sharing import lan_addresses, share_lines


def urls(host, port):
    local = f"http://localhost:{port}/"
    if host in ("0.0.0.0", "::", ""):
        return local, [f"http://{ip}:{port}/" for ip in lan_addresses()]
    if host.startswith("127.") or host == "localhost":
        return local, []
    return local, [f"http://{host}:{port}/"]


def banner(settings):
    local, lan = urls(settings.host, settings.port)
    lines = ["", "Neuron Lab is running.", f"  On this computer:   {local}"]
    for url in lan:
        lines.append(f"  On the network:     {url}")
    if not lan:
        lines.append("  (not reachable from the network: listening on this computer only)")
    lines += share_lines(settings, local, lan)
    return "\n".join(lines) + "\n"


# The one gunicorn configuration; gunicorn.conf.py (the Procfile's command) reads it too.
GUNICORN = {
    "workers": 1,
    "worker_class": "webapp.web.front_door.Worker",
    "worker_connections": 10_000,  # open connections the event loop holds; the door limits each address
    "timeout": 0,  # no heartbeat kills: a first XOR request may load Keras for seconds
    "accesslog": None,
}


def ensure_token():
    """One teacher token for the whole run: gunicorn's master and worker share it."""
    os.environ.setdefault("NEURONLAB_TOKEN", secrets.token_urlsafe(18))


class CannotServe(Exception):
    """A setting that cannot work; the message says what to do."""


def check_mode(settings):
    """Refuse several web processes without Redis, and a Redis that cannot be reached (quickly, by its URL)."""
    if settings.web_processes < 1:
        raise CannotServe(f"--workers must be 1 or more, not {settings.web_processes}")
    if settings.web_processes > 1 and not settings.redis_url:
        raise CannotServe(f"{settings.web_processes} web processes need NEURONLAB_REDIS_URL (e.g. "
                          "redis://localhost:6379/0): without it each process would have its own job queue and "
                          "its viewers would miss the others' events. See docs/SCALING.md.")
    if settings.redis_url:
        from webapp.core.execution.redis_link import RedisUnavailable, check_redis

        try:
            check_redis(settings.redis_url)
        except RedisUnavailable as exc:
            raise CannotServe(str(exc)) from None


def serve(host=None, port=None, mnist=None, workers=None):
    ensure_token()
    settings = Settings.from_env(host=host, port=port, mnist=mnist, web_processes=workers)
    try:
        check_mode(settings)
    except CannotServe as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    print(banner(settings), flush=True)
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:  # e.g. Windows: no gunicorn
        BaseApplication = None
    if BaseApplication is None:
        from webapp.web import create_app, get_socketio

        app = create_app(settings)
        get_socketio(app).run(app, host=settings.host, port=settings.port, allow_unsafe_werkzeug=True)
        return 0

    class Gunicorn(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{settings.host}:{settings.port}")
            for name, value in GUNICORN.items():
                self.cfg.set(name, value)
            self.cfg.set("workers", settings.web_processes)

        def load(self):  # in the worker, after the fork and gevent's patching: the app starts there
            from webapp.web import create_app

            return create_app(settings)

    Gunicorn().run()
    return 0


if __name__ == "__main__":
    sys.exit(serve())
