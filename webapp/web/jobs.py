"""Training jobs over HTTP and Socket.IO: the REST API, and the `subscribe`, `history` and `unsubscribe` events.

The queue and the relay live in webapp.web.job_manager, the history in webapp.web.job_history; this module only
turns requests into calls on the JobManager and its answers into JSON.
"""
from flask import Blueprint, Response, jsonify, request
from flask_socketio import emit, leave_room

from webapp.core.datasets import data_choices
from webapp.core.recipes import OPTIMIZER_NAMES, RECIPES
from webapp.core.job_progress import metrics_csv
from webapp.core.training import LIMITS
from webapp.web.auth import teacher_required
from webapp.core.class_data import storable
from webapp.web.job_manager import MAX_SEQ, JobManager, public_job, room
from webapp.web.lab import ApiError, current_lab

HISTORY_PAGE = 1000  # events in one `history` answer; "more": true asks for the next page


# -- REST ---------------------------------------------------------------------

bp = Blueprint("jobs", __name__, url_prefix="/api")


def manager():
    return current_lab().jobs


@bp.post("/jobs")
@teacher_required
def create_job():
    params = request.get_json(silent=True)
    if not isinstance(params, dict):
        raise ApiError(400, 'the body must be a JSON object like {"net": "cnn", "epochs": 8}', field="body")
    return jsonify(manager().submit(params)), 202


@bp.get("/jobs")
def list_jobs():
    return jsonify({"jobs": [public_job(job) for job in manager().list()],
                    "queued": manager().queued_count(), "max_queued": manager().settings.max_queued_jobs,
                    "notice": manager().notice()})


@bp.get("/jobs/<job_id>")
def get_job(job_id):
    job = manager().get(job_id)
    after = request.args.get("after", "0")
    # isdigit() alone lets "²" through, and int() refuses more than 4,300 digits: check the text first
    if not (after.isascii() and after.isdigit()) or len(after) > len(str(MAX_SEQ)) or int(after) > MAX_SEQ:
        raise ApiError(400, f"after must be a whole number from 0 to {MAX_SEQ} (a seq)", field="after")
    return jsonify({**public_job(job), "events": manager().db.events(job_id, int(after))})


@bp.get("/jobs/<job_id>/metrics.csv")
def job_metrics(job_id):
    """The job's epochs as the file Keras's CSVLogger writes (one row per epoch so far), as an attachment."""
    job = manager().get(job_id)  # unknown -> 404
    body = metrics_csv(manager().db.events(job["id"], type_="epoch"))
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{job["net"]}-job-{job["id"]}-metrics.csv"',
        "Cache-Control": "no-store",  # a running job's file grows every epoch
    })


@bp.delete("/jobs/<job_id>")
@teacher_required
def cancel_job(job_id):
    return jsonify(manager().cancel(job_id)), 202


@bp.get("/networks")
def networks():
    """The tutorial's recipes (the form's defaults), the allowed ranges and the data this server has."""
    return jsonify({
        "data": data_choices(manager().settings.mnist),
        "networks": {name: {"optimizer": r.optimizer, "learning_rate": r.learning_rate, "epochs": r.epochs,
                            "batch_size": r.batch_size, "hidden": r.hidden} for name, r in RECIPES.items()},
        "optimizers": list(OPTIMIZER_NAMES),
        "limits": LIMITS,
    })


# -- Socket.IO ----------------------------------------------------------------

def bad_job_request(data, usage):
    """The error ack for a `subscribe` or `history` payload that is not {"job": id, "after": seq}, or None."""
    if not isinstance(data, dict) or not isinstance(data.get("job"), str):
        return {"error": usage, "status": 400}
    after = data.get("after", 0) or 0
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= MAX_SEQ:
        return {"error": f"after must be a whole number from 0 to {MAX_SEQ} (the last seq you have)", "status": 400}
    return None


def register_events(socketio, jobs):
    @socketio.on("subscribe")
    def subscribe(data=None, *_extra):  # no payload, or several, must get an error ack, not a TypeError
        """{"job": id, "after": seq?} -> the history as `job` events, then live ones.

        Once per connection and job: a repeated subscribe is acknowledged with
        "already_subscribed": true and sends nothing it sent before."""
        problem = bad_job_request(data, 'send {"job": "<id>", "after": <seq, optional>}')
        if problem:
            return problem
        after = data.get("after", 0) or 0
        try:
            job, already = jobs.subscribe(data["job"], after, lambda event: emit("job", event))
        except ApiError as exc:
            return {**exc.to_dict(), "status": exc.status}
        return {"ok": True, "job": public_job(job), **({"already_subscribed": True} if already else {})}

    @socketio.on("history")
    def history(data=None, *_extra):
        """{"job": id, "after": seq} -> {"ok", "events": [the stored events after `after`, in order], "more"}:
        how a client fills a gap it sees in the live events (HISTORY_PAGE at a time). Joins no room."""
        problem = bad_job_request(data, 'send {"job": "<id>", "after": <the last seq you have>}')
        if problem:
            return problem
        after = data.get("after", 0) or 0
        if not storable(data["job"]):
            return {"error": f"no job called {data['job'][:40]!r}", "status": 404}
        try:
            job = jobs.get(data["job"])
        except ApiError as exc:
            return {**exc.to_dict(), "status": exc.status}
        events = jobs.db.events(job["id"], after, limit=HISTORY_PAGE + 1)
        return {"ok": True, "events": events[:HISTORY_PAGE], "more": len(events) > HISTORY_PAGE,
                "job": public_job(job)}

    @socketio.on("unsubscribe")
    def unsubscribe(data=None, *_extra):
        """{"job": id}: no more live events; a later subscribe sends the history after its `after` again."""
        if isinstance(data, dict) and isinstance(data.get("job"), str):
            leave_room(room(data["job"]))
        return {"ok": True}


def init_app(app, socketio, lab):
    lab.jobs = JobManager(lab, socketio)
    app.register_blueprint(bp)
    register_events(socketio, lab.jobs)
