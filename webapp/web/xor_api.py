"""The XOR lab's JSON API and its Socket.IO study progress.

- GET/POST /api/xor/breakdown: the forward pass of an XOR model, written out.
- GET /api/xor/models: the XOR models there are (shipped and trained).
- POST /api/xor/study (teacher): start the convergence study; progress goes to
  every client as `xor_study` events ({"id", "type": "progress" | "result" | "done", ...}).
- GET /api/xor/study: {"study": the latest study, finished or not, or null before any has run}.
- GET /api/xor/study/<id>: that study, or 404; ?format=csv or ?format=json: its table to take home, one row
  per hidden size (rate, 95% interval, runs, seeds), as an attachment; 409 before it has finished.
- POST /api/xor/keep {"job": id} (teacher): save a finished XOR run that did not learn XOR (such runs are
  not saved by themselves), marked failed: 201 {"model": {...}}.

Training an XOR net goes through the ordinary jobs API (POST /api/jobs with
{"net": "xor"}), so its events are stored and relayed like any other job's.
"""
import csv
import io
import json
import logging
import math
import threading
import time
import uuid

import numpy as np
from flask import Blueprint, Response, jsonify, request

from webapp.core import xor
from webapp.core.models import LoadError
from webapp.core.modelstore import UnknownModel, valid_id
from webapp.web.api import models_changed
from webapp.web.auth import teacher_required
from webapp.web.lab import ApiError, current_lab, writing

log = logging.getLogger(__name__)
bp = Blueprint("xor_api", __name__, url_prefix="/api/xor")
MAX_INPUT = 1e6  # inputs beyond this tell nothing more and make unreadable arithmetic
DEFAULT_INPUT = [0.0, 1.0]  # the tutorial's example
STUDY_LIMITS = {"seeds": (1, 1000), "epochs": (1, 10000), "size": (1, 16), "sizes": 8}
STUDY_FIRST_SEED = 0  # a study's seeds are 0 .. seeds-1, as the CLI's xor-study by default
STUDY_LEARNING_RATE = 0.1  # the tutorial's SGD rate


class XorModels:
    """The XOR models by id. Keras holds them in an inference worker (webapp.core.inference), which
    answers with a model's weights and its own outputs; the web process does no TensorFlow."""

    def __init__(self, store, workers):
        self.store = store
        self.workers = workers

    def default_id(self):
        xor_models = [m for m in self.store.list() if m.get("network") == "xor"]
        if not xor_models:
            raise ApiError(404, "there is no XOR model yet: train one on the XOR page or with "
                           "`python -m webapp train xor`")
        shipped = [m for m in xor_models if m["id"] == "xor"]
        return (shipped or sorted(xor_models, key=lambda m: m.get("date", ""), reverse=True))[0]["id"]

    def open(self, model_id, inputs):
        """(id, weights, Keras's outputs for `inputs`) of an XOR model: None -> the default one."""
        if model_id in (None, ""):
            model_id = self.default_id()
        if not isinstance(model_id, str):
            raise ApiError(400, "model must be a string (a model id)", field="model")
        try:
            path = self.store.path(model_id) if valid_id(model_id) else None
        except UnknownModel:
            path = None
        if path is None:
            raise ApiError(404, f"no model called {model_id[:80]!r}", field="model")
        try:
            weights, outputs = self.workers.xor_net(model_id, inputs)
        except LoadError as exc:
            raise ApiError(400, f"model {model_id!r} cannot be opened up as an XOR net: {exc}", field="model") \
                from None
        return model_id, weights, np.asarray(outputs, np.float64)


