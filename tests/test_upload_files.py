"""Unit tests of webapp/core/model_files.py: real model files pass, and every kind of bomb or trick,
built here in small form with small limits, is refused from its metadata with its reason."""
import json
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import ROOT
from digit_models import make_model_files
from webapp.config import Settings
from webapp.core.model_files import Limits, ModelFileRefused, check_h5, check_keras_file, unpack_keras

DEFAULTS = Limits.from_settings(Settings())
SMALL = replace(DEFAULTS, unpacked_bytes=4_000_000, config_bytes=20_000, members=8, objects=50,
                ratio_floor_bytes=100_000)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    return make_model_files(tmp_path_factory.mktemp("model-files"))


def refused(check, *args, status=422):
    with pytest.raises(ModelFileRefused) as caught:
        check(*args)
    assert caught.value.status == status, str(caught.value)
    return str(caught.value)


def keras_members(source):
    """A real .keras's members, by name."""
    with zipfile.ZipFile(source) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


# -- real models pass, and the unpacked folder loads as the zip does ---------------------------------------------

@pytest.mark.parametrize("name", ["cnn", "mlp", "mlp2", "xor"])
def test_the_shipped_models_pass_with_the_default_limits(name, tmp_path):
    unpack_keras(ROOT / "models" / f"{name}.keras", tmp_path, DEFAULTS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "metadata.json", "model.weights.h5"]


