"""Start the app: gunicorn (one gthread worker) where it runs, else Werkzeug.

One worker, because the jobs, the Socket.IO rooms and the loaded models live in
that process; threads give the concurrency.
"""
import logging
import os
import secrets
import socket
import sys
import threading

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


SWITCH_INTERVAL_S = 0.001


def tune_worker_process():
    """Interpreter settings for the process that serves the app.

    - Request threads mostly wait (sockets, the inference thread, the
      preprocessing workers); one that wakes should get the GIL within ~1 ms,
      not the default 5 ms (measured: lower latency at one connection, more
      predictions a second at eight).
    - python-engineio's websocket writer thread closes the socket on its way
      out; when the browser has already gone, simple-websocket may have closed
      it first and the writer dies with EBADF. The connection was over and
      nothing is lost, so that is one log line, not a traceback."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    previous = threading.excepthook

    def excepthook(args):
        if issubclass(args.exc_type, OSError) and args.thread is not None and args.thread.name.endswith("(writer)"):
            logging.getLogger("webapp").info("a websocket closed while its writer finished: %s", args.exc_value)
            return
        previous(args)

    threading.excepthook = excepthook


def ensure_token():
    """One teacher token for the whole run: gunicorn's master and worker share it."""
    os.environ.setdefault("NEURONLAB_TOKEN", secrets.token_urlsafe(18))


def serve(host=None, port=None, mnist=None):
    ensure_token()
    settings = Settings.from_env(host=host, port=port, mnist=mnist)
    from webapp.web import create_app

    print(banner(settings), flush=True)
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:  # e.g. Windows: no gunicorn
        BaseApplication = None
    if BaseApplication is None:
        from webapp.web import get_socketio

        tune_worker_process()
        app = create_app(settings)
        get_socketio(app).run(app, host=settings.host, port=settings.port, allow_unsafe_werkzeug=True)
        return 0

    class Gunicorn(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{settings.host}:{settings.port}")
            self.cfg.set("workers", 1)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", settings.threads)
            self.cfg.set("timeout", 0)  # long-lived websockets must not be killed
            self.cfg.set("accesslog", None)

        def load(self):  # in the worker, after the fork: threads and models start there
            tune_worker_process()
            return create_app(settings)

    Gunicorn().run()
    return 0


if __name__ == "__main__":
    sys.exit(serve())