def finite_number(value):
    """An int or a finite float. JSON may say NaN, Infinity or 1e400 (infinity), on which int() raises;
    and math.isfinite() raises on an int too large for a float, so ints are not asked."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def parse_input(value, field="input"):
    """[a, b] -> [[a, b]]; "all" -> the four XOR cases; anything else is a 400."""
    if value is None:
        return [DEFAULT_INPUT]
    if value == "all":
        return xor.XOR_INPUTS.astype(float).tolist()
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(finite_number(v) and abs(v) <= MAX_INPUT for v in value)):
        return [[float(v) for v in value]]
    example = "x=0,1" if field == "x" else "[0, 1]"
    raise ApiError(400, f'{field} must be two numbers like {example} (each at most {MAX_INPUT:g} in size), or "all"',
                   field=field)


def parse_query_input(text):
    if text is None or text == "":
        return None
    if text.strip() == "all":
        return "all"
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise ApiError(400, 'x must be two numbers like x=0,1, or x=all', field="x") from None


def breakdown_answer(models, model_name, inputs):
    model_id, weights, keras_output = models.open(model_name, inputs)
    answer = xor.breakdown(weights, inputs)
    meta = models.store.metadata(model_id)
    return {
        "model": model_id,
        "model_info": {k: meta.get(k) for k in ("hidden", "seed", "epochs", "success", "source", "date")},
        **answer,
        "keras_output": keras_output.tolist(),
        "max_difference": float(np.max(np.abs(keras_output - np.asarray(answer["output"])))),
        "predictions": xor.predictions(weights),
    }


# -- the convergence study --------------------------------------------------------

def let_others_run():
    """Asked between epochs: never stop, but yield, so the server's event loop (gevent) serves everyone
    else while a study trains in the web process. With real threads it costs nothing."""
    time.sleep(0)
    return False


class Studies:
    """Runs one study at a time in a thread and keeps the recent ones in memory."""

    def __init__(self, socketio):
        self.socketio = socketio
        self.lock = threading.Lock()
        self.studies = {}  # id -> state
        self.latest = None

    def start(self, sizes, seeds, epochs):
        with self.lock:
            if self.latest and self.studies[self.latest]["state"] == "running":
                raise ApiError(409, "a study is already running: wait for it to finish", study=self.latest)
            study_id = uuid.uuid4().hex[:10]
            state = {"id": study_id, "state": "running", "sizes": sizes, "seeds": seeds, "epochs": epochs,
                     "first_seed": STUDY_FIRST_SEED, "learning_rate": STUDY_LEARNING_RATE,
                     "results": {}, "progress": 0.0, "started": time.time()}
            self.studies = {k: v for k, v in self.studies.items() if k == self.latest}  # keep two at most
            self.studies[study_id] = state
            self.latest = study_id
        threading.Thread(target=self._run, args=(state,), name=f"xor-study-{study_id}", daemon=True).start()
        return state

    def _send(self, study, type_, **fields):
        self.socketio.emit("xor_study", {"id": study["id"], "type": type_, **fields})

    def _run(self, state):
        epochs = state["epochs"]

        def progress(event):
            if "result" in event:
                state["results"][str(event["size"])] = event["result"]
                self._send(state, "result", size=event["size"], result=event["result"], progress=1.0)
            else:  # every size trains at once: how many runs of each have solved XOR so far
                state["progress"] = event["epoch"] / epochs
                self._send(state, "progress", epoch=event["epoch"], epochs=epochs, solved=event["solved"],
                           seeds=state["seeds"], progress=state["progress"])

        try:
            report = xor.study(state["sizes"], state["seeds"], epochs, learning_rate=state["learning_rate"],
                               first_seed=state["first_seed"], progress=progress, should_stop=let_others_run)
            state.update(state="done", seconds=report["seconds"], progress=1.0)
        except Exception as exc:  # a bug: report it, keep the server going
            log.exception("xor study failed")
            state.update(state="failed", error=f"{type(exc).__name__}: {exc}")
        self._send(state, "done", state=state["state"], results=state["results"], seconds=state.get("seconds"),
                   seeds=state["seeds"], epochs=state["epochs"],
                   error=state.get("error"))

    def latest_study(self):
        return self.studies.get(self.latest) if self.latest else None

    def get(self, study_id):
        state = self.studies.get(study_id)
        if state is None:
            raise ApiError(404, f"no study called {str(study_id)[:40]!r}")
        return state


def whole_number(params, name, default, low, high):
    value = params.get(name, default)
    if not finite_number(value) or value != int(value) or not low <= value <= high:
        raise ApiError(400, f"{name} must be a whole number from {low} to {high}", field=name)
    return int(value)


def parse_study(params):
    if not isinstance(params, dict):
        raise ApiError(400, 'the body must be a JSON object like {"sizes": [2, 4, 6], "seeds": 100}', field="body")
    seeds = whole_number(params, "seeds", 100, *STUDY_LIMITS["seeds"])
    epochs = whole_number(params, "epochs", 1000, *STUDY_LIMITS["epochs"])
    sizes = params.get("sizes", [2, 4, 6])
    low, high = STUDY_LIMITS["size"]
    if (not isinstance(sizes, list) or not 1 <= len(sizes) <= STUDY_LIMITS["sizes"]
            or not all(isinstance(s, int) and not isinstance(s, bool) and low <= s <= high for s in sizes)):
        raise ApiError(400, f"sizes must be a list of 1 to {STUDY_LIMITS['sizes']} hidden sizes, "
                       f"each a whole number from {low} to {high}", field="sizes")
    return sorted(set(sizes)), seeds, epochs


# -- views -------------------------------------------------------------------------

@bp.get("/breakdown")
def breakdown_get():
    inputs = parse_input(parse_query_input(request.args.get("x")), field="x")
    return jsonify(breakdown_answer(current_lab().xor_models, request.args.get("model"), inputs))


@bp.post("/breakdown")
def breakdown_post():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, 'the body must be a JSON object like {"input": [0, 1], "model": "xor"}', field="body")
    return jsonify(breakdown_answer(current_lab().xor_models, body.get("model"), parse_input(body.get("input"))))


@bp.get("/models")
def models():
    store = current_lab().xor_models.store
    found = [m for m in store.list() if m.get("network") == "xor"]
    found.sort(key=lambda m: m.get("date", ""), reverse=True)  # newest first...
    found.sort(key=lambda m: m["id"] != "xor")  # ...after the shipped default
    keys = ("id", "name", "hidden", "seed", "epochs", "success", "final_loss", "source", "date", "seconds")
    return jsonify({"models": [{k: m.get(k) for k in keys} for m in found]})


@bp.post("/study")
@teacher_required
def study_start():
    sizes, seeds, epochs = parse_study(request.get_json(silent=True))
    return jsonify(public_study(current_lab().studies.start(sizes, seeds, epochs))), 202


@bp.get("/study")
def study_latest():
    """The latest study, or {"study": null}: a page opening before any study asks nothing that is missing."""
    latest = current_lab().studies.latest_study()
    return jsonify({"study": public_study(latest) if latest else None})


@bp.get("/study/<study_id>")
def study_get(study_id):
    """The study (the page's view); ?format=csv|json: its table as a file to take home."""
    fmt = request.args.get("format")
    if fmt is not None and fmt not in STUDY_FORMATS:
        raise ApiError(400, f"format must be one of {', '.join(STUDY_FORMATS)}", field="format")
    state = current_lab().studies.get(study_id)  # unknown -> 404
    if fmt is None:
        return jsonify(public_study(state))
    if state["state"] != "done":
        raise ApiError(409, f"study {state['id']} is {state['state']}: its table can be downloaded once it is done",
                       state=state["state"])
    rows = study_rows(state)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=STUDY_COLUMNS, extrasaction="ignore")  # CRLF lines, as RFC 4180
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "ci95_low": row["ci95"][0], "ci95_high": row["ci95"][1],
                             "successful_seeds": " ".join(map(str, row["successful_seeds"]))})
        body, mimetype = out.getvalue(), "text/csv"
    else:
        table = {"study": state["id"], "epochs": state["epochs"], "learning_rate": state.get("learning_rate"),
                 "seconds": state.get("seconds"), "rows": rows}
        body, mimetype = json.dumps(table, indent=1) + "\n", "application/json"
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="xor-study-{state["id"]}.{fmt}"'})