def test_an_unpacked_keras_file_loads_from_its_folder_with_the_same_weights(model_files, tmp_path):
    import keras

    unpack_keras(model_files["cnn_keras"], tmp_path, DEFAULTS)
    from_folder = keras.models.load_model(str(tmp_path), compile=False, safe_mode=True)
    from_zip = keras.models.load_model(str(model_files["cnn_keras"]), compile=False, safe_mode=True)
    for a, b in zip(from_folder.get_weights(), from_zip.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_tutorials_h5_passes(model_files):
    check_h5(model_files["mlp_h5"], DEFAULTS)


# -- .keras: names, counts, sizes, ratios, config ----------------------------------------------------------------

@pytest.mark.parametrize("bad_name, reason", [
    ("../escape.txt", "'..'"), ("assets/../../escape.txt", "'..'"), ("/etc/escape.txt", "absolute"),
    ("C:/escape.txt", "absolute"), ("assets\\..\\escape.txt", "backslash"),
])
def test_member_names_that_leave_the_folder_are_refused(model_files, tmp_path, bad_name, reason):
    members = {**keras_members(model_files["cnn_keras"]), bad_name: b"x"}
    path = write_zip(tmp_path / "bad.keras", members)
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    assert reason in refused(unpack_keras, path, unpacked, SMALL)
    assert not any(unpacked.iterdir()) and not (tmp_path.parent / "escape.txt").exists()


def test_more_members_than_a_model_has_is_refused_before_zipfile_reads_the_directory(model_files, tmp_path,
                                                                                     monkeypatch):
    members = {**keras_members(model_files["cnn_keras"]), **{f"assets/{n}": b"" for n in range(SMALL.members)}}
    path = write_zip(tmp_path / "many.keras", members)
    monkeypatch.setattr(zipfile, "ZipFile", None)  # the end record alone must decide
    assert "at most 8" in refused(check_keras_file, path, SMALL)


def test_a_zip_directory_too_big_for_its_members_is_refused_before_zipfile_reads_it(model_files, tmp_path,
                                                                                    monkeypatch):
    members = {**keras_members(model_files["cnn_keras"]), "assets/" + "x" * 10_000: b""}  # a 10 KB name
    path = write_zip(tmp_path / "long-names.keras", members)
    monkeypatch.setattr(zipfile, "ZipFile", None)
    assert "zip directory" in refused(check_keras_file, path, SMALL)


def test_a_big_config_json_is_413_from_the_directory(model_files, tmp_path):
    members = keras_members(model_files["cnn_keras"])
    config = json.loads(members["config.json"])
    config["padding"] = " " * (SMALL.config_bytes + 1)
    members["config.json"] = json.dumps(config)
    path = write_zip(tmp_path / "padded.keras", members)
    assert "config.json unpacks to" in refused(check_keras_file, path, SMALL, status=413)


def test_members_that_unpack_beyond_the_limit_are_413(model_files, tmp_path):
    members = {**keras_members(model_files["cnn_keras"]), "assets/noise.bin": np.random.bytes(SMALL.unpacked_bytes)}
    path = write_zip(tmp_path / "big.keras", members)
    assert "contents unpacks to" in refused(check_keras_file, path, SMALL, status=413)


def test_a_member_compressed_absurdly_is_refused(model_files, tmp_path):
    members = {**keras_members(model_files["cnn_keras"]), "model.weights.h5": bytes(SMALL.unpacked_bytes // 2)}
    path = write_zip(tmp_path / "zeros.keras", members, zipfile.ZIP_DEFLATED)
    assert "decompression bomb" in refused(check_keras_file, path, SMALL)


def test_a_small_member_may_compress_well(model_files, tmp_path):
    members = {**keras_members(model_files["cnn_keras"]), "assets/zeros.bin": bytes(SMALL.ratio_floor_bytes)}
    check_keras_file(write_zip(tmp_path / "ok.keras", members, zipfile.ZIP_DEFLATED), SMALL)


@pytest.mark.parametrize("config, reason", [
    (b"{not json", "not valid JSON"), (b"\xff\xfe{}", "not valid JSON"), (b"[1, 2]", "not a JSON object"),
    (b'{"a": ' + b"[" * 70 + b"]" * 70 + b"}", "nests deeper than 64"),
    (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nests deeper than 64"),
])
def test_a_config_that_is_not_sane_json_is_refused(model_files, tmp_path, config, reason):
    members = {**keras_members(model_files["cnn_keras"]), "config.json": config}
    limits = replace(SMALL, config_bytes=DEFAULTS.config_bytes)
    assert reason in refused(check_keras_file, write_zip(tmp_path / "c.keras", members), limits)


def test_a_zip_without_config_or_weights_is_refused(model_files, tmp_path):
    members = keras_members(model_files["cnn_keras"])
    no_config = write_zip(tmp_path / "a.keras", {k: v for k, v in members.items() if k != "config.json"})
    assert "no config.json" in refused(check_keras_file, no_config, SMALL)
    no_weights = write_zip(tmp_path / "b.keras", {k: v for k, v in members.items() if k != "model.weights.h5"})
    assert "no weights" in refused(check_keras_file, no_weights, SMALL)
    not_zip = tmp_path / "c.keras"
    not_zip.write_bytes(b"PK\x03\x04" + b"x" * 100)
    assert "not a zip" in refused(check_keras_file, not_zip, SMALL)


def test_a_member_larger_than_its_header_says_is_not_unpacked_beyond_it(model_files, tmp_path):
    members = {**keras_members(model_files["cnn_keras"]), "assets/liar.bin": b"y" * 5000}
    path = write_zip(tmp_path / "liar.keras", members)
    data = bytearray(path.read_bytes())
    entry = data.rindex(b"PK\x01\x02")  # the last member's central directory entry
    data[entry + 24: entry + 28] = (10).to_bytes(4, "little")  # its uncompressed size: 10 bytes
    path.write_bytes(bytes(data))
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    assert "liar.bin" in refused(unpack_keras, path, unpacked, SMALL)
    liar = unpacked / "assets" / "liar.bin"
    assert not liar.exists() or liar.stat().st_size <= 10


def test_weights_inside_a_keras_file_are_checked_as_hdf5(model_files, tmp_path):
    h5_bomb = hdf5_bomb(tmp_path / "weights.h5", SMALL)
    members = {**keras_members(model_files["cnn_keras"]), "model.weights.h5": h5_bomb.read_bytes()}
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    message = refused(unpack_keras, write_zip(tmp_path / "inner.keras", members), unpacked, SMALL)
    assert "model.weights.h5" in message and "decompression bomb" in message


def test_npz_weights_are_checked_by_their_array_headers(model_files, tmp_path):
    import io

    npy = io.BytesIO()  # an .npy header that claims a billion numbers, and 40 bytes of them
    np.lib.format.write_array_header_1_0(npy, {"descr": "<f4", "fortran_order": False, "shape": (10**9,)})
    npz = write_zip(tmp_path / "weights.npz", {"big.npy": npy.getvalue() + bytes(40)})
    members = {**keras_members(model_files["cnn_keras"]), "model.weights.npz": npz.read_bytes()}
    del members["model.weights.h5"]
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    message = refused(unpack_keras, write_zip(tmp_path / "npz.keras", members), unpacked, SMALL, status=413)
    assert "arrays unpacks to 4.0 GB" in message


# -- .h5 ---------------------------------------------------------------------------------------------------------

def hdf5_bomb(path, limits, declared=None):
    """An HDF5 file with one gzip dataset declared far bigger than it is stored: one chunk of zeros written."""
    declared = declared or limits.unpacked_bytes // 8  # under the total limit: only the ratio refuses it
    with h5py.File(path, "w") as f:
        dset = f.create_dataset("vars/0", shape=(declared // 4,), dtype="float32", chunks=(16_384,),
                                compression="gzip", fillvalue=0)
        dset[:16_384] = 0
    return path


def copy_h5(model_files, tmp_path):
    return Path(shutil.copy(model_files["mlp_h5"], tmp_path / "model.h5"))


def test_an_h5_dataset_compressed_absurdly_is_refused(tmp_path):
    assert "decompression bomb" in refused(check_h5, hdf5_bomb(tmp_path / "bomb.h5", SMALL), SMALL)


def test_h5_datasets_beyond_the_limit_are_413(model_files, tmp_path):
    path = copy_h5(model_files, tmp_path)
    with h5py.File(path, "r+") as f:
        f.create_dataset("model_weights/extra", data=np.random.random(SMALL.unpacked_bytes // 8))
    assert "datasets unpacks to" in refused(check_h5, path, SMALL, status=413)


def test_absurdly_many_h5_objects_are_refused(model_files, tmp_path):
    path = copy_h5(model_files, tmp_path)
    with h5py.File(path, "r+") as f:
        for n in range(SMALL.objects):
            f.create_group(f"junk/{n}")
    assert "groups and datasets" in refused(check_h5, path, SMALL)


def test_h5_links_to_other_files_are_refused(model_files, tmp_path):
    path = copy_h5(model_files, tmp_path)
    with h5py.File(path, "r+") as f:
        f["model_weights/elsewhere"] = h5py.ExternalLink("/srv/other.h5", "/secrets")
    assert "links to another file" in refused(check_h5, path, SMALL)

    (tmp_path / "second").mkdir()
    external = copy_h5(model_files, tmp_path / "second")
    with h5py.File(external, "r+") as f:
        f.create_dataset("model_weights/outside", shape=(10,), dtype="f4", external=[("/srv/raw.bin", 0, 40)])
    assert "keeps its data in other files" in refused(check_h5, external, SMALL)

    (tmp_path / "third").mkdir()
    virtual = copy_h5(model_files, tmp_path / "third")
    layout = h5py.VirtualLayout(shape=(10,), dtype="f4")
    layout[:] = h5py.VirtualSource("/srv/other.h5", "data", shape=(10,))
    with h5py.File(virtual, "r+") as f:
        f.create_virtual_dataset("model_weights/mapped", layout, fillvalue=0)
    assert "maps data from other files" in refused(check_h5, virtual, SMALL)


def test_a_huge_h5_model_config_is_413(model_files, tmp_path):
    for stored_as in (str, np.bytes_):  # variable-length (what Keras writes) and fixed-length strings
        path = copy_h5(model_files, tmp_path)
        with h5py.File(path, "r+") as f:
            config = json.loads(f.attrs["model_config"])
            config["padding"] = " " * SMALL.config_bytes
            f.attrs["model_config"] = stored_as(json.dumps(config))
        assert "model_config unpacks to" in refused(check_h5, path, SMALL, status=413)


def test_an_h5_model_config_that_is_not_json_is_refused(model_files, tmp_path):
    path = copy_h5(model_files, tmp_path)
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = "{" * 100
    assert "model_config" in refused(check_h5, path, SMALL)


def test_a_file_that_is_not_hdf5_is_refused(tmp_path):
    path = tmp_path / "x.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    assert "not a readable HDF5 file" in refused(check_h5, path, SMALL)
