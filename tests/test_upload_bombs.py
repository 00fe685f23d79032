"""Upload bombs against a real server: each is refused with its 4xx before Keras reads it, leaves
nothing on disk, puts nothing in the system's temporary folder, and grows no server process's
memory by more than 300 MB; real models still upload, and are unpacked only in the instance
folder. Run with -s to see each case's figures.

The bombs are built here, at test time, and never committed."""
import os
import threading
import time
import zipfile
from pathlib import Path

import h5py
import psutil
import pytest
import requests

from conftest import ROOT, TOKEN, ServerProcess
from digit_models import make_model_files

TEACHER = {"Authorization": f"Bearer {TOKEN}"}
MB = 1024 * 1024
RSS_BUDGET = 300 * MB
CHUNK = bytes(16 * MB)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    return make_model_files(tmp_path_factory.mktemp("model-files"))


@pytest.fixture(scope="module")
def system_tmp(tmp_path_factory):
    """The server's system temporary folder (its TMPDIR), which the tests watch."""
    return tmp_path_factory.mktemp("system-tmp")


@pytest.fixture(scope="module")
def server(tmp_path_factory, system_tmp):
    process = ServerProcess(tmp_path_factory.mktemp("bombs"), env={"TMPDIR": str(system_tmp)}).start()
    yield process
    process.stop()


def real_members(model_files):
    with zipfile.ZipFile(model_files["cnn_keras"]) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


