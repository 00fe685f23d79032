"""The class's own datasets: named label lists and the drawings filed under them (no Flask here).

Everything lives in the instance folder:
- `datasets.sqlite3`: the datasets, and each drawing's label, client (an anonymous per-browser id), the model's
  guess, when it was drawn, and the 28x28 input the preprocessing made of it (784 bytes, uint8, ink = 255);
- `datasets/<dataset id>/<drawing id>.png`: the canvas image exactly as the browser sent it (written atomically:
  a temporary file in the same folder, then a rename). Imported drawings have no canvas image.

The built-in `class-digits` (labels "0"-"9") exists from the first open. The rules for labels and the file
layout are webapp/core/labelled_data.py's; this module only stores. Limits (drawings per dataset, per client) are
checked here, in one SQLite write transaction with the write, so two students cannot both take the last place,
even through two web processes sharing the instance folder.
"""
import json
import logging
import re
import shutil
import threading
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from webapp.core import labelled_data
from webapp.core.labelled_data import DIGIT_LABELS, BadLabelledData, check_labels
from webapp.core.modelstore import MODEL_ID, atomic_write_bytes, free_id
from webapp.core.sqlite_files import connect_read_only, connect_shared

log = logging.getLogger(__name__)

BUILTIN_ID = "class-digits"
BUILTIN_NAME = "Class digits"
DATASET_ID = MODEL_ID  # as a job's `data` names it: the shape of a model id
RESERVED_IDS = {"mnist", "sample", "import"}  # job data names, and the import route
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
IMPORTED_CLIENT = "imported"  # the client of a drawing that came from a file
MAX_NAME = 80
INPUT_BYTES = 28 * 28

SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    labels TEXT NOT NULL,          -- JSON list, in the order of a network's outputs
    builtin INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS drawings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so a deleted drawing's file name is never taken again
    dataset TEXT NOT NULL REFERENCES datasets(id),
    label TEXT NOT NULL,
    client TEXT NOT NULL,
    guess TEXT,
    created REAL NOT NULL,
    input BLOB NOT NULL,            -- 784 bytes: the 28x28 input, uint8, ink = 255
    has_image INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS drawings_by_dataset ON drawings (dataset, id);
CREATE INDEX IF NOT EXISTS drawings_by_client ON drawings (dataset, client);
"""


class DatasetError(ValueError):
    """Something a client asked for that cannot be done; `status` is the HTTP status it deserves."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class UnknownDataset(DatasetError):
    def __init__(self, dataset_id):
        super().__init__(404, f"no dataset called {shown(dataset_id)}")


class UnknownDrawing(DatasetError):
    def __init__(self, dataset_id, drawing_id):
        super().__init__(404, f"no drawing {shown(drawing_id)} in dataset {shown(dataset_id)}")


