"""A classroom's worth of load on the production server, for 60 seconds.

    python -m bench.load [--mnist /work/shared/data/mnist.npz | sample] [--seconds 60]
                         [--drawers 50] [--rate 5] [--watchers 100] [--job '{"net": "mlp", ...}']

Starts the Procfile's gunicorn command on a free localhost port (temporary
NEURONLAB_HOME, NEURONLAB_MNIST from --mnist), then at the same time:
- `drawers` Socket.IO clients each send `rate` predictions a second (a drawn digit);
- `watchers` Socket.IO clients follow a live training job (started again if it ends).
Clients live in several processes so that the measuring side is not the
bottleneck. It prints errors, predict p50/p99 and the fan-out delay of epoch
(and batch) events: for each event, the spread between the first and the last
watcher receiving it. Targets: 0 errors, epoch fan-out p99 <= 200 ms.
"""
import argparse
import base64
import io
import json
import multiprocessing as mp
import os
import queue
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-teacher-token"
TEACHER = {"Authorization": f"Bearer {TOKEN}"}
CLIENTS_PER_PROCESS = 25
DEFAULT_JOB = {"net": "mlp", "epochs": 100, "data": "sample"}  # ~1 epoch a second: many epoch events


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def procfile_command(port, threads=None):
    """The Procfile's `web:` command, bound to localhost only (and with `threads` if given)."""
    line = next(l for l in (ROOT / "Procfile").read_text().splitlines() if l.startswith("web:"))
    command = line.split(":", 1)[1].strip().replace("${PORT:-5000}", str(port)).replace("0.0.0.0", "127.0.0.1")
    command = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m[1], m[2]), command)  # other ${VAR:-default}
    parts = shlex.split(command)
    parts[0] = str(Path(sys.executable).parent / parts[0])  # the venv's gunicorn
    if threads:  # gthread pins one thread per open websocket
        parts[parts.index("--threads") + 1] = str(threads)
    return parts