@pytest.fixture(scope="module")
def config_bomb(tmp_path_factory, model_files):
    """About 1 MB on disk: a real model whose config.json is padded with spaces to 600 MB."""
    path = tmp_path_factory.mktemp("bomb") / "padded-config.keras"
    members = real_members(model_files)
    config = members.pop("config.json")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", members.pop("metadata.json"))
        with zf.open("config.json", "w", force_zip64=True) as member:
            member.write(config[:-1] + b', "padding": "')
            spaces = b" " * len(CHUNK)
            for _ in range(600 * MB // len(CHUNK)):
                member.write(spaces)
            member.write(b'"}')
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def weights_bomb(tmp_path_factory, model_files):
    """About 2 MB on disk: a real model whose weights member unpacks to 2 GB of zeros, and one asset,
    which on its own sends Keras's own loader to unpack every member into the system's temporary folder."""
    path = tmp_path_factory.mktemp("bomb") / "weights-2gb.keras"
    members = real_members(model_files)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", members["metadata.json"])
        zf.writestr("config.json", members["config.json"])
        with zf.open("model.weights.h5", "w", force_zip64=True) as member:
            for _ in range(2048 * MB // len(CHUNK)):
                member.write(CHUNK)
        zf.writestr("assets/readme.txt", "an asset")
    return path


@pytest.fixture(scope="module")
def h5_bomb(tmp_path_factory, model_files):
    """The tutorial's .h5 with its first kernel replaced by a 1 GB gzip dataset of which one chunk is
    written: tens of KB on disk. Keras's legacy loader reads every weight of a layer before it checks
    their shapes, so unchecked it would allocate the gigabyte."""
    path = tmp_path_factory.mktemp("bomb") / "huge-dataset.h5"
    path.write_bytes(model_files["mlp_h5"].read_bytes())
    with h5py.File(path, "r+") as f:
        kernels = []  # Keras numbers layer names per process (dense, dense_1, ...): find the first kernel
        f["model_weights"].visititems(lambda name, obj: kernels.append(obj.parent.name)
                                      if isinstance(obj, h5py.Dataset) and name.endswith("kernel") else None)
        layer = f[kernels[0]]
        del layer["kernel"]
        kernel = layer.create_dataset("kernel", shape=(1024 * MB // 4,), dtype="float32", chunks=(MB // 4,),
                                      compression="gzip", fillvalue=0)
        kernel[: MB // 4] = 0
    return path


class Watch:
    """While an upload runs: every server process's RSS (sampled, and the kernel's peak since a reset),
    and everything that appears in the server's system temporary folder."""

    def __init__(self, server, system_tmp):
        root = psutil.Process(server.proc.pid)
        self.processes = [root, *root.children(recursive=True)]
        self.system_tmp = Path(system_tmp)
        self.before = {p.pid: p.memory_info().rss for p in self.processes}
        self.peak = dict(self.before)
        self.seen_in_tmp = set()
        self.tmp_before = self.tmp_entries()
        self._done = threading.Event()
        self.peak_reset = all(self.reset_peak(p.pid) for p in self.processes)
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def reset_peak(pid):
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            return True
        except OSError:
            return False

    @staticmethod
    def kernel_peak(pid):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def tmp_entries(self):
        """{"name/": folder, "name": file} under the system temp folder (os.walk: things may vanish meanwhile)."""
        entries = set()
        for folder, folders, files in os.walk(self.system_tmp):
            where = Path(folder).relative_to(self.system_tmp)
            entries |= {f"{where / name}/" for name in folders} | {str(where / name) for name in files}
        return entries

    def _sample(self):
        while not self._done.is_set():
            for p in self.processes:
                try:
                    self.peak[p.pid] = max(self.peak[p.pid], p.memory_info().rss)
                except psutil.Error:
                    pass
            self.seen_in_tmp |= self.tmp_entries() - self.tmp_before
            time.sleep(0.005)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        if self.peak_reset:
            for p in self.processes:
                self.peak[p.pid] = max(self.peak[p.pid], self.kernel_peak(p.pid))
        self.seen_in_tmp |= self.tmp_entries() - self.tmp_before

    @property
    def growth(self):
        """The most any one server process grew, in bytes."""
        return max(self.peak[pid] - self.before[pid] for pid in self.before)

    @property
    def web_growth(self):
        """The most the web process (gunicorn's master or its worker: not an inference worker) grew, in bytes."""
        web = [p.pid for p in self.processes if "multiprocessing" not in " ".join(p.cmdline())]
        return max(self.peak[pid] - self.before[pid] for pid in web)


def all_files(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


def upload_watched(server, system_tmp, path, case):
    with Watch(server, system_tmp) as watch, open(path, "rb") as f:
        response = requests.post(server.url + "/api/models", headers=TEACHER, files={"file": (path.name, f)},
                                 timeout=300)
    print(f"\n{case}: {path.stat().st_size / MB:.2f} MB file -> HTTP {response.status_code}, "
          f"peak RSS growth: web process {watch.web_growth / MB:.1f} MB, any process {watch.growth / MB:.1f} MB "
          f"({'kernel peak + sampling' if watch.peak_reset else 'sampling only'}); "
          f"new in the system temp folder: {sorted(watch.seen_in_tmp) or 'nothing'}")
    return response, watch


@pytest.mark.parametrize("bomb, status, reason", [
    ("config_bomb", 413, "config.json unpacks to 620.8 MB; the limit is 1.0 MB"),
    ("weights_bomb", 422, "'model.weights.h5' unpacks to 2.1 GB from"),
    ("h5_bomb", 422, "/kernel' unpacks to 1.1 GB from"),
])
def test_a_bomb_is_refused_before_loading_and_costs_little(server, system_tmp, request, bomb, status, reason):
    path = request.getfixturevalue(bomb)
    before = all_files(server.home)
    response, watch = upload_watched(server, system_tmp, path, bomb)
    assert response.status_code == status, response.text
    assert reason in response.json()["error"] and "/" + "tmp" not in response.json()["error"]
    assert watch.growth <= RSS_BUDGET
    assert not watch.seen_in_tmp
    assert all_files(server.home) == before


@pytest.fixture(scope="module")
def real_uploads(tmp_path_factory, model_files):
    """Real models: the shipped CNN, a small .keras and .h5, one with an asset, and one near the upload limit."""
    import keras
    from keras import layers

    folder = tmp_path_factory.mktemp("real")
    big = keras.Sequential([keras.Input((784,)), layers.Dense(19_000, activation="relu"),
                            layers.Dense(10, activation="softmax")])  # 15 M parameters: 60 MB
    big.save(folder / "big-mlp.keras")
    with_asset = folder / "big-mlp-with-asset.keras"  # big: Keras's own loader would take a while in /tmp
    with zipfile.ZipFile(folder / "big-mlp.keras") as source, zipfile.ZipFile(with_asset, "w") as zf:
        for info in source.infolist():
            zf.writestr(info, source.read(info))
        zf.writestr("assets/readme.txt", "an asset: with one, Keras's own loader unpacks every member to /tmp")
    return {"shipped_cnn": ROOT / "models" / "cnn.keras", "small_keras": model_files["cnn_keras"],
            "small_h5": model_files["mlp_h5"], "big_keras": folder / "big-mlp.keras", "with_asset": with_asset}


@pytest.mark.parametrize("case", ["shipped_cnn", "small_keras", "small_h5", "big_keras", "with_asset"])
def test_a_real_model_still_uploads_and_unpacks_only_in_the_instance_folder(server, system_tmp, real_uploads,
                                                                            case):
    response, watch = upload_watched(server, system_tmp, real_uploads[case], case)
    assert response.status_code == 201, response.text
    model_id = response.json()["model"]["id"]
    assert (server.home / "models" / f"{model_id}.keras").is_file()
    assert not watch.seen_in_tmp  # Keras's saver makes its scratch folder in the instance folder too
    assert watch.tmp_entries() == watch.tmp_before
    assert not list((server.home / "uploads").iterdir())
    # Keras loads and saves it in an inference worker (which may load TensorFlow for it): the web process stays flat.
    assert watch.web_growth <= RSS_BUDGET


def test_a_large_form_upload_waits_in_the_instance_folder_not_the_system_temporary_one(server, system_tmp):
    """Werkzeug spools form files over 500 KB to a temporary file: it must be in the instance folder's uploads/
    (often /tmp is a tmpfs, in memory). Half the body is sent, the server's open files are looked at, then the
    rest is sent and the upload refused as usual."""
    import socket

    boundary = "neuronlab-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.keras\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    content = bytes(2 * MB)  # not a model: refused once it has arrived
    body = head + content + tail
    request_head = (f"POST /api/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                    f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n"
                    f"Connection: close\r\n\r\n").encode()
    root = psutil.Process(server.proc.pid)

    def open_files():
        found = []
        for process in [root, *root.children(recursive=True)]:
            for fd in Path(f"/proc/{process.pid}/fd").iterdir():
                try:
                    found.append(os.readlink(fd))
                except OSError:
                    pass
        return found

    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(request_head + body[: len(body) // 2])
        deadline = time.monotonic() + 30
        spooled = []
        while not spooled and time.monotonic() < deadline:  # until Werkzeug has rolled past 500 KB
            spooled = [f for f in open_files() if str(server.home / "uploads") in f
                       or str(system_tmp) in f and "wgunicorn-" not in f]  # (gunicorn's heartbeat file)
            time.sleep(0.1)
        sock.sendall(body[len(body) // 2:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert spooled, "no spooled upload seen among the server's open files"
    assert all(str(server.home / "uploads") in f for f in spooled), spooled
    assert answer.startswith(b"HTTP/1.1 4"), answer[:300]
