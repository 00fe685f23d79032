"""Socket.IO events for drawing: `predict`, answered through the acknowledgement."""
from flask import current_app

from webapp.web.api import decode_base64_image, predict_answer
from webapp.web.lab import ApiError


def register(socketio, lab):
    @socketio.on("predict")
    def predict(data):
        """{"image": data URL, "model": optional} -> the same JSON as POST /api/predict."""
        try:
            if not isinstance(data, dict) or data.get("image") in (None, ""):
                raise ApiError(400, "no image: send {\"image\": \"<data URL or base64>\"}")
            return predict_answer(decode_base64_image(data["image"]), data.get("model"))
        except ApiError as exc:
            return {**exc.to_dict(), "status": exc.status}
        except Exception:  # never let one bad message break the connection
            current_app.logger.exception("predict event failed")
            return {"error": "internal error", "status": 500}
