"""The history of training jobs: every job and its events in one SQLite file, shared by every web process.

A file that is not a database, or a damaged one, is moved aside and a fresh history starts; a folder that cannot
be written gives a read-only history whose writes answer 507. webapp.web.job_manager keeps the queue and the
relay on top of it.
"""
import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from urllib.parse import quote

from webapp.core.sqlite_files import connect_read_only, connect_shared
from webapp.web.lab import READ_ONLY, ApiError, storage_reason, writing

log = logging.getLogger(__name__)

FINAL_STATES = ("succeeded", "failed", "cancelled", "interrupted")
SQLITE_HEADER = b"SQLite format 3\x00"
HISTORY_LIMIT = 100

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    net TEXT NOT NULL,
    params TEXT NOT NULL,        -- the JobSpec as JSON
    state TEXT NOT NULL,         -- queued, starting, running, or a final state
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    device TEXT,
    data TEXT,
    error TEXT,
    summary TEXT NOT NULL DEFAULT '{}',  -- final figures, for the history table
    last_seq INTEGER NOT NULL DEFAULT 0,
    host TEXT,                   -- the machine that trained it
    dispatched REAL              -- distributed mode: when a web process sent it to Celery (NULL: not yet)
);
CREATE TABLE IF NOT EXISTS events (
    job TEXT NOT NULL REFERENCES jobs(id),
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,          -- the whole event as JSON
    PRIMARY KEY (job, seq)
);
"""
ADDED_COLUMNS = {"host": "TEXT", "dispatched": "REAL"}  # to histories written before they existed


class JobDatabase:
    """Jobs and their events in one SQLite file (WAL). One connection and one lock per process: writes are a few
    a second at most. Several processes may share the file (the distributed mode): an event is stored once,
    whoever inserts its (job, seq) first; `append` says whether this call did.

    A file that is not a database, or a damaged one, is moved aside (its name is
    in `moved_aside`) and a fresh history starts. A folder that cannot be written
    gives a read-only history (`write_problem` says why) whose writes answer 507.
    Events the disk refuses mid-job live in memory (`remember`) until a restart."""

    def __init__(self, path):
        self.path = Path(path)
        self.moved_aside = None  # the name a damaged history was moved to
        self.write_problem = None  # (kind, words) when nothing can be written
        self._memory = {}  # job id -> {"fields": {...}, "events": [...]}: what the disk refused
        self._lock = threading.Lock()
        self._db = self._open()

    def _open(self):
        problem = self._damage()
        if problem is not None and self._move_aside(problem):
            return self._connect()
        if problem is not None:
            return self._connect_read_only()
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            if damaged(exc):
                if self._move_aside(exc):
                    return self._connect()
            else:
                reason = storage_reason(exc)
                if reason is None:
                    raise
                self.write_problem = reason
                log.warning("the job history %s cannot be written (%s): it is read-only until a restart",
                            self.path.name, exc)
        return self._connect_read_only()

    def _damage(self):
        """Why the file is not a whole database, or None; looked at read-only, so that a
        damaged file (and its -wal) is moved aside exactly as it was."""
        try:
            with open(self.path, "rb") as f:
                header = f.read(len(SQLITE_HEADER))
        except FileNotFoundError:
            return None
        except OSError:
            return None  # unreadable: the writable open says why
        if header and header != SQLITE_HEADER:
            return sqlite3.DatabaseError("file is not a database")
        try:
            db = sqlite3.connect(f"file:{quote(str(self.path))}?mode=ro", uri=True)
            try:
                check = db.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            return exc if damaged(exc) else None
        return None if check == "ok" else sqlite3.DatabaseError(f"database disk image is malformed: {check}")

    def _connect(self):
        db = connect_shared(self.path)
        try:
            db.executescript(SCHEMA)
            have = {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}
            for name, kind in ADDED_COLUMNS.items():
                if name not in have:
                    try:
                        db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
                    except sqlite3.OperationalError as exc:  # another process added it just now
                        if "duplicate column" not in str(exc):
                            raise
            check = db.execute("PRAGMA quick_check").fetchone()[0]  # a truncated file opens, then fails later
            if check != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {check}")
        except BaseException:
            db.close()
            raise
        return db

    def _connect_read_only(self):
        """The history as it is, never written ("immutable": no -wal or -shm file is made); else an empty one."""
        if self.write_problem is None:
            self.write_problem = ("read_only", READ_ONLY)
        if self.path.is_file() and not self.moved_aside:
            try:
                db = connect_read_only(self.path)
                db.execute("SELECT count(*) FROM jobs JOIN events ON 0").fetchone()
                return db
            except sqlite3.DatabaseError as exc:
                log.warning("the job history %s cannot be read either (%s): showing an empty one", self.path.name, exc)
        db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.executescript(SCHEMA)
        return db

    def _move_aside(self, exc):
        """Rename the damaged file (and its -wal, -shm) to <name>.corrupt-<time>; False if that failed."""
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        n = 1
        while aside.exists():
            n += 1
            aside = aside.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        try:
            for suffix in ("-wal", "-shm", ""):  # the main file last: never a fresh file beside an old -wal
                part = self.path.with_name(self.path.name + suffix)
                if part.exists():
                    os.replace(part, aside.with_name(aside.name + suffix))
        except OSError as exc2:
            self.write_problem = storage_reason(exc2)
            log.error("the job history %s is damaged (%s) and could not be moved aside (%s): "
                      "an empty history is shown until a restart", self.path.name, exc, exc2.strerror)
            return False
        self.moved_aside = aside.name
        log.error("the job history %s was damaged (%s): moved aside as %s; a fresh history starts",
                  self.path, exc, aside.name)
        return True

    def _refuse_writes(self, doing):
        if self.write_problem:
            kind, words = self.write_problem
            raise ApiError(507, f"{doing}: {words}", reason=kind)

    def create(self, job_id, spec):
        """Store a new job; ApiError 507 when the disk refuses."""
        self._refuse_writes("could not store the job")
        with self._lock, writing("could not store the job"):
            self._db.execute(
                "INSERT INTO jobs (id, net, params, state, created) VALUES (?, ?, ?, 'queued', ?)",
                (job_id, spec.net, json.dumps(spec.to_dict()), time.time()),
            )

    def append(self, event, **job_fields):
        """Store one event and update the job's row, in one transaction. True if this call stored it, False if
        the (job, seq) was stored already (by another process); ApiError 507 when the disk refuses."""
        if event["job"] in self._memory:
            raise ApiError(507, "the job has already ended: its events could not be stored", reason="ended")
        self._refuse_writes("could not store the job's progress")
        sets = ", ".join(f"{name} = ?" for name in job_fields)
        try:
            with self._lock, writing("could not store the job's progress"), self._db:
                self._db.execute("BEGIN IMMEDIATE")  # the write lock first: no stale read to upgrade
                self._db.execute(
                    "INSERT INTO events (job, seq, type, body) VALUES (?, ?, ?, ?)",
                    (event["job"], event["seq"], event["type"], json.dumps(event)),
                )
                self._db.execute(
                    f"UPDATE jobs SET last_seq = max(last_seq, ?){', ' + sets if sets else ''} WHERE id = ?",
                    (event["seq"], *job_fields.values(), event["job"]),
                )
        except sqlite3.IntegrityError:
            return False
        return True

    # -- the distributed mode's dispatch: which process sends a queued job to Celery ------------

    def claim_dispatch(self, job_id):
        """Mark a queued job as being sent; True for the one process that may send it."""
        with self._lock, writing("could not store the job"):
            cursor = self._db.execute("UPDATE jobs SET dispatched = ? WHERE id = ? AND state = 'queued' "
                                      "AND dispatched IS NULL", (time.time(), job_id))
            return cursor.rowcount == 1

    def release_dispatch(self, job_id):
        """Sending failed (Redis away): the job waits for the next try."""
        with self._lock, writing("could not store the job"):
            self._db.execute("UPDATE jobs SET dispatched = NULL WHERE id = ?", (job_id,))

    def release_queued(self):
        """Every queued job is to be sent again (Redis lost Celery's queue); how many."""
        with self._lock, writing("could not store the job"):
            return self._db.execute("UPDATE jobs SET dispatched = NULL WHERE state = 'queued'").rowcount

    def undispatched(self):
        """Queued jobs no process has sent, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs WHERE state = 'queued' AND dispatched IS NULL "
                                    "ORDER BY created").fetchall()
            return [self._with_memory(_job_dict(row)) for row in rows]

    def count_queued(self):
        with self._lock:
            return self._db.execute("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0]

    def remember(self, event, **job_fields):
        """Keep an event the disk refused, and the job's new fields, in memory: the job ends with it."""
        with self._lock:
            memory = self._memory.setdefault(event["job"], {"fields": {}, "events": []})
            memory["events"].append(event)
            memory["fields"].update(job_fields, last_seq=event["seq"])

    def _with_memory(self, job):
        memory = self._memory.get(job["id"])
        if memory:
            job.update(memory["fields"])
        return job

    def job(self, job_id):
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return self._with_memory(_job_dict(row)) if row else None

    def jobs(self, limit=HISTORY_LIMIT):
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,)).fetchall()
            return [self._with_memory(_job_dict(row)) for row in rows]

    def unfinished(self):
        placeholders = ", ".join("?" * len(FINAL_STATES))
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM jobs WHERE state NOT IN ({placeholders}) ORDER BY created", FINAL_STATES
            ).fetchall()
            return [job for job in (self._with_memory(_job_dict(row)) for row in rows)
                    if job["state"] not in FINAL_STATES]

    def events(self, job_id, after=0, type_=None, limit=-1):
        """The job's events after seq `after`, in order; only those of `type_` when given; at most `limit`."""
        where, args = ("AND type = ?", (type_,)) if type_ else ("", ())
        with self._lock:
            rows = self._db.execute(
                f"SELECT body FROM events WHERE job = ? AND seq > ? {where} ORDER BY seq LIMIT ?",
                (job_id, after, *args, limit),
            ).fetchall()
            remembered = self._memory.get(job_id, {}).get("events", [])
        events = [json.loads(row["body"]) for row in rows] + [
            e for e in remembered if e["seq"] > after and (type_ is None or e["type"] == type_)]
        return events if limit < 0 else events[:limit]

    def close(self):
        with self._lock:
            self._db.close()


def damaged(exc):
    """Whether SQLite's error means the file is not a (whole) database, rather than that it cannot be written."""
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc).lower()
    return code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or "malformed" in text or "not a database" in text


def _job_dict(row):
    job = dict(row)
    job["params"] = json.loads(job["params"])
    job.update(json.loads(job.pop("summary") or "{}"))
    return job
