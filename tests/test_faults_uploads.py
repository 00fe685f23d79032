"""Kill -9 during an upload, against a real server: the next start leaves no temporary file behind."""
import threading
import time

import requests

from conftest import ROOT, TOKEN

TEACHER = {"Authorization": f"Bearer {TOKEN}"}
BIG_MODEL = ROOT / "models" / "mlp2.keras"  # 7 MB: saving and loading it takes a while


def upload_leftovers(home):
    uploads = home / "uploads"
    return sorted(p.name for p in uploads.iterdir() if p.name.startswith(".tmp-")) if uploads.is_dir() else []


def test_leftovers_of_an_interrupted_upload_are_removed_at_start(start_server, tmp_path):
    home = tmp_path / "home"
    uploads = home / "uploads"
    (uploads / ".tmp-extract-k2j3" / "assets").mkdir(parents=True)  # an extraction folder, cleaned as a whole
    (uploads / ".tmp-extract-k2j3" / "assets" / "model.weights.h5").write_bytes(b"\0" * 1000)
    (uploads / ".tmp-a1b2c3.keras").write_bytes(b"PK\x03\x04half a model")
    (uploads / ".tmp-d4e5f6").write_bytes(b"")
    (uploads / "notes.txt").write_text("not ours to remove\n")
    scratch = home / "models" / ".tmp-scratch1"  # a worker's or a save's scratch folder (temporary_files_in)
    scratch.mkdir(parents=True)
    (scratch / "__autograph_generated_file1.py").write_text("# TensorFlow's converter\n")

    server = start_server(home=home)
    assert upload_leftovers(home) == []
    assert not scratch.exists()
    assert (uploads / "notes.txt").is_file()
    assert ".tmp-a1b2c3.keras" in server.log.read_text()  # the log says what went


def test_a_server_killed_mid_upload_leaves_nothing_after_the_next_start(start_server, tmp_path):
    home = tmp_path / "home"
    env = {"NEURONLAB_TRUST_LOCALHOST": "0"}
    caught = []
    for _ in range(5):  # the upload's temporary file lives for a moment: try until the kill lands inside it
        server = start_server(env=env, home=home)
        uploading = threading.Thread(target=upload_quietly, args=(server,), daemon=True)
        uploading.start()
        deadline = time.monotonic() + 60
        while uploading.is_alive() and time.monotonic() < deadline and not caught:
            caught = upload_leftovers(home)
            if not caught:
                time.sleep(0.001)
        server.kill()  # SIGKILL, as a crash or the OOM killer would
        uploading.join(30)
        if caught and upload_leftovers(home):
            break
        caught = []
    assert caught, "the kill never landed while the upload's temporary file existed"

    server = start_server(env=env, home=home)
    assert upload_leftovers(home) == []
    assert requests.get(server.url + "/api/models", timeout=30).status_code == 200


def upload_quietly(server):
    try:
        with open(BIG_MODEL, "rb") as f:
            requests.post(server.url + "/api/models", files={"file": ("big.keras", f)}, headers=TEACHER, timeout=60)
    except requests.RequestException:
        pass  # the server was killed mid-request: that is the point
