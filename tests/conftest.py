"""Fixtures: a real server process, real Socket.IO clients, real Chromium.

`server` is one app process for the whole session (started the way users start
it: `python -m webapp`). Tests that need their own settings, or to kill and
restart a server, use `start_server`.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "test-teacher-token"
CHROMIUM = "/usr/bin/chromium"

sys.path.insert(0, str(ROOT))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProcessGroup:
    """A child started in a session of its own (`self.proc`), stopped or killed with everything it started."""

    proc = None

    def kill(self):
        """kill -9 the whole process group, as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


class ServerProcess(ProcessGroup):
    """A `python -m webapp serve` child process on a free localhost port."""

    def __init__(self, home, env=None, port=None):
        self.home = Path(home)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = TOKEN
        self.env = {
            **os.environ,
            "NEURONLAB_HOME": str(self.home),
            "NEURONLAB_TOKEN": TOKEN,
            "NEURONLAB_MNIST": "sample",
            "NEURONLAB_INFERENCE_PROCESSES": "1",  # each loads TensorFlow: one is enough for a test's load
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.proc = None
        self.log = self.home / f"server-{self.port}.log"

    def start(self, timeout=90):
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "webapp", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.log.read_text()[-3000:]}")

    def teacher_headers(self):
        return {"Authorization": f"Bearer {self.token}"}


FINAL_STATES = ("succeeded", "failed", "cancelled", "interrupted")


def wait_for_job(server, job_id, timeout=180):
    """The job, as GET /api/jobs/<id> gives it, once it has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(f"{server.url}/api/jobs/{job_id}", timeout=30).json()
        if job["state"] in FINAL_STATES:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish")


def fill(folder):
    """Write until the disk refuses, in big pieces and then in pages, so that not one page is left."""
    with open(folder / "filler", "wb", buffering=0) as f:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    process = ServerProcess(tmp_path_factory.mktemp("home")).start()
    yield process
    process.stop()


@pytest.fixture
def start_server(tmp_path):
    """Start extra servers: start_server(env={...}, home=path)."""
    started = []

    def start(env=None, home=None, port=None):
        process = ServerProcess(home or tmp_path / f"home{len(started)}", env=env, port=port)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def sio(server):
    """A connected python-socketio client; more with sio.connect_new()."""
    import socketio

    clients = []

    def connect_new(url=None, headers=None):
        client = socketio.Client(reconnection=False)
        client.connect(url or server.url, headers=headers or {}, transports=["websocket"], wait_timeout=20)
        clients.append(client)
        return client

    client = connect_new()
    client.connect_new = connect_new
    yield client
    for c in clients:
        if c.connected:
            c.disconnect()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (the README's test command does)")
    from playwright.sync_api import expect, sync_playwright

    # A server's first prediction waits for an inference worker to load TensorFlow: on a busy 2-core machine
    # that can take longer than Playwright's 5 s for expect(). This bounds a wait; it asserts no speed.
    expect.set_options(timeout=60_000)
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    yield page
    context.close()


# -- the classroom: a LAN-like server, a teacher and viewers, on laptops and phones ----------------------------

LAPTOP = (1366, 768)
PHONES = [(320, 568), (360, 640), (393, 851), (412, 915)]  # portrait phones, the smallest first
SIZES = [*PHONES, LAPTOP]


@pytest.fixture(scope="session")
def classroom(tmp_path_factory):
    """A server as on a LAN: no localhost trust, so a browser is the teacher only with the token."""
    process = ServerProcess(tmp_path_factory.mktemp("classroom"), env={"NEURONLAB_TRUST_LOCALHOST": "0"}).start()
    yield process
    process.stop()


@pytest.fixture
def open_page(browser):
    """open_page(url, size=(w, h), token=None) -> a Playwright page in a context of its own.

    Sizes narrower than 700 px are phones: touch, a mobile viewport, a 2x screen. With `token`,
    the page first opens the teacher link, as a teacher does once, and so holds the teacher's cookie."""
    from urllib.parse import urlsplit

    contexts = []

    def open_(url, size=LAPTOP, token=None):
        width, height = size
        phone = width < 700
        context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=phone,
                                      has_touch=phone, device_scale_factor=2 if phone else 1)
        contexts.append(context)
        page = context.new_page()
        if token:
            parts = urlsplit(url)
            page.goto(f"{parts.scheme}://{parts.netloc}/?token={token}")
        page.goto(url)
        return page

    yield open_
    for context in contexts:
        context.close()
