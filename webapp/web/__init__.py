"""The web layer: the Flask app factory, JSON API, pages and Socket.IO events.

It uses webapp.core; the core never imports from here.
"""
import secrets
import tempfile

from flask import Flask, Request, jsonify, request
from flask_socketio import SocketIO
from werkzeug.exceptions import HTTPException

from webapp.config import ROOT, Settings
from webapp.core.execution.redis_link import SOCKETIO_CHANNEL
from webapp.core.modelstore import TMP_PREFIX
from webapp.web.fastjson import FastJSONProvider, SocketJSON, SocketPacket
from webapp.web.connections import Connections
from webapp.web.lab import ApiError, Lab, current_lab
from webapp.web.limits import RateLimiter


def create_app(settings=None):
    settings = settings or Settings.from_env()
    if not settings.token:
        settings.token = secrets.token_urlsafe(18)

    app = Flask(
        __name__,
        static_folder=str(ROOT / "static"),
        template_folder=str(ROOT / "templates"),
    )
    app.request_class = InstanceRequest
    app.json = FastJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    lab = Lab(settings)
    app.extensions["neuronlab"] = lab

    socketio = SocketIO(
        app,
        async_mode=async_mode(),
        json=SocketJSON,
        serializer=SocketPacket,
        max_http_buffer_size=settings.max_request_bytes,
        # None: only pages served by this app may connect (the browser's Origin must match).
        cors_allowed_origins=settings.allowed_origins or None,
        # Distributed mode: an emit from any web process reaches the clients of every one (docs/SCALING.md).
        **({"message_queue": settings.redis_url, "channel": SOCKETIO_CHANNEL} if settings.redis_url else {}),
    )
    lab.socketio = socketio
    lab.limiter = RateLimiter(settings.predict_rate)
    lab.connections = Connections(settings.max_sockets_per_address)

    from webapp.web import (api, auth, datasets_api, datasets_events, downloads, events, inspect_api, jobs, pages,
                            rounds, sharing, xor_api)

    auth.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(sharing.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(downloads.bp)
    app.register_blueprint(inspect_api.bp)
    events.register(socketio, lab)
    jobs.init_app(app, socketio, lab)
    xor_api.init_app(app, socketio, lab)
    datasets_api.init_app(app, socketio, lab)
    rounds.init_app(app, socketio, lab)
    datasets_events.register(socketio, lab)

    @app.errorhandler(ApiError)
    def api_error(exc):
        return jsonify(exc.to_dict()), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc):
        if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
            messages = {413: f"the request is too large: the limit is {settings.max_request_bytes:,} bytes"}
            return jsonify({"error": messages.get(exc.code, exc.description)}), exc.code
        return exc

    @app.errorhandler(Exception)
    def unexpected(exc):  # a bug: log it, but answer JSON rather than an HTML page
        app.logger.exception("unexpected error on %s", request.path)
        return jsonify({"error": "internal error"}), 500

    return app


class InstanceRequest(Request):
    """Flask's request, whose form uploads beyond SPOOL_BYTES wait in the instance folder's uploads/ (as an
    unnamed temporary file, gone when closed or killed) instead of the system's temporary folder, often a tmpfs
    in memory. Werkzeug documents `_get_file_stream` as the place to change this."""

    SPOOL_BYTES = 500 * 1024  # Werkzeug's own threshold: smaller ones stay in memory

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        folder = current_lab().home / "uploads"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:  # a read-only instance folder: predictions must go on, as before
            return super()._get_file_stream(total_content_length, content_type, filename, content_length)
        return tempfile.SpooledTemporaryFile(max_size=self.SPOOL_BYTES, dir=folder, prefix=TMP_PREFIX)


def async_mode():
    """gevent under the server (webapp.web.front_door has patched the standard library), else threads."""
    try:
        from gevent import monkey
    except ImportError:
        return "threading"
    return "gevent" if monkey.is_module_patched("socket") else "threading"


def get_socketio(app):
    return app.extensions["neuronlab"].socketio

