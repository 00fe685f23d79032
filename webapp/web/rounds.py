"""Collection rounds: the teacher picks a dataset and every student's Draw page asks for its labels in turn
("Draw a C"), until the teacher ends the round. One round at a time, kept in memory (a restart ends it).

Everyone hears `round` {round: null | {dataset, name, labels, counts, started}} when a round starts or ends,
and after each change to the round's dataset (fresh counts).
"""
import threading
import time

from flask import Blueprint, jsonify, request

from webapp.core.class_data import DatasetError
from webapp.web.auth import teacher_required
from webapp.web.lab import ApiError, current_lab

bp = Blueprint("rounds", __name__, url_prefix="/api")


class Rounds:
    def __init__(self, socketio, datasets):
        self.socketio = socketio
        self.datasets = datasets
        self.current = None  # {"dataset": id, "started": time}
        self._lock = threading.Lock()

    def state(self):
        """The round as the API and the `round` event show it, or None."""
        with self._lock:
            current = self.current
        if current is None or self.datasets is None:
            return None
        try:
            dataset = self.datasets.get(current["dataset"])
        except DatasetError:  # deleted under the round
            return None
        return {"dataset": dataset["id"], "name": dataset["name"], "labels": dataset["labels"],
                "counts": dataset["counts"], "started": current["started"]}

    def start(self, dataset_id):
        with self._lock:
            self.current = {"dataset": dataset_id, "started": time.time()}
        return self.announce()

    def end(self):
        with self._lock:
            self.current = None
        return self.announce()

    def announce(self):
        state = self.state()
        self.socketio.emit("round", {"round": state})
        return state

    def on(self, dataset_id):
        with self._lock:
            return self.current is not None and self.current["dataset"] == dataset_id

    def drawn(self, dataset_id):
        """The round's dataset changed: everyone gets its fresh counts."""
        if self.on(dataset_id):
            self.announce()

    def dataset_gone(self, dataset_id):
        if self.on(dataset_id):
            self.end()

    def next_label(self, dataset_id, counts, drawn):
        """During a round on this dataset, the label to draw next: one of the least drawn, the first of them
        after `drawn` in the dataset's order (so a student cycles through the labels); else None."""
        if not self.on(dataset_id):
            return None
        labels = list(counts)
        fewest = min(counts.values())
        start = labels.index(drawn) + 1 if drawn in labels else 0
        for label in labels[start:] + labels[:start]:
            if counts[label] == fewest:
                return label
        return None


def rounds():
    return current_lab().rounds


@bp.get("/round")
def get_round():
    return jsonify({"round": rounds().state()})


@bp.post("/round")
@teacher_required
def start_round():
    from webapp.web.datasets_api import store

    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("dataset"), str):
        raise ApiError(400, 'send {"dataset": "<dataset id>"}', field="dataset")
    try:
        store().get(body["dataset"])  # unknown -> 404
    except DatasetError as exc:
        raise ApiError(exc.status, str(exc)) from None
    return jsonify({"round": rounds().start(body["dataset"])})


@bp.delete("/round")
@teacher_required
def end_round():
    return jsonify({"round": rounds().end()})


def init_app(app, socketio, lab):
    lab.rounds = Rounds(socketio, lab.datasets)
    app.register_blueprint(bp)
