"""How the app opens its SQLite files (the class's datasets, the job history), which several web processes may
share in the distributed mode.

A shared file is in WAL mode, so readers never wait for a writer, and a write waits up to BUSY_TIMEOUT_S for
another process's. A file the disk will not let us write is opened read-only and "immutable": SQLite then makes
no -wal or -shm file beside it.
"""
import sqlite3
import time
from urllib.parse import quote

BUSY_TIMEOUT_S = 10  # how long a write waits for another process's before it fails
WAL_RETRY_S = 0.01


def connect_shared(path):
    """A connection to `path` for reading and writing: rows by name, autocommit (a transaction is an explicit
    BEGIN), WAL, durable at each checkpoint."""
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S)
    try:
        db.row_factory = sqlite3.Row
        use_wal(db)
        db.execute("PRAGMA synchronous=NORMAL")  # a few writes a second; fsync per checkpoint, not per write
    except BaseException:
        db.close()
        raise
    return db


def use_wal(db):
    """Switch the file to WAL. Two processes creating the file at the same moment (two web processes starting)
    get "database is locked" at once here: SQLite does not wait on the busy timeout for this pragma. So retry."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(WAL_RETRY_S)


def connect_read_only(path):
    """A connection to `path` as it is on a disk that cannot be written; every write raises
    sqlite3.OperationalError ("readonly")."""
    db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro&immutable=1", uri=True, check_same_thread=False,
                         isolation_level=None)
    db.row_factory = sqlite3.Row
    return db
