"""Model files and their metadata, in one or more folders.

A model is `<id>.keras` beside `<id>.json`. Files are written to a temporary
name in the same folder and renamed into place, metadata last, so a model is
either complete and listed or absent: a crash can never leave half a model.

Every listed model has a human `name`: the teacher's (kept in NAMES_FILE in the
writable folder, since shipped folders are read-only), else the one in its
metadata, else one made from the metadata by `model_name`.
"""
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import unicodedata
from contextlib import contextmanager
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK  # mkstemp makes 0600 files; saved files get the usual mode

MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
TMP_PREFIX = ".tmp-"
# Several web processes share an instance folder in the distributed mode: a temporary file younger than this may
# be another process's save in progress, so a starting process leaves it (an upload or a save takes minutes at most).
SHARED_FOLDER_GRACE_S = 900
RECHECK_S = 1.0  # a model saved by another process shows up within this
NAMES_FILE = "_names.json"  # the teacher's names, by id; "_" can start no model id, so it is never a model
MAX_NAME = 80
NETWORK_LABELS = {"mlp": "MLP", "mlp2": "MLP2", "cnn": "CNN", "xor": "XOR"}


class UnknownModel(KeyError):
    pass


def valid_id(model_id):
    return isinstance(model_id, str) and bool(MODEL_ID.match(model_id))


