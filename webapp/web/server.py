"""Start the app: gunicorn with one gevent worker (webapp.web.front_door) where it runs, else Werkzeug.

One worker, because the jobs and the Socket.IO rooms live in that process; its
event loop gives the concurrency, and the inference workers (processes of their
own) do the computing.
"""
import os
import secrets
import socket
import sys

from webapp.config import Settings
from webapp.web.sharing import share_lines


def lan_addresses():
    """This machine's IPv4 addresses on its network interfaces (no traffic sent)."""
    import psutil

    found = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                found.append(address.address)
    return sorted(set(found))


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


def serve(host=None, port=None, mnist=None):
    ensure_token()
    settings = Settings.from_env(host=host, port=port, mnist=mnist)
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

        def load(self):  # in the worker, after the fork and gevent's patching: the app starts there
            from webapp.web import create_app

            return create_app(settings)

    Gunicorn().run()
    return 0


if __name__ == "__main__":
    sys.exit(serve())
