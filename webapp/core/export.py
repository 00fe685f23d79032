"""A stored model saved in another file format, for download (runs in an inference worker: it loads Keras).

The store keeps every model as `.keras`, which is served as it is. The legacy HDF5 format (`.h5`, what the
tutorial saves and loads) is made on demand and cached in `folder`, named by the model's id and its file's
modification time: a model saved again is exported again, and its older exports are removed.
"""
import os
import shutil
import tempfile
import time
from pathlib import Path

from webapp.core.modelstore import FILE_MODE, TMP_PREFIX, temporary_files_in

FORMATS = ("keras", "h5")  # what GET /api/models/<id>/download?format= accepts
EXPORTED = ("h5",)  # made here; a .keras is the store's own file
LEFTOVER_AGE_S = 3600  # a temporary file this old belongs to no export still running: a crash left it


def export_name(model_id, stamp, fmt):
    """`cnn.1732840950123456789.h5`: a model id never holds a dot, so `<id>.*` matches this model's only."""
    return f"{model_id}.{stamp}.{fmt}"


def export_model(store, model_id, fmt, folder):
    """The path of `model_id` saved as `fmt` in `folder`, made now unless the same file was already made.

    Raises UnknownModel for a model the store does not have, ValueError for a format this module does not make,
    OSError when `folder` cannot be written."""
    if fmt not in EXPORTED:
        raise ValueError(f"cannot export to {fmt!r}: the formats are {', '.join(EXPORTED)}")
    store.refresh()  # a model saved a moment ago by a job or another worker
    source = store.path(model_id)  # UnknownModel
    stamp = source.stat().st_mtime_ns
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / export_name(model_id, stamp, fmt)
    if not target.is_file():
        from webapp.core.models import load_file

        model = load_file(source)  # safe_mode, compile=False: the file holds no optimizer state anyway
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=f".{fmt}", dir=folder)
        os.close(fd)
        try:
            os.chmod(tmp, FILE_MODE)
            with temporary_files_in(folder):
                model.save(tmp)  # an .h5 suffix: Keras writes the legacy HDF5 format
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            _remove(Path(tmp))
            raise
    remove_stale(folder, model_id, keep=target)
    return str(target)


def remove_stale(folder, model_id, keep):
    """Older exports of `model_id` (its file changed since), and temporary files a crash left long ago."""
    for old in folder.glob(f"{model_id}.*"):
        if old != keep:
            _remove(old)
    cutoff = time.time() - LEFTOVER_AGE_S
    for leftover in folder.glob(TMP_PREFIX + "*"):
        try:
            if leftover.lstat().st_mtime < cutoff:
                _remove(leftover)
        except OSError:
            pass


def _remove(path):
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass

