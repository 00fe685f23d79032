"""Socket.IO events: connecting (with an optional teacher token), `whoami`, and
`predict`, answered through the acknowledgement.

Only same-origin pages may connect (python-socketio checks the Origin header;
NEURONLAB_ALLOWED_ORIGINS adds others). Handlers see the handshake's cookies,
headers and address through `request`, so webapp.web.auth works here as in views.
"""
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

    @socketio.on("predict")
    def predict(data=None, *_extra):
        """{"image": data URL, "model": optional} -> the same JSON as POST /api/predict."""
        try:
            allowed, wait = limits.allow_prediction()  # one bucket per address, across its connections
            if not allowed:
                return {**limits.too_many(wait), "status": 429}
            if not isinstance(data, dict) or data.get("image") in (None, ""):
                raise ApiError(400, "no image: send {\"image\": \"<data URL or base64>\"}")
            return predict_answer(decode_base64_image(data["image"]), data.get("model"))
        except ApiError as exc:
            return {**exc.to_dict(), "status": exc.status}
        except Exception:  # never let one bad message break the connection
            current_app.logger.exception("predict event failed")
            return {"error": "internal error", "status": 500}

    @socketio.on("inspect")
    def inspect(data=None, *_extra):
        """{"image": data URL, "model": optional} -> the same JSON as POST /api/inspect."""
        try:
            allowed, wait = limits.allow_prediction()  # the predictions' bucket: a look inside counts as one
            if not allowed:
                return {**limits.too_many(wait), "status": 429}
            if not isinstance(data, dict) or data.get("image") in (None, ""):
                raise ApiError(400, "no image: send {\"image\": \"<data URL or base64>\"}")
            return inspect_answer(decode_base64_image(data["image"]), data.get("model"))
        except ApiError as exc:
            return {**exc.to_dict(), "status": exc.status}
        except Exception:  # never let one bad message break the connection
            current_app.logger.exception("inspect event failed")
            return {"error": "internal error", "status": 500}

    @socketio.on("disconnect")
    def disconnect(*_reason):
        connections.release(request.sid)