STUDY_FORMATS = ("csv", "json")
STUDY_COLUMNS = ("hidden", "runs", "successes", "success_rate", "ci95_low", "ci95_high", "tutorial",
                 "median_final_loss", "epochs", "first_seed", "last_seed", "successful_seeds")


def study_rows(state):
    """One row per hidden size, smallest first: the rate, its 95% interval, the runs and the seeds they used."""
    first = state.get("first_seed", STUDY_FIRST_SEED)
    rows = []
    for result in sorted(state["results"].values(), key=lambda r: r["hidden"]):
        rows.append({
            "hidden": result["hidden"], "runs": result["runs"], "successes": result["successes"],
            "success_rate": result["success_rate"], "ci95": result["ci95"], "tutorial": result.get("tutorial"),
            "median_final_loss": result.get("median_final_loss"), "epochs": state["epochs"],
            "first_seed": first, "last_seed": first + result["runs"] - 1,
            "successful_seeds": result["successful_seeds"],
        })
    return rows


# -- keeping a failed run --------------------------------------------------------------

_keep_lock = threading.Lock()  # two clicks on "Keep this run" save it once


def kept_id(job_id):
    return f"xor-{job_id}-failed"


@bp.post("/keep")
@teacher_required
def keep():
    """Save a finished XOR run that did not learn XOR, from the job's stored result, marked failed.

    201 {"model"}: saved; 200: kept already (the same model); 404: no such job; 409: not a finished
    failed XOR run (still running, cancelled, another network, or it learned XOR and was saved)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("job"), str) or not body["job"]:
        raise ApiError(400, 'the body must be a JSON object like {"job": "<job id>"}', field="job")
    jobs = current_lab().jobs
    job = jobs.get(body["job"])  # 404 for an unknown job
    if job["net"] != "xor":
        raise ApiError(409, f"job {job['id']} trained {job['net']}, not XOR", field="job")
    if job["state"] != "succeeded":
        raise ApiError(409, f"job {job['id']} is {job['state']}: only a finished run can be kept", field="job")
    done = next((e for e in reversed(jobs.db.events(job["id"])) if e["type"] == "done"), None)
    result = (done or {}).get("result") or {}
    if result.get("success"):
        raise ApiError(409, f"job {job['id']} learned XOR and was saved as {result.get('model')}", field="job",
                       model=result.get("model"))
    if not result.get("weights"):
        raise ApiError(409, f"job {job['id']} left no weights to keep", field="job")
    store = current_lab().xor_models.store
    model_id = kept_id(job["id"])
    if not valid_id(model_id):
        raise ApiError(409, f"job {job['id'][:40]!r} cannot name a model", field="job")
    with _keep_lock:
        try:
            return jsonify({"model": store.metadata(model_id)}), 200  # kept already
        except UnknownModel:
            pass
        with writing("could not keep the run"):  # saved by Keras, in an inference worker
            current_lab().xor_models.workers.save_xor_run(job["params"], result, model_id, kept_from_job=job["id"])
        store.refresh()
    models_changed(kept=model_id)
    return jsonify({"model": store.metadata(model_id)}), 201


def public_study(state):
    return {**state, "tutorial": {str(k): v for k, v in xor.TUTORIAL_SUCCESS.items()}}


def init_app(app, socketio, lab):
    lab.xor_models = XorModels(lab.store, lab.predictor)
    lab.studies = Studies(socketio)
    app.register_blueprint(bp)