def start_server(mnist, port, home, threads=None):
    env = {**os.environ, "PORT": str(port), "NEURONLAB_HOME": str(home), "NEURONLAB_TOKEN": TOKEN,
           "NEURONLAB_MNIST": mnist, "NEURONLAB_HOST": "127.0.0.1",
           "NEURONLAB_PREDICT_RATE": "20", "NEURONLAB_TRUST_LOCALHOST": "0"}
    log = open(Path(home) / "server.log", "wb")
    proc = subprocess.Popen(procfile_command(port, threads), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited:\n{(Path(home) / 'server.log').read_text()[-3000:]}")
        try:
            if requests.get(url + "/healthz", timeout=1).ok:
                return proc, url
        except requests.RequestException:
            time.sleep(0.3)
    proc.kill()
    sys.exit("the server did not start")


def ensure_digit_model(url, home):
    """Use the shipped model; without one, upload a small untrained MLP (latency is what counts)."""
    if requests.get(url + "/api/models", timeout=30).json()["active"].get("default"):
        return
    import keras

    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    path = Path(home) / "bench-mlp.keras"
    model.save(path)
    with open(path, "rb") as f:
        response = requests.post(url + "/api/models", files={"file": f}, headers=TEACHER, timeout=120)
    response.raise_for_status()


def digit_images(count=20):
    """Drawn digits as the canvas sends them: 280x280 PNG data URLs."""
    from PIL import Image

    from bench.strokes import drawn_digit

    rng = np.random.default_rng(0)
    images = []
    for i in range(count):
        image = drawn_digit(i % 10, rng)
        if not isinstance(image, Image.Image):
            image = Image.fromarray(np.asarray(image))
        buffer = io.BytesIO()
        image.convert("L").save(buffer, "PNG")
        images.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    return images


def connect(url):
    import socketio

    client = socketio.Client(reconnection=False)
    client.connect(url, transports=["websocket"], wait_timeout=30)
    return client


# -- client processes -----------------------------------------------------------------------

def drawers_process(url, count, rate, images, ready, start, seconds, results):
    latencies, errors = [], []
    lock = threading.Lock()
    clients = []
    for _ in range(count):
        try:
            clients.append(connect(url))
        except Exception as exc:
            errors.append(f"drawer connect: {exc}")
    ready.put(len(clients))
    start.wait()
    stop_at = time.time() + seconds

    def draw(client, offset):
        interval = 1.0 / rate
        next_at = time.time() + offset
        n = 0
        while next_at < stop_at:
            time.sleep(max(0.0, next_at - time.time()))
            sent = time.perf_counter()
            try:
                answer = client.call("predict", {"image": images[n % len(images)]}, timeout=10)
                elapsed = time.perf_counter() - sent
                with lock:
                    if isinstance(answer, dict) and "error" not in answer:
                        latencies.append(elapsed)
                    else:
                        errors.append(f"predict: {answer}"[:200])
            except Exception as exc:
                with lock:
                    errors.append(f"predict: {type(exc).__name__} {exc}"[:200])
            n += 1
            next_at += interval

    threads = [threading.Thread(target=draw, args=(c, i / count / rate)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in clients:
        c.disconnect()
    results.put({"latencies": latencies, "errors": errors})


def watchers_process(url, count, job_ids, ready, start, seconds, results):
    received = {}  # (job, seq, type) -> [receive times]
    history = {}  # client index -> {job: last seq at subscribe time (already-sent history)}
    seen = {}  # (client index, job) -> [seqs]
    errors = []
    lock = threading.Lock()
    clients = []

    def on_job(index):
        def handler(event):
            now = time.time()
            with lock:
                seen.setdefault((index, event["job"]), []).append(event["seq"])
                if event["seq"] > history.get(index, {}).get(event["job"], 10**9):
                    received.setdefault((event["job"], event["seq"], event["type"]), []).append(now)
        return handler

    for i in range(count):
        try:
            client = connect(url)
            client.on("job", on_job(i))
            clients.append(client)
        except Exception as exc:
            errors.append(f"watcher connect: {exc}")

    def subscribe_all(job_id):
        for i, client in enumerate(clients):
            try:
                ack = client.call("subscribe", {"job": job_id}, timeout=30)
                with lock:
                    history.setdefault(i, {})[job_id] = ack["job"]["last_seq"]
            except Exception as exc:
                errors.append(f"subscribe: {type(exc).__name__} {exc}"[:200])

    ready.put(len(clients))
    start.wait()
    stop_at = time.time() + seconds
    while time.time() < stop_at:
        try:
            subscribe_all(job_ids.get(timeout=0.5))
        except queue.Empty:
            pass
    time.sleep(1)  # events in flight at the end
    for c in clients:
        c.disconnect()
    with lock:
        for (index, job), seqs in seen.items():  # history then live: 1, 2, 3, ... with no gap or repeat
            # (python-socketio runs each handler in its own thread, so arrival order is not checked here)
            if sorted(seqs) != list(range(1, len(seqs) + 1)):
                errors.append(f"watcher {index}: job {job} events lost or repeated")
    results.put({"received": {"|".join(map(str, k)): v for k, v in received.items()}, "errors": errors,
                 "clients": len(clients)})


# -- the run --------------------------------------------------------------------------------

def percentile(values, q):
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", default="/work/shared/data/mnist.npz", help="NEURONLAB_MNIST for the server")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--drawers", type=int, default=50)
    parser.add_argument("--rate", type=float, default=5, help="predictions a second per drawer")
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--threads", type=int, help="override the Procfile's gunicorn --threads")
    parser.add_argument("--job", type=json.loads, default=DEFAULT_JOB, help="the training job to watch (JSON)")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="neuronlab-load-"))
    port = free_port()
    proc, url = start_server(args.mnist, port, home, args.threads)
    print(f"server: {' '.join(procfile_command(port, args.threads))}  (home {home})", flush=True)
    try:
        ensure_digit_model(url, home)
        images = digit_images()
        context = mp.get_context("spawn")
        ready, start, results = context.Queue(), context.Event(), context.Queue()
        processes, job_queues = [], []
        for first in range(0, args.drawers, CLIENTS_PER_PROCESS // 2):
            n = min(CLIENTS_PER_PROCESS // 2, args.drawers - first)
            processes.append(context.Process(target=drawers_process,
                                             args=(url, n, args.rate, images, ready, start, args.seconds, results)))
        for first in range(0, args.watchers, CLIENTS_PER_PROCESS):
            n = min(CLIENTS_PER_PROCESS, args.watchers - first)
            job_queues.append(context.Queue())
            processes.append(context.Process(target=watchers_process,
                                             args=(url, n, job_queues[-1], ready, start, args.seconds, results)))
        for p in processes:
            p.start()

        def start_job():
            response = requests.post(url + "/api/jobs", json=args.job, headers=TEACHER, timeout=30)
            response.raise_for_status()
            job_id = response.json()["id"]
            for q in job_queues:
                q.put(job_id)
            return job_id

        connected = sum(ready.get(timeout=300) for _ in processes)  # connecting 150 clients takes a while
        print(f"{connected} clients connected", flush=True)
        if connected < args.drawers + args.watchers:
            print(f"  {args.drawers + args.watchers - connected} could not connect", flush=True)
        jobs = [start_job()]
        start.set()
        stop_at = time.time() + args.seconds
        print(f"running for {args.seconds:.0f} s: {args.drawers} drawers x {args.rate:g}/s, "
              f"{args.watchers} watchers of job {args.job}", flush=True)
        while time.time() < stop_at:
            time.sleep(1)
            state = requests.get(f"{url}/api/jobs/{jobs[-1]}?after=1000000000", timeout=30).json()["state"]
            if state in ("succeeded", "failed", "cancelled", "interrupted") and time.time() < stop_at - 5:
                jobs.append(start_job())  # keep a job live for the whole run
        collected = [results.get(timeout=120) for _ in processes]
        for p in processes:
            p.join(30)
        for job_id in jobs:
            requests.delete(f"{url}/api/jobs/{job_id}", headers=TEACHER, timeout=30)
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        shutil.rmtree(home, ignore_errors=True)  # the job database and models of this run only

    latencies = [x for r in collected for x in r.get("latencies", [])]
    errors = [e for r in collected for e in r["errors"]]
    watchers = sum(r.get("clients", 0) for r in collected)
    spreads = {"epoch": [], "batch": []}
    partial = 0
    merged = {}
    for r in collected:
        for key, times in r.get("received", {}).items():
            merged.setdefault(key, []).extend(times)
    for key, times in merged.items():
        kind = key.split("|")[2]
        if kind in spreads:
            if len(times) < watchers:
                partial += 1
            spreads[kind].append(max(times) - min(times))

    print(f"errors: {len(errors)}")
    for e in errors[:10]:
        print(f"  {e}")
    print(f"predictions: {len(latencies)} in {args.seconds:.0f} s ({len(latencies) / args.seconds:.0f}/s); "
          f"p50 {percentile(latencies, 50) * 1000:.0f} ms, p99 {percentile(latencies, 99) * 1000:.0f} ms")
    for kind in ("epoch", "batch"):
        values = spreads[kind]
        print(f"{kind} events: {len(values)} seen by {watchers} watchers; fan-out delay (first to last watcher) "
              f"p50 {percentile(values, 50) * 1000:.0f} ms, p99 {percentile(values, 99) * 1000:.0f} ms")
    if partial:
        print(f"events not seen by every watcher (at the start or end of the window): {partial}")
    ok = not errors and spreads["epoch"] and percentile(spreads["epoch"], 99) <= 0.2
    print("targets (0 errors, epoch fan-out p99 <= 200 ms):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
