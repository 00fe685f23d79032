"""Checks of a model file before Keras reads it, from its metadata only (no Flask).

A .keras file is a zip: its central directory says how big every member unpacks, so a
1 MB file that would unpack to gigabytes is refused without unpacking a byte. An .h5
file (HDF5) says each dataset's shape, type and stored size, so a dataset compressed
from a gigabyte of zeros is refused without reading it. `unpack_keras` then writes a
checked .keras into a folder of our choosing, with the same caps enforced while it
writes, so Keras can load it from there and never unpacks anything itself.

Every limit comes from Settings (webapp/config.py) through `Limits.from_settings`.
"""
import io
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from webapp.core.models import LoadError

CONFIG_NAME = "config.json"
WEIGHTS_NAMES = ("model.weights.h5", "model.weights.npz")
CHUNK = 1024 * 1024  # unpacking copies this much at a time
CENTRAL_ENTRY_BYTES = 1024  # central directory bytes allowed per member (name, extra fields, comment)
EOCD = struct.Struct("<4s4H2LH")  # the zip's end-of-central-directory record
EOCD_SIGNATURE, ZIP64_LOCATOR_SIGNATURE = b"PK\x05\x06", b"PK\x06\x07"
NPY_HEADER_BYTES = 64 * 1024  # an .npy header is a few hundred bytes; numpy refuses ones over 10 KB


class ModelFileRefused(LoadError):
    """A model file refused before loading: `status` is 413 (too big unpacked) or 422 (malformed).
    The text names parts of the file, never a server path."""

    def __init__(self, message, status=422):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    unpacked_bytes: int  # a .keras's members together, or an .h5's datasets together
    config_bytes: int  # config.json in a .keras, the model_config attribute of an .h5
    config_depth: int  # JSON nesting of that config
    members: int  # files in a .keras
    objects: int  # groups and datasets in an .h5
    ratio: float  # unpacked size / stored size, for a member or dataset over ratio_floor_bytes
    ratio_floor_bytes: int

    @classmethod
    def from_settings(cls, settings):
        return cls(
            unpacked_bytes=settings.max_model_unpacked_bytes,
            config_bytes=settings.max_model_config_bytes,
            config_depth=settings.max_model_config_depth,
            members=settings.max_model_members,
            objects=settings.max_model_objects,
            ratio=settings.max_model_ratio,
            ratio_floor_bytes=settings.model_ratio_floor_bytes,
        )


def size_text(n):
    """1536 -> "1.5 KB", 268435456 -> "268.4 MB": sizes as people read them."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,} bytes" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000


def shown(name, width=60):
    """A member or dataset name from the file, quoted and cut short, for a message."""
    name = name if len(name) <= width else name[: width - 1] + "…"
    return repr(name)


def too_big(what, size, limit):
    return ModelFileRefused(f"{what} unpacks to {size_text(size)}; the limit is {size_text(limit)}", 413)


def check_ratio(what, unpacked, stored, limits):
    """Refuse data that unpacks to absurdly more than it takes on disk (a decompression bomb).
    Keras never compresses what it saves, so a real model's ratio is about 1."""
    if unpacked > limits.ratio_floor_bytes and unpacked > limits.ratio * max(stored, 1):
        raise ModelFileRefused(
            f"{what} unpacks to {size_text(unpacked)} from {size_text(stored)} stored "
            f"(over {limits.ratio:g} times): refused as a decompression bomb")


# -- config JSON ------------------------------------------------------------------------------------------------

def json_depth(value):
    """How deeply lists and objects nest in parsed JSON (iterative: no recursion to exhaust)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def check_config_json(data, what, limits):
    """A model's config: at most config_bytes of JSON, an object, nested at most config_depth deep."""
    if len(data) > limits.config_bytes:
        raise too_big(what, len(data), limits.config_bytes)
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        config = json.loads(text)
    except RecursionError:
        raise ModelFileRefused(f"{what} nests deeper than {limits.config_depth} levels") from None
    except ValueError:  # UnicodeDecodeError and JSONDecodeError both are
        raise ModelFileRefused(f"{what} is not valid JSON") from None
    if not isinstance(config, dict):
        raise ModelFileRefused(f"{what} is not a JSON object")
    if json_depth(config) > limits.config_depth:
        raise ModelFileRefused(f"{what} nests deeper than {limits.config_depth} levels")
    return config


