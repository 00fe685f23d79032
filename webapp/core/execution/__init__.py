"""Running a training job, both ways: in a child process on this machine (`local`), or as a Celery task on a
worker anywhere that shares a Redis with the web processes (`celery_app` is the worker's side, `remote` the web's).

Both drive the same runner (webapp.core.training.run_job: a spec in, ordered events out) and offer the web layer
the same small interface: `submit(job_id, spec, start_seq)`, `cancel(job_id)`, `close()`; events come back through
`manager.publish(event)`, and `manager.worker_finished(job_id, reason)` says a job's worker is gone. Nothing here
imports Flask; Celery and redis are imported only in the distributed mode (NEURONLAB_REDIS_URL).
"""
