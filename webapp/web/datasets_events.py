"""The datasets over Socket.IO: `add_drawing` (the twin of POST /api/datasets/<id>/drawings), and
`watch_dataset` / `unwatch_dataset`, which join and leave the room `dataset:<id>` where drawing_added,
drawing_changed, drawing_deleted and dataset_cleared are sent (webapp/web/datasets_api.py sends them)."""
from flask import current_app
from flask_socketio import join_room, leave_room

from webapp.core.class_data import DatasetError
from webapp.web import datasets_api
from webapp.web.lab import ApiError


def acknowledged(event, answer):
    """Run `answer()`: its value, or {"error", "status"}; an error never breaks the connection."""
    try:
        return answer()
    except ApiError as exc:
        return {**exc.to_dict(), "status": exc.status}
    except DatasetError as exc:
        return {"error": str(exc), "status": exc.status}
    except Exception:
        current_app.logger.exception("%s event failed", event)
        return {"error": "internal error", "status": 500}


def dataset_of(data):
    if not isinstance(data, dict) or not isinstance(data.get("dataset"), str):
        raise ApiError(400, 'send {"dataset": "<dataset id>", ...}', field="dataset")
    return data["dataset"]


def register(socketio, lab):
    @socketio.on("add_drawing")
    def add_drawing(data=None, *_extra):
        """{dataset, image, label, client, guess?} -> the same JSON as the POST."""
        return acknowledged("add_drawing", lambda: datasets_api.add_drawing(dataset_of(data), data))

    @socketio.on("watch_dataset")
    def watch_dataset(data=None, *_extra):
        """{dataset} -> {"dataset": DATASET}; then this connection hears the dataset's changes."""
        def watch():
            dataset_id = dataset_of(data)
            dataset = datasets_api.store().get(dataset_id, by_client=True)  # unknown -> 404, joins nothing
            join_room(datasets_api.room(dataset_id))
            return {"dataset": dataset}

        return acknowledged("watch_dataset", watch)

    @socketio.on("unwatch_dataset")
    def unwatch_dataset(data=None, *_extra):
        def unwatch():
            leave_room(datasets_api.room(dataset_of(data)))
            return {"ok": True}

        return acknowledged("unwatch_dataset", unwatch)