# -- zip (.keras, and .npz weights inside one) ---------------------------------------------------------------------

def check_central_directory(path, what, limits):
    """Before zipfile parses it: a central directory that fits `limits.members` members.
    zipfile reads the whole directory into Python objects, a few hundred bytes each, so
    a 64 MB upload of nothing but directory entries would cost gigabytes of memory."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        start = max(0, size - EOCD.size - 0xFFFF)  # the record ends the file, before a comment of up to 64 KiB
        f.seek(start)
        tail = f.read()
    at = tail.rfind(EOCD_SIGNATURE)
    if at < 0 or len(tail) - at < EOCD.size:
        raise ModelFileRefused(f"{what} is not a zip file")
    _, _, _, _, entries, directory_bytes, _, _ = EOCD.unpack_from(tail, at)
    zip64 = entries == 0xFFFF or (at >= 20 and tail[at - 20: at - 16] == ZIP64_LOCATOR_SIGNATURE)
    if zip64 or entries > limits.members:
        count = "over 65,535" if zip64 else f"{entries:,}"
        raise ModelFileRefused(f"{what} has {count} files; a model has at most {limits.members:,}")
    if directory_bytes > limits.members * CENTRAL_ENTRY_BYTES:
        raise ModelFileRefused(f"{what} has a zip directory of {size_text(directory_bytes)}, "
                               f"too big for {limits.members:,} files")


def unsafe_name(name):
    """Why a member name could write outside the folder it is unpacked into, or None."""
    if "\x00" in name or "\\" in name:
        return "has a backslash or NUL in its name"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "has an absolute name"
    if ".." in PurePosixPath(name).parts:
        return "has '..' in its name"
    return None


def check_members(zf, what, limits, config_name=None):
    """The members' names, sizes and ratios from the central directory; returns the infolist.
    `config_name`'s own limit is checked before the ratios: it is the clearer reason."""
    infos = zf.infolist()
    if len(infos) > limits.members:
        raise ModelFileRefused(f"{what} has {len(infos):,} files; a model has at most {limits.members:,}")
    names = set()
    for info in infos:
        reason = unsafe_name(info.filename)
        if reason:
            raise ModelFileRefused(f"{what}: the member {shown(info.filename)} {reason}")
        if info.filename in names:
            raise ModelFileRefused(f"{what} has two members called {shown(info.filename)}")
        names.add(info.filename)
        if info.flag_bits & 0x1:
            raise ModelFileRefused(f"{what}: the member {shown(info.filename)} is encrypted")
        if info.filename == config_name and info.file_size > limits.config_bytes:
            raise too_big(f"its {config_name}", info.file_size, limits.config_bytes)
    for info in infos:
        check_ratio(f"{what}: the member {shown(info.filename)}", info.file_size, info.compress_size, limits)
    total = sum(info.file_size for info in infos)
    if total > limits.unpacked_bytes:
        raise too_big(f"{what}'s contents", total, limits.unpacked_bytes)
    return infos


def open_zip(path, what, limits):
    import zipfile

    check_central_directory(path, what, limits)
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ModelFileRefused(f"{what} is not a readable zip file ({type(exc).__name__})") from None


def read_member(zf, info, limit):
    """A member's bytes, reading at most `limit` + 1 of them whatever its header claims."""
    with zf.open(info) as f:
        return f.read(limit + 1)


def check_keras_file(path, limits):
    """A .keras file (a zip with config.json and weights), from its directory and a bounded read of config.json.
    Returns the checked infolist."""
    what = "the .keras file"
    with open_zip(path, what, limits) as zf:
        infos = check_members(zf, what, limits, config_name=CONFIG_NAME)
        by_name = {info.filename: info for info in infos}
        config = by_name.get(CONFIG_NAME)
        if config is None:
            raise ModelFileRefused(f"{what} has no {CONFIG_NAME}: it is not a Keras model")
        if not any(name in by_name for name in WEIGHTS_NAMES):
            raise ModelFileRefused(f"{what} has no weights ({' or '.join(WEIGHTS_NAMES)})")
        try:
            data = read_member(zf, config, limits.config_bytes)
        except Exception as exc:  # zlib.error, BadZipFile (bad CRC), NotImplementedError (compression method)…
            raise ModelFileRefused(f"its {CONFIG_NAME} cannot be read ({type(exc).__name__})") from None
        check_config_json(data, f"its {CONFIG_NAME}", limits)
        return infos


