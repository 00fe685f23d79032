"""Collection rounds: the teacher picks a dataset and every student's Draw page asks for its labels in turn
("Draw a C"), until the teacher ends the round. One round at a time, kept in NEURONLAB_HOME/round.json (written
atomically, read again when it changes), so that every web process of the distributed mode sees the same round;
a round goes on over a restart until the teacher ends it.

Everyone hears `round` {round: null | {dataset, name, labels, counts, started}} when a round starts or ends,
and after each change to the round's dataset (fresh counts).
"""
import json
import logging
import threading
import time

from flask import Blueprint, jsonify, request

from webapp.core.class_data import DatasetError
from webapp.core.modelstore import atomic_write_json
from webapp.web.auth import teacher_required
from webapp.web.lab import ApiError, current_lab, writing

log = logging.getLogger(__name__)
bp = Blueprint("rounds", __name__, url_prefix="/api")
ROUND_FILE = "round.json"


class Rounds:
    def __init__(self, socketio, datasets, path=None):
        """`path`: the file that holds the round for every process (None: this process's memory only)."""
        self.socketio = socketio
        self.datasets = datasets
        self.path = path
        self._current = None  # {"dataset": id, "started": time}
        self._signature = None  # the file's (mtime, size, inode) when last read
        self._lock = threading.Lock()

    @property
    def current(self):
        """The round under way ({"dataset", "started"}) or None, as the file says now."""
        with self._lock:
            if self.path is not None:
                self._read()
            return self._current

    def _read(self):
        try:
            stat = self.path.stat()
            signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except OSError:
            signature = None
        if signature == self._signature:
            return
        self._signature = signature
        current = None
        if signature is not None:
            try:
                current = json.loads(self.path.read_text()).get("round")
            except (OSError, ValueError, AttributeError) as exc:
                log.warning("the round file %s cannot be read (%s): no round", self.path.name, exc)
        valid = isinstance(current, dict) and isinstance(current.get("dataset"), str)
        self._current = current if valid else None

    def _write(self, current):
        with self._lock:
            if self.path is not None:
                with writing("could not store the round"):
                    atomic_write_json(self.path, {"round": current})
                self._signature = None  # read back on the next look
            self._current = current

    def state(self):
        """The round as the API and the `round` event show it, or None."""
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
        self._write({"dataset": dataset_id, "started": time.time()})
        return self.announce()

    def end(self):
        if self.current is not None:  # nothing to write (a read-only folder answers 507 only for a real change)
            self._write(None)
        return self.announce()

    def announce(self):
        state = self.state()
        self.socketio.emit("round", {"round": state})
        return state

    def on(self, dataset_id):
        current = self.current
        return current is not None and current["dataset"] == dataset_id

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
    store = current_lab().dataset_store
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
    lab.rounds = Rounds(socketio, lab.datasets, lab.home / ROUND_FILE)
    app.register_blueprint(bp)
