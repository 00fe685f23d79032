"""Socket.IO events: connecting (with an optional teacher token), `whoami`, and
`predict` and `inspect`, answered through the acknowledgement.

`predict` and `inspect` come hundreds of times a second from a class, need no role, and are registered with
python-socketio itself rather than through Flask-SocketIO, which builds a Flask request context for every event
(URL matching included: ~75 us of the web process's ~1.3 ms per prediction); they run in an app context (~5 us)
and take the address from the connection's handshake.

Only same-origin pages may connect (python-socketio checks the Origin header;
NEURONLAB_ALLOWED_ORIGINS adds others). Handlers see the handshake's cookies,
headers and address through `request`, so webapp.web.auth works here as in views.
"""
from functools import partial

from flask import current_app, request

from webapp.web import auth, connections, limits
from webapp.web.api import decode_base64_image, predict_answer
from webapp.web.inspect_api import inspect_answer
from webapp.web.lab import ApiError


def register(socketio, lab):
    @socketio.on("connect")
    def connect(auth_data=None):
        """Accept everyone (viewers may watch) up to the limit per address; keep a token sent as
        `auth={"token": ...}`. Beyond the limit, ConnectionRefusedError's reason reaches the page."""
        connections.admit(request.sid, limits.client_address())
        auth.remember_socket_token(auth_data)

    @socketio.on("whoami")
    def whoami(*_data):
        return {"role": auth.role()}

    def drawing_event(event, answer_for):
        """{"image": data URL, "model": optional} -> the same JSON as POST /api/<event>, from
        `answer_for(sid)(image bytes, model)`."""
        def handler(sid, data=None, *_extra):
            environ = socketio.server.get_environ(sid) or {}
            app = environ.get("flask.app")
            if app is None:  # the connection went while the event waited its turn
                return {"error": "not connected", "status": 400}
            with app.app_context():
                return answer_drawing(event, answer_for(sid), data, environ.get("REMOTE_ADDR") or "unknown")
        return handler

    # the connection names the caller: one drawing alone may be read in this process (InferenceWorkers.read)
    socketio.server.on("predict", drawing_event("predict", lambda sid: partial(predict_answer, caller=("socket", sid))))
    socketio.server.on("inspect", drawing_event("inspect", lambda sid: inspect_answer))

    @socketio.on("disconnect")
    def disconnect(*_reason):
        connections.release(request.sid)


def answer_drawing(event, answer, data, address):
    """A drawing event's acknowledgement: `answer(image bytes, model)`, or an error with its "status". One bucket
    per address covers both events, REST and every connection; an error never breaks the connection."""
    try:
        allowed, wait = limits.allow_prediction(address)
        if not allowed:
            return {**limits.too_many(wait), "status": 429}
        if not isinstance(data, dict) or data.get("image") in (None, ""):
            raise ApiError(400, "no image: send {\"image\": \"<data URL or base64>\"}")
        return answer(decode_base64_image(data["image"]), data.get("model"))
    except ApiError as exc:
        return {**exc.to_dict(), "status": exc.status}
    except Exception:
        current_app.logger.exception("%s event failed", event)
        return {"error": "internal error", "status": 500}