def unpack_keras(path, folder, limits):
    """Check a .keras file, then unpack it into `folder` (which exists and is empty), never writing
    more than each member declared nor more than the limit in all; then check its weights file.

    Keras loads such a folder in place (keras.models.load_model(folder)), reading weights from
    disk as it needs them: nothing is unpacked in memory or in the system's temporary folder."""
    folder = Path(folder)
    infos = check_keras_file(path, limits)
    what = "the .keras file"
    written = 0
    with open_zip(path, what, limits) as zf:
        for info in infos:
            target = folder.joinpath(*PurePosixPath(info.filename).parts)
            if folder not in target.parents:  # "", "." or "./": nothing to write
                continue
            try:
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as source, open(target, "xb") as sink:
                    member_bytes = 0
                    while chunk := source.read(CHUNK):
                        member_bytes += len(chunk)
                        written += len(chunk)
                        if member_bytes > info.file_size:
                            raise ModelFileRefused(f"{what}: the member {shown(info.filename)} "
                                                   "unpacks to more than its header says")
                        if written > limits.unpacked_bytes:
                            raise too_big(f"{what}'s contents", written, limits.unpacked_bytes)
                        sink.write(chunk)
            except (FileExistsError, NotADirectoryError, IsADirectoryError):
                raise ModelFileRefused(f"{what}: the member {shown(info.filename)} clashes with another") from None
            except ModelFileRefused:
                raise
            except OSError:  # a full or read-only disk: the caller says so
                raise
            except Exception as exc:  # zlib.error, BadZipFile (bad CRC), NotImplementedError (compression method)…
                raise ModelFileRefused(f"{what}: the member {shown(info.filename)} cannot be unpacked "
                                       f"({type(exc).__name__})") from None
    weights_h5, weights_npz = (folder / name for name in WEIGHTS_NAMES)
    if weights_h5.is_file():
        check_h5(weights_h5, limits, what=f"its {WEIGHTS_NAMES[0]}", needs_config=False)
    elif weights_npz.is_file():
        check_npz(weights_npz, limits, what=f"its {WEIGHTS_NAMES[1]}")
    return folder


def check_npz(path, limits, what):
    """NumPy weights: a zip of .npy arrays, each of which numpy allocates whole from its header's shape."""
    import numpy as np

    header_readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    declared = 0
    with open_zip(path, what, limits) as zf:
        for info in check_members(zf, what, limits):
            try:
                with zf.open(info) as f:
                    stream = io.BytesIO(f.read(NPY_HEADER_BYTES))
                read_header = header_readers[np.lib.format.read_magic(stream)]
                shape, _, dtype = read_header(stream)
            except Exception as exc:  # a broken header, or a format version Keras never writes
                raise ModelFileRefused(f"{what}: {shown(info.filename)} is not a NumPy array "
                                       f"({type(exc).__name__})") from None
            if dtype.hasobject:
                raise ModelFileRefused(f"{what}: {shown(info.filename)} holds Python objects")
            declared += int(np.prod(shape, dtype=object)) * dtype.itemsize
            if declared > limits.unpacked_bytes:
                raise too_big(f"{what}'s arrays", declared, limits.unpacked_bytes)


# -- HDF5 (.h5, and the weights inside a .keras) -------------------------------------------------------------------

def dataset_problem(dset, what, limits):
    """(logical bytes, None) for a dataset Keras may read, or (0, a ModelFileRefused)."""
    import numpy as np

    name = f"{what}: the dataset {shown(dset.name)}"
    if dset.is_virtual:
        return 0, ModelFileRefused(f"{name} maps data from other files")
    if dset.id.get_create_plist().get_external_count() > 0:
        return 0, ModelFileRefused(f"{name} keeps its data in other files")
    logical = int(np.prod(dset.shape, dtype=object)) * dset.dtype.itemsize if dset.shape else dset.dtype.itemsize
    stored = dset.id.get_storage_size()
    try:
        check_ratio(name, logical, stored, limits)
    except ModelFileRefused as exc:
        return 0, exc
    return logical, None