def shown(value, limit=40):
    """A client's value, quoted and cut short, for a message (lone surrogates escaped)."""
    text = str(value)[:limit]
    return repr(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def storable(text):
    """Whether a str can reach SQLite, which binds text as strict UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_name(name):
    """A dataset's name as stored: 1-80 printable characters, surrounding spaces dropped."""
    if not isinstance(name, str) or not name.strip():
        raise DatasetError(400, "name must be a non-empty string, e.g. \"letters\"")
    name = name.strip()
    if len(name) > MAX_NAME or not name.isprintable() or not storable(name):
        raise DatasetError(400, f"name must be at most {MAX_NAME} printable characters on one line")
    return name


def check_client(client):
    if not isinstance(client, str) or not CLIENT_ID.match(client):
        raise DatasetError(400, "client must be the browser's id: 8 to 64 letters, digits, - or _")
    return client


def check_guess(guess):
    """The model's answer at the time: a short string, or None (a number is taken as its text)."""
    if guess is None:
        return None
    if isinstance(guess, int) and not isinstance(guess, bool) and -10**6 < guess < 10**6:
        guess = str(guess)
    if not isinstance(guess, str) or len(guess) > labelled_data.MAX_LABEL_CHARS or not storable(guess) \
            or not guess.isprintable():
        raise DatasetError(400, f"guess must be the model's answer: a label of at most "
                                f"{labelled_data.MAX_LABEL_CHARS} characters, or null")
    return guess


def valid_dataset_id(dataset_id):
    return isinstance(dataset_id, str) and bool(DATASET_ID.match(dataset_id))


def id_from_name(name, taken):
    """letters -> "letters", then "letters-2", ...: lowercase ASCII letters, digits, - and _."""
    return free_id(name, taken, "dataset", reserved=RESERVED_IDS)


def as_input_bytes(image):
    """The 28x28 input (floats 0..1, ink = 1, as preprocessing gives it; or uint8) as 784 uint8 bytes."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.round(np.clip(image.astype(np.float64), 0.0, 1.0) * 255).astype(np.uint8)
    if image.size != INPUT_BYTES:
        raise ValueError(f"the input must be 28x28, not {image.shape}")
    return image.reshape(28, 28).tobytes()


def input_rows(blob):
    """784 uint8 bytes -> 28 rows of 0..1 floats, 3 decimals (as /api/predict's `input`)."""
    image = np.frombuffer(blob, dtype=np.uint8).reshape(28, 28) / 255.0
    return np.round(image, 3).tolist()


def check_npz_sizes(data, max_drawings):
    """Refuse an npz whose members would unpack beyond what `max_drawings` drawings need, from the zip's
    directory alone (before numpy reads a byte of it): a small file must not unpack to gigabytes."""
    slack = 64 * 1024
    allowed = {"x_train.npy": max_drawings * INPUT_BYTES + slack, "y_train.npy": max_drawings * 8 + slack,
               "labels.npy": labelled_data.MAX_LABELS * labelled_data.MAX_LABEL_CHARS * 4 + slack}
    try:
        import io

        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise BadLabelledData("not an npz file in Keras's MNIST layout") from None
    if len(members) > 16:
        raise BadLabelledData("the file holds too many arrays for Keras's MNIST layout")
    for member in members:
        if member.file_size > allowed.get(member.filename, slack):
            raise BadLabelledData(f"{member.filename} is too large: a dataset holds at most "
                                  f"{max_drawings:,} drawings")


class DatasetStore:
    """The datasets and their drawings. One SQLite connection and one lock (a few writes a second at most);
    every write is one `BEGIN IMMEDIATE` transaction, so other processes on the same file wait their turn.

    Limits: `max_drawings` per dataset, `max_per_client` drawings of one client id in one dataset (0: none)."""

    def __init__(self, home, max_drawings=20_000, max_per_client=500, read_only=False):
        """`read_only`: the datasets as they are on a disk that cannot be written (every write then raises
        sqlite3.OperationalError "readonly", which the web answers with a 507)."""
        self.home = Path(home)
        self.path = self.home / "datasets.sqlite3"
        self.images = self.home / "datasets"
        self.max_drawings = int(max_drawings)
        self.max_per_client = int(max_per_client)
        self._lock = threading.RLock()
        if read_only:
            self._db = connect_read_only(self.path)
            self._db.execute("SELECT count(*) FROM datasets JOIN drawings ON 0").fetchone()
            return
        self._db = connect_shared(self.path)
        self._db.executescript(SCHEMA)
        self._ensure_builtin()

    def _ensure_builtin(self):
        with self._lock:  # OR IGNORE: another process may be adding it at the same moment
            self._db.execute("INSERT OR IGNORE INTO datasets (id, name, labels, builtin, created) "
                             "VALUES (?, ?, ?, 1, ?)",
                             (BUILTIN_ID, BUILTIN_NAME, json.dumps(list(DIGIT_LABELS)), time.time()))

    @contextmanager
    def _writing(self):
        """This process's lock and SQLite's write lock, taken before the first read: what a write checks (a
        free id, a free place) is still true when it writes, whichever process writes next. Commits at the end,
        rolls back on an exception."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            yield

    def close(self):
        with self._lock:
            self._db.close()

    # -- datasets -----------------------------------------------------------

    def _row(self, dataset_id):
        if not valid_dataset_id(dataset_id):
            return None
        return self._db.execute("SELECT * FROM datasets WHERE id = ?", (dataset_id,)).fetchone()

    def _get_row(self, dataset_id):
        row = self._row(dataset_id)
        if row is None:
            raise UnknownDataset(dataset_id)
        return row

    def counts(self, dataset_id):
        """{label: drawings} for every label of the dataset (0 for none)."""
        with self._lock:
            row = self._get_row(dataset_id)
            found = dict(self._db.execute("SELECT label, count(*) FROM drawings WHERE dataset = ? GROUP BY label",
                                          (dataset_id,)).fetchall())
        return {label: found.get(label, 0) for label in json.loads(row["labels"])}

    def _public(self, row, by_client=False):
        counts = self.counts(row["id"])
        dataset = {"id": row["id"], "name": row["name"], "labels": json.loads(row["labels"]), "counts": counts,
                   "total": sum(counts.values()), "builtin": bool(row["builtin"]), "created": row["created"]}
        if by_client:
            dataset["by_client"] = dict(self._db.execute(
                "SELECT client, count(*) FROM drawings WHERE dataset = ? GROUP BY client ORDER BY client",
                (row["id"],)).fetchall())
        return dataset

    def list(self):
        with self._lock:
            rows = self._db.execute("SELECT * FROM datasets ORDER BY builtin DESC, created").fetchall()
            return [self._public(row) for row in rows]

    def get(self, dataset_id, by_client=False):
        with self._lock:
            return self._public(self._get_row(dataset_id), by_client=by_client)

    def exists(self, dataset_id):
        with self._lock:
            return self._row(dataset_id) is not None

    def create(self, name, labels):
        """A new dataset; DatasetError 400 (BadLabelledData's words) for a bad name or label list."""
        name = check_name(name)
        try:
            labels = check_labels(labels)
        except BadLabelledData as exc:
            raise DatasetError(400, f"labels: {exc}") from None
        with self._writing():
            taken = {row[0] for row in self._db.execute("SELECT id FROM datasets")}
            dataset_id = id_from_name(name, taken)
            self._db.execute("INSERT INTO datasets (id, name, labels, builtin, created) VALUES (?, ?, ?, 0, ?)",
                             (dataset_id, name, json.dumps(labels), time.time()))
            return self.get(dataset_id)

    def delete(self, dataset_id):
        with self._lock:
            with self._writing():
                row = self._get_row(dataset_id)
                if row["builtin"]:
                    raise DatasetError(400, f"{dataset_id} is built in and cannot be deleted; it can be cleared")
                self._db.execute("DELETE FROM drawings WHERE dataset = ?", (dataset_id,))
                self._db.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))
            self._remove_images(dataset_id)  # once the rows are gone for good

    def clear(self, dataset_id):
        """Delete every drawing of the dataset; the dataset and its labels stay. Its counts after."""
        with self._lock:
            with self._writing():
                self._get_row(dataset_id)
                self._db.execute("DELETE FROM drawings WHERE dataset = ?", (dataset_id,))
            self._remove_images(dataset_id)  # once the rows are gone for good
            return self.counts(dataset_id)

    def _remove_images(self, dataset_id):
        folder = self.images / dataset_id
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            pass
        except OSError as exc:  # the rows are gone; the files are only unreachable leftovers
            log.warning("could not remove the images of dataset %s: %s", dataset_id, exc.strerror)

    # -- drawings -----------------------------------------------------------

    def _drawing(self, row):
        return {"id": row["id"], "dataset": row["dataset"], "label": row["label"], "client": row["client"],
                "guess": row["guess"], "created": row["created"],
                "image": f"/api/datasets/{row['dataset']}/drawings/{row['id']}.png" if row["has_image"] else None,
                "input": input_rows(row["input"])}

    def add(self, dataset_id, label, client, image, png=None, guess=None):
        """File one drawing (its 28x28 input, and the canvas image's bytes as received); (drawing, counts).

        DatasetError: 404 unknown dataset, 400 unknown label, 409 when the dataset or the client is full."""
        client = check_client(client)
        guess = check_guess(guess)
        blob = as_input_bytes(image)
        with self._writing():
            row = self._get_row(dataset_id)
            labels = json.loads(row["labels"])
            if not isinstance(label, str) or label not in labels:
                raise DatasetError(400, f"label must be one of the dataset's labels: {', '.join(labels[:20])}"
                                        f"{'…' if len(labels) > 20 else ''}")
            total = self._db.execute("SELECT count(*) FROM drawings WHERE dataset = ?", (dataset_id,)).fetchone()[0]
            if self.max_drawings and total >= self.max_drawings:
                raise DatasetError(409, f"the dataset is full: it holds at most {self.max_drawings:,} drawings")
            if self.max_per_client:
                mine = self._db.execute("SELECT count(*) FROM drawings WHERE dataset = ? AND client = ?",
                                        (dataset_id, client)).fetchone()[0]
                if mine >= self.max_per_client:
                    raise DatasetError(409, f"you have drawn {mine:,} drawings for this dataset, the most one "
                                            "browser may add: thank you!")
            cursor = self._db.execute(
                "INSERT INTO drawings (dataset, label, client, guess, created, input, has_image) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (dataset_id, label, client, guess, time.time(), blob, int(png is not None)))
            drawing_id = cursor.lastrowid
            if png is not None:  # the row commits only once its image is on disk
                folder = self.images / dataset_id
                folder.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(folder / f"{drawing_id}.png", bytes(png))
            return self.drawing(dataset_id, drawing_id), self.counts(dataset_id)

    def _drawing_row(self, dataset_id, drawing_id):
        self._get_row(dataset_id)
        number = drawing_number(drawing_id)
        row = None if number is None else self._db.execute(
            "SELECT * FROM drawings WHERE dataset = ? AND id = ?", (dataset_id, number)).fetchone()
        if row is None:
            raise UnknownDrawing(dataset_id, drawing_id)
        return row

    def drawing(self, dataset_id, drawing_id):
        with self._lock:
            return self._drawing(self._drawing_row(dataset_id, drawing_id))

    def drawings(self, dataset_id, after=0, label=None, limit=100):
        """The dataset's drawings after drawing id `after`, oldest first; only `label`'s when given."""
        with self._lock:
            self._get_row(dataset_id)
            where, args = ("AND label = ?", (label,)) if label is not None else ("", ())
            rows = self._db.execute(f"SELECT * FROM drawings WHERE dataset = ? AND id > ? {where} "
                                    "ORDER BY id LIMIT ?", (dataset_id, after, *args, limit)).fetchall()
            return [self._drawing(row) for row in rows]

    def image_path(self, dataset_id, drawing_id):
        """The canvas image's file; UnknownDrawing when there is none (an imported drawing has none)."""
        with self._lock:
            row = self._drawing_row(dataset_id, drawing_id)
        path = self.images / dataset_id / f"{row['id']}.png"
        if not row["has_image"] or not path.is_file():
            raise DatasetError(404, f"drawing {row['id']} has no canvas image (it was imported from a file)")
        return path

    def relabel(self, dataset_id, drawing_id, label):
        with self._writing():
            row = self._drawing_row(dataset_id, drawing_id)
            labels = json.loads(self._get_row(dataset_id)["labels"])
            if not isinstance(label, str) or label not in labels:
                raise DatasetError(400, f"label must be one of the dataset's labels: {', '.join(labels[:20])}")
            self._db.execute("UPDATE drawings SET label = ? WHERE id = ?", (label, row["id"]))
            return self.drawing(dataset_id, row["id"]), self.counts(dataset_id)

    def delete_drawing(self, dataset_id, drawing_id):
        """Delete one drawing; (its id, the counts after)."""
        with self._lock:
            with self._writing():
                row = self._drawing_row(dataset_id, drawing_id)
                self._db.execute("DELETE FROM drawings WHERE id = ?", (row["id"],))
            (self.images / dataset_id / f"{row['id']}.png").unlink(missing_ok=True)  # once the row is gone for good
            return row["id"], self.counts(dataset_id)

    # -- as a file ------------------------------------------------------------

    def arrays(self, dataset_id):
        """(images uint8 N x 28 x 28, label indices, labels) of the dataset, in the order drawn."""
        with self._lock:
            row = self._get_row(dataset_id)
            labels = json.loads(row["labels"])
            rows = self._db.execute("SELECT label, input FROM drawings WHERE dataset = ? ORDER BY id",
                                    (dataset_id,)).fetchall()
        index = {label: i for i, label in enumerate(labels)}
        images = np.frombuffer(b"".join(r["input"] for r in rows), dtype=np.uint8).reshape(-1, 28, 28)
        return images, np.array([index[r["label"]] for r in rows], dtype=np.uint8), labels

    def export_bytes(self, dataset_id):
        return labelled_data.npz_bytes(*self.arrays(dataset_id))

    def write_npz(self, dataset_id, path):
        labelled_data.write_npz(path, *self.arrays(dataset_id))

    def import_npz(self, data, name):
        """A new dataset from a labelled_data npz's bytes; DatasetError 400 with the file's problem."""
        name = check_name(name)
        try:
            check_npz_sizes(data, self.max_drawings)
            images, label_indices, labels = labelled_data.read_npz(bytes(data), max_drawings=self.max_drawings)
        except BadLabelledData as exc:
            raise DatasetError(400, f"file: {exc}") from None
        except MemoryError:
            raise DatasetError(400, "file: its arrays claim more memory than a dataset can need") from None
        blobs = [image.tobytes() for image in images]
        now = time.time()
        with self._writing():
            taken = {row[0] for row in self._db.execute("SELECT id FROM datasets")}
            dataset_id = id_from_name(name, taken)
            self._db.execute("INSERT INTO datasets (id, name, labels, builtin, created) VALUES (?, ?, ?, 0, ?)",
                             (dataset_id, name, json.dumps(labels), now))
            self._db.executemany(
                "INSERT INTO drawings (dataset, label, client, guess, created, input, has_image) "
                "VALUES (?, ?, ?, NULL, ?, ?, 0)",
                [(dataset_id, labels[int(i)], IMPORTED_CLIENT, now, blob) for i, blob in zip(label_indices, blobs)])
            return self.get(dataset_id)


def drawing_number(drawing_id):
    """A drawing id as an int (from a URL's text, or JSON), or None."""
    if isinstance(drawing_id, bool):
        return None
    if isinstance(drawing_id, int):
        return drawing_id if 0 < drawing_id < 2**63 else None
    if isinstance(drawing_id, str) and drawing_id.isascii() and drawing_id.isdigit() and len(drawing_id) <= 18:
        return int(drawing_id)
    return None