def free_id(text, taken, fallback, reserved=()):
    """An id made from a human's text (a file's or a dataset's name): lowercase ASCII letters, digits, - and _.
    Unicode is folded to ASCII first (so look-alike dots and slashes vanish); an id already `taken`, or
    `reserved`, gets a numbered suffix."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    base = re.sub(r"[^a-z0-9_-]+", "-", folded).strip("-_")[:56] or fallback
    new_id, n = base, 1
    while new_id in taken or new_id in reserved or not valid_id(new_id):
        n += 1
        new_id = f"{base}-{n}"
    return new_id


def atomic_write_bytes(path, data):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def atomic_write_json(path, obj):
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def percent(fraction):
    """0.934 -> "93.4%", 0.9935 -> "99.35%": two decimals at most, no trailing zeros."""
    return f"{fraction * 100:.2f}".rstrip("0").rstrip(".") + "%"


def trained_on_sample(meta):
    """Whether a model learnt from the small bundled sample rather than full MNIST."""
    data = meta.get("data")
    if isinstance(data, dict):
        return bool(data.get("sample"))
    if data is not None:
        return data == "sample"
    recipe = meta.get("recipe")
    return isinstance(recipe, dict) and recipe.get("data") == "sample"


def model_name(meta):
    """A name people can tell apart, made from the metadata, e.g.
    "CNN · 2 epochs · sample · 93.4%", "MLP · shipped · 98.84%", "XOR · 2 hidden · seed 3",
    "CNN · letters · 8 epochs · 96.2%" (trained on a class's dataset)."""
    network = meta.get("network")
    if network not in NETWORK_LABELS:  # an uploaded model: its file is all we know
        return str(meta.get("filename") or meta.get("id") or "model")
    parts = [NETWORK_LABELS[network]]
    if meta.get("source") == "shipped":
        parts.append("shipped")
    if network == "xor":
        if meta.get("hidden") is not None:
            parts.append(f"{meta['hidden']} hidden")
        if meta.get("seed") is not None:
            parts.append(f"seed {meta['seed']}")
        if meta.get("success") is False:
            parts.append("failed")
        return " · ".join(parts)
    if isinstance(meta.get("dataset_name"), str):  # the class's drawings: which ones
        parts.append(meta["dataset_name"])
    epochs = meta.get("epochs")
    if isinstance(epochs, int) and meta.get("source") != "shipped":
        parts.append(f"{epochs} epoch{'' if epochs == 1 else 's'}")
    if trained_on_sample(meta):
        parts.append("sample")
    accuracy = meta.get("test_accuracy")
    if isinstance(accuracy, (int, float)):
        parts.append(percent(accuracy))
    return " · ".join(parts)


def clean_name(name):
    """A teacher's name for a model, stripped; ValueError says what is wrong with it."""
    if not isinstance(name, str):
        raise ValueError("name must be a string")
    name = name.strip()
    if not name:
        raise ValueError("name must not be empty")
    if len(name) > MAX_NAME:
        raise ValueError(f"name must be at most {MAX_NAME} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError("name must be one line of text, without control characters")
    return name


def _age(path):
    """Seconds since `path` was last written (0 when it is gone)."""
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def without_optimizer(model):
    """The model for inference only: the optimizer's state would double or
    triple the file and is never used again."""
    if getattr(model, "optimizer", None) is None:
        return model
    try:
        copy = type(model).from_config(model.get_config())  # clone_model would copy the compile state too
        copy.set_weights(model.get_weights())
        return copy
    except Exception:  # a model Keras cannot clone is saved as it is
        return model


@contextmanager
def temporary_files_in(folder, required=True):
    """Anything Keras, h5py or TensorFlow's converter puts in the temporary folder meanwhile goes in a `.tmp-*`
    folder inside `folder` (the instance folder), removed afterwards: never the system's /tmp, where a killed
    process would leave it. Changing tempfile's process-wide folder for the duration is safe in the processes
    that call this (an inference worker runs one request at a time). When `folder` cannot be written and
    `required` is false, the system's folder serves (yields None)."""
    try:
        scratch = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=folder)
    except OSError:
        if required:
            raise
        yield None
        return
    before = tempfile.tempdir
    tempfile.tempdir = scratch
    try:
        yield scratch
    finally:
        tempfile.tempdir = before
        shutil.rmtree(scratch, ignore_errors=True)


class ModelStore:
    """Models in `folder` (writable) and in `shipped` folders (read-only defaults)."""

    def __init__(self, folder, shipped=(), owner=True, leftover_age=0):
        """`owner`: this process owns the folder and removes half-written files left by a crash, those older
        than `leftover_age` seconds. Other processes that save into it (a training job, an inference worker)
        must not: they could delete a save in progress."""
        self.folder = Path(folder)
        self.shipped = [Path(p) for p in shipped]
        self._lock = threading.Lock()
        self._listing = (None, [])  # (folders' modification times, metadata): re-read only on change
        self._checked = float("-inf")  # when the folders were last looked at
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if owner:
                self.remove_leftovers(leftover_age)
        except OSError:  # a read-only or full instance folder: shipped models still serve; saves fail then
            pass

    def remove_leftovers(self, older_than=0):
        """Temporary files are only ever half-written models, and temporary folders scratch space
        (`temporary_files_in`): drop those older than `older_than` seconds."""
        for leftover in self.folder.glob(TMP_PREFIX + "*"):
            if older_than <= 0 or _age(leftover) > older_than:
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    _unlink(leftover)

    def _folders(self):
        return [self.folder, *self.shipped]

    def path(self, model_id):
        """The model file of `model_id`; raises UnknownModel, never leaves the store."""
        if not valid_id(model_id):
            raise UnknownModel(model_id)
        for folder in self._folders():
            model_file, meta_file = folder / f"{model_id}.keras", folder / f"{model_id}.json"
            if model_file.is_file() and meta_file.is_file():
                return model_file
        raise UnknownModel(model_id)

    def metadata(self, model_id):
        for meta in self.list():
            if meta["id"] == model_id:
                return dict(meta)
        raise UnknownModel(model_id)

    def _signature(self):
        """Every metadata file's name and modification time. (A folder's own
        time is too coarse: two renames in one clock tick would look like one.)"""
        signature = []
        for folder in self._folders():
            try:
                with os.scandir(folder) as entries:
                    signature.append(tuple(sorted(
                        (e.name, e.stat().st_mtime_ns) for e in entries if e.name.endswith(".json")
                    )))
            except OSError:
                signature.append(None)
        return tuple(signature)

    def list(self):
        """Metadata of every complete model, the writable folder's first.

        The folders are looked at again at most every RECHECK_S seconds (a
        prediction asks several times), and at once after a save or delete here."""
        now = time.monotonic()
        if now - self._checked > RECHECK_S:
            signature = self._signature()
            if self._listing[0] != signature:
                self._listing = (signature, self._read_all())
            self._checked = now
        return [dict(meta) for meta in self._listing[1]]

    def refresh(self):
        """Look at the folders again on the next call (another process wrote to them)."""
        self._checked = float("-inf")

    def _names(self):
        """The teacher's names, by id ({} when none were given or the file is unreadable)."""
        try:
            names = json.loads((self.folder / NAMES_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return names if isinstance(names, dict) else {}

    def rename(self, model_id, name):
        """Give a model (shipped ones too) the teacher's name; returns its metadata.

        Raises UnknownModel, or ValueError for a name `clean_name` refuses."""
        self.path(model_id)  # UnknownModel for anything that is not a complete model
        name = clean_name(name)
        with self._lock:
            names = self._names()
            names[model_id] = name
            atomic_write_json(self.folder / NAMES_FILE, names)
            self.refresh()
        return self.metadata(model_id)

    def _read_all(self):
        names = self._names()
        seen, models = set(), []
        for folder in self._folders():
            for meta_file in sorted(folder.glob("*.json")):
                model_id = meta_file.stem
                if model_id in seen or not valid_id(model_id):
                    continue
                if not (folder / f"{model_id}.keras").is_file():
                    continue
                try:
                    meta = json.loads(meta_file.read_text())
                except (OSError, ValueError):
                    continue
                meta["id"] = model_id
                meta.setdefault("source", "shipped" if folder != self.folder else "trained")
                given = names.get(model_id) or meta.get("name")
                meta["name"] = given if isinstance(given, str) and given.strip() else model_name(meta)
                seen.add(model_id)
                models.append(meta)
        return models

    def new_id(self, prefix):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return f"{prefix}-{stamp}-{secrets.token_hex(2)}"

    def save(self, model, meta, model_id=None):
        """Save a Keras model and its metadata atomically; returns the id."""
        model_id = model_id or self.new_id(meta.get("network", "model"))
        if not valid_id(model_id):
            raise ValueError(f"invalid model id {model_id!r}")
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=".keras", dir=self.folder)
        os.fchmod(fd, FILE_MODE)
        os.close(fd)
        try:
            with temporary_files_in(self.folder):  # Keras's saver makes a scratch folder
                without_optimizer(model).save(tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            with self._lock:
                os.replace(tmp, self.folder / f"{model_id}.keras")
                atomic_write_json(self.folder / f"{model_id}.json", {**meta, "id": model_id})
                self.refresh()
        except BaseException:
            _unlink(tmp)
            raise
        return model_id

    def delete(self, model_id):
        """Delete a model from the writable folder (shipped models stay)."""
        if not valid_id(model_id):
            raise UnknownModel(model_id)
        meta_file = self.folder / f"{model_id}.json"
        if not meta_file.is_file():
            raise UnknownModel(model_id)
        with self._lock:
            _unlink(meta_file)  # metadata first: the model stops being listed at once
            _unlink(self.folder / f"{model_id}.keras")
            names = self._names()
            if names.pop(model_id, None) is not None:  # a later model of the same id starts unnamed
                atomic_write_json(self.folder / NAMES_FILE, names)
            self.refresh()