def check_h5(path, limits, what="the .h5 file", needs_config=True):
    """An HDF5 model or weights file, from its metadata: how many objects, how big its datasets
    unpack in all, how each is compressed, no links to other files, and its model_config.
    No dataset is read: h5py only opens them to ask their shape, type and stored size."""
    import h5py

    try:
        h5 = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise ModelFileRefused(f"{what} is not a readable HDF5 file ({type(exc).__name__})") from None
    with h5:
        try:
            walk_h5(h5, what, limits)
            if needs_config:
                check_h5_config(h5, what, limits)
        except ModelFileRefused:
            raise
        except Exception as exc:  # a corrupt object header, a link to nowhere…
            raise ModelFileRefused(f"{what} cannot be read as HDF5 ({type(exc).__name__})") from None


def walk_h5(h5, what, limits):
    import h5py

    objects = total = 0
    seen, groups = {h5.id}, [h5]
    while groups:
        group = groups.pop()
        for name in group:
            objects += 1
            if objects > limits.objects:
                raise ModelFileRefused(f"{what} has over {limits.objects:,} groups and datasets; "
                                       "a model has far fewer")
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise ModelFileRefused(f"{what} links to another file ({shown(name)})")
            if isinstance(link, h5py.SoftLink):
                continue  # a second name for an object reached by its hard link
            item = group.get(name)
            if item is None or item.id in seen:  # a hard link back up the tree: visit once
                continue
            seen.add(item.id)
            if isinstance(item, h5py.Group):
                groups.append(item)
            elif isinstance(item, h5py.Dataset):
                logical, problem = dataset_problem(item, what, limits)
                if problem:
                    raise problem
                total += logical
                if total > limits.unpacked_bytes:
                    raise too_big(f"{what}'s datasets", total, limits.unpacked_bytes)


def check_h5_config(h5, what, limits):
    """The legacy format keeps the model's config as a string attribute. Attributes are never
    compressed in HDF5, so reading one costs at most the file's size; a fixed-length one's size
    is checked before it is read."""
    import h5py

    if "model_config" not in h5.attrs:
        return  # Keras says "no model found in config" itself
    attribute = h5py.h5a.open(h5.id, b"model_config")
    string = h5py.check_string_dtype(attribute.dtype)
    if string is None or string.length is not None:  # fixed size: known before reading
        if attribute.get_storage_size() > limits.config_bytes:
            raise too_big("its model_config", attribute.get_storage_size(), limits.config_bytes)
    config = h5.attrs["model_config"]
    if hasattr(config, "tobytes") and not isinstance(config, bytes):
        config = config.tobytes()
    if not isinstance(config, (bytes, str)):
        raise ModelFileRefused(f"{what}: its model_config is not text")
    data = config.encode("utf-8", "surrogateescape") if isinstance(config, str) else config
    check_config_json(data, "its model_config", limits)


def load_upload(path, limits):
    """Check an uploaded file from its metadata, then load it with Keras. A .keras is unpacked (capped)
    into a `.tmp-` folder beside the upload and loaded from there, so Keras unpacks nothing itself, into
    memory or the system's temporary folder; the folder goes when loading ends (or at the next start).
    Raises ModelFileRefused, LoadError, or OSError (the disk refused the unpacking)."""
    import shutil
    import tempfile

    from webapp.core.models import load_file
    from webapp.core.modelstore import TMP_PREFIX

    path = str(path)
    if path.endswith(".h5"):
        check_h5(path, limits)
        return load_file(path)
    folder = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=os.path.dirname(path))
    try:
        unpack_keras(path, folder, limits)
        return load_file(folder)
    except ModelFileRefused:
        raise
    except LoadError as exc:  # Keras names the folder: name the upload, which the caller renames
        raise LoadError(str(exc).replace(folder, path).replace(os.path.basename(folder),
                                                               os.path.basename(path))) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
