"""A classroom's worth of load on the production server, for 60 seconds.

    python -m bench.load [--mnist /work/shared/data/mnist.npz | sample] [--seconds 60]
                         [--drawers 100] [--rate 5] [--watchers 100] [--job '{"net": "mlp", ...}']
                         [--workers N]

With --workers N (N > 1) it runs twice in one go, the same load each time: first the embedded server (one web
process, a training process of its own), then the distributed mode on this machine: a redis-server it starts
on a free port, NEURONLAB_WEB_PROCESSES=N web processes behind the Procfile's one port, and one training worker
(`python -m webapp worker`). It prints both runs' figures, then the throughput ratio (predictions answered a
second, N processes / 1) and the epoch fan-out p99 of each.

Starts the Procfile's command (gunicorn --config gunicorn.conf.py) on a free
localhost port (temporary NEURONLAB_HOME, NEURONLAB_MNIST from --mnist, or
"sample" when that file is absent), then at the same time:
- `drawers` Socket.IO clients each send `rate` predictions a second (a drawn digit)
  and wait for each answer;
- `watchers` Socket.IO clients follow a live training job (started again if it ends).
Every client has its own loopback source address (127.1.x.y drawers, 127.2.x.y
watchers), as a class's phones would, so the per-address limits apply to each
alone; NEURONLAB_PREDICT_RATE is raised anyway (it is not what is measured).

The clients are light (bench/swarm.py: one gevent process, one greenlet per
connection). So that the generator is seen not to be the bottleneck, it prints
its own CPU and its event loop's lag next to the server's CPU (web process and
inference workers apart). It prints errors, predict p50/p99 and the fan-out
delay of epoch (and batch) events: for each event, the spread between the
first and the last watcher receiving it.
Targets: 0 errors, prediction p99 <= 150 ms, epoch fan-out p99 <= 100 ms.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402

from bench.swarm import (Client, LoopLag, TreeCPU, address, cpu_line, machine_line, own_cpu_seconds,  # noqa: E402
                         server_role, watch_cpu)

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-teacher-token"
TEACHER = {"Authorization": f"Bearer {TOKEN}"}
DEFAULT_MNIST = "/work/shared/data/mnist.npz"
DEFAULT_JOB = {"net": "mlp", "epochs": 100, "data": "sample"}  # ~1 epoch a second: many epoch events
PREDICT_RATE = "1000"  # per address; each client has its own address and asks for `rate` a second
DRAWERS_BLOCK, WATCHERS_BLOCK = 1, 2  # source addresses 127.<block>.x.y
FINAL_STATES = ("succeeded", "failed", "cancelled", "interrupted")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def procfile_command(port):
    """The Procfile's `web:` command, bound to localhost only."""
    line = next(l for l in (ROOT / "Procfile").read_text().splitlines() if l.startswith("web:"))
    command = line.split(":", 1)[1].strip().replace("${PORT:-5000}", str(port)).replace("0.0.0.0", "127.0.0.1")
    command = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m[1], m[2]), command)  # other ${VAR:-default}
    parts = shlex.split(command)
    parts[0] = str(Path(sys.executable).parent / parts[0])  # the venv's gunicorn
    return parts


def start_server(port, home, env):
    """The Procfile's command with `env` added; (process, url) once /healthz answers."""
    env = {**os.environ, "PORT": str(port), "NEURONLAB_HOME": str(home), "NEURONLAB_HOST": "127.0.0.1", **env}
    log = open(Path(home) / "server.log", "wb")
    proc = subprocess.Popen(procfile_command(port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
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
    stop_server(proc)
    sys.exit("the server did not start")


def stop_server(proc):
    try:
        os.killpg(proc.pid, 15)
        proc.wait(30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(10)


def mnist_setting(path):
    if path != "sample" and not Path(path).exists():
        print(f"{path} is absent: the server trains on the shipped sample (NEURONLAB_MNIST=sample)")
        return "sample"
    return path


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
    """Drawn digits as the Draw page sends them (bench.strokes.canvas_png), as data URLs."""
    from bench.strokes import canvas_png, drawn_digit

    rng = np.random.default_rng(0)
    return ["data:image/png;base64," + base64.b64encode(canvas_png(drawn_digit(i % 10, rng))).decode()
            for i in range(count)]


def connect_all(url, block, count, errors, what):
    """`count` clients from addresses 127.<block>.x.y, connected 25 at a time."""
    clients = [None] * count

    def one(i):
        try:
            clients[i] = Client(url, source=address(block, i))
        except Exception as exc:
            errors.append(f"{what} {i} connect: {type(exc).__name__} {exc}"[:200])

    gevent.pool.Pool(25).map(one, range(count))
    return [c for c in clients if c is not None]


def percentile(values, q):
    return float(np.percentile(values, q)) if values else float("nan")


class Watchers:
    """Watchers of the live job: every `job` event's arrival time at each watcher."""

    def __init__(self, clients):
        self.clients = clients
        self.live_after = {}  # (watcher, job) -> the last seq its subscribe's history held
        self.seen = {}  # (watcher, job) -> seqs in arrival order
        self.received = {}  # (job, seq, type) -> arrival times of live events
        self.errors = []
        for index, client in enumerate(clients):
            client.on("job", self._handler(index))

    def _handler(self, index):
        def handler(event):
            now = time.perf_counter()
            key = (index, event["job"])
            seqs = self.seen.setdefault(key, [])
            first = event["seq"] not in seqs  # a repeat (the page drops it) is not a second arrival
            seqs.append(event["seq"])
            if first and event["seq"] > self.live_after.get(key, 10**18):
                self.received.setdefault((event["job"], event["seq"], event["type"]), []).append(now)
        return handler

    def subscribe_all(self, job_id):
        def one(index):
            try:
                ack = self.clients[index].call("subscribe", {"job": job_id}, timeout=30)
                self.live_after[(index, job_id)] = ack["job"]["last_seq"]
            except Exception as exc:
                self.errors.append(f"subscribe: {type(exc).__name__} {exc}"[:200])

        gevent.pool.Pool(50).map(one, range(len(self.clients)))

    def check_order(self):
        """History then live: every seq 1, 2, 3, ... at every watcher. A repeat or an event out of order is
        counted, not an error: job-stream.js drops the one and holds the other (several web processes relay
        events); a lost one is an error (the page would have to ask for it)."""
        repeats = reordered = 0
        for (index, job), seqs in self.seen.items():
            if set(seqs) != set(range(1, max(seqs) + 1)):
                self.errors.append(f"watcher {index}: job {job} events lost")
            repeats += len(seqs) - len(set(seqs))
            firsts = list(dict.fromkeys(seqs))
            reordered += sum(1 for a, b in zip(firsts, firsts[1:]) if b < a)
        return repeats, reordered

    def spreads(self):
        """{type: [first-to-last arrival spread of each event every watcher saw]}, events seen by only some."""
        spreads, partial = {"epoch": [], "batch": []}, 0
        for (_, _, kind), times in self.received.items():
            if kind not in spreads:
                continue
            if len(times) < len(self.clients):
                partial += 1  # at the start (still subscribing) or the end of the window
                continue
            spreads[kind].append(max(times) - min(times))
        return spreads, partial


def draw(client, images, rate, offset, stop_at, latencies, errors):
    """One drawer: a prediction every 1/rate s (waiting for each answer, as the page does)."""
    interval = 1.0 / rate
    next_at = time.perf_counter() + offset
    n = 0
    while next_at < stop_at and time.perf_counter() < stop_at:  # late answers shift the schedule, not the end
        gevent.sleep(max(0.0, next_at - time.perf_counter()))
        sent = time.perf_counter()
        try:
            answer = client.call("predict", {"image": images[n % len(images)]}, timeout=10)
            elapsed = time.perf_counter() - sent
            if isinstance(answer, dict) and answer.get("digit") is not None and "error" not in answer:
                latencies.append(elapsed)
            else:
                errors.append(f"predict: {answer}"[:200])
        except Exception as exc:
            errors.append(f"predict: {type(exc).__name__} {exc}"[:200])
        n += 1
        next_at += interval


class Helpers:
    """What the distributed run needs besides the web server: a redis-server and a training worker."""

    def __init__(self, home):
        self.home = Path(home)
        self.redis_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.redis = self.worker = None

    def start(self, mnist):
        if shutil.which("redis-server") is None:
            sys.exit("--workers N > 1 needs redis-server (Debian: apt-get install redis-server)")
        self.redis = subprocess.Popen(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--dir", str(self.home)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        env = {**os.environ, "NEURONLAB_HOME": str(self.home / "worker"), "NEURONLAB_REDIS_URL": self.redis_url,
               "NEURONLAB_MNIST": mnist}
        log_path = self.home / "worker.log"
        deadline = time.monotonic() + 30
        while subprocess.run(["redis-cli", "-p", str(self.redis_port), "ping"], capture_output=True).returncode:
            if time.monotonic() > deadline:
                sys.exit("redis-server did not start")
            time.sleep(0.2)
        with open(log_path, "wb") as log:
            self.worker = subprocess.Popen([sys.executable, "-m", "webapp", "worker"], cwd=ROOT, env=env, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while " ready." not in log_path.read_text():
            if self.worker.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the training worker did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        return self

    def stop(self):
        for proc in (self.worker, self.redis):
            if proc is not None:
                stop_server(proc)


def run(args, mnist, processes):
    """One run of the load against `processes` web processes (1: the embedded mode); its figures."""
    home = Path(tempfile.mkdtemp(prefix="neuronlab-load-"))
    port = free_port()
    env = {"NEURONLAB_TOKEN": TOKEN, "NEURONLAB_MNIST": mnist, "NEURONLAB_PREDICT_RATE": PREDICT_RATE,
           "NEURONLAB_TRUST_LOCALHOST": "0", "NEURONLAB_REDIS_URL": "", "NEURONLAB_WEB_PROCESSES": str(processes)}
    helpers = None
    if processes > 1:
        helpers = Helpers(home).start(mnist)
        env["NEURONLAB_REDIS_URL"] = helpers.redis_url
    proc, url = start_server(port, home, env)
    mode = (f"{processes} web processes, Redis {helpers.redis_url}, one training worker" if helpers else
            "1 web process (the embedded mode)")
    print(f"\n== {mode}\nserver: {' '.join(procfile_command(port))}  (home {home})\n"
          f"  with NEURONLAB_PREDICT_RATE={PREDICT_RATE} (per address), NEURONLAB_MAX_SOCKETS_PER_ADDRESS "
          f"{os.environ.get('NEURONLAB_MAX_SOCKETS_PER_ADDRESS', 'default')}: each client has its own address; "
          f"NEURONLAB_INFERENCE_PROCESSES {os.environ.get('NEURONLAB_INFERENCE_PROCESSES', 'default (2)')} "
          "per web process", flush=True)
    errors, latencies, clients, jobs = [], [], [], []
    others = []  # (role, TreeCPU) of the distributed mode's redis-server and training worker
    drawers, watchers = [], Watchers([])
    try:
        ensure_digit_model(url, home)
        images = digit_images()
        drawers = connect_all(url, DRAWERS_BLOCK, args.drawers, errors, "drawer")
        watchers = Watchers(connect_all(url, WATCHERS_BLOCK, args.watchers, errors, "watcher"))
        clients = drawers + watchers.clients
        print(f"{len(clients)} clients connected ({args.drawers + args.watchers - len(clients)} could not)",
              flush=True)
        for _ in range(3 * processes):  # a first prediction loads the model in each inference worker: not measured
            gevent.joinall([gevent.spawn(c.call, "predict", {"image": images[0]}, timeout=120) for c in drawers])

        def start_job():
            response = requests.post(url + "/api/jobs", json=args.job, headers=TEACHER, timeout=30)
            response.raise_for_status()
            jobs.append(response.json()["id"])
            gevent.spawn(watchers.subscribe_all, jobs[-1])

        server_cpu = TreeCPU(proc.pid, server_role)
        server_cpu.start()  # before the job: the processes there now are the inference workers
        if helpers:
            others = [("redis-server", TreeCPU(helpers.redis.pid, lambda *_: "redis-server")),
                      ("training worker (Celery)", TreeCPU(helpers.worker.pid, lambda *_: "training worker"))]
            for _, tree in others:
                tree.start()
        start_job()  # and wait for it to train (its process loads TensorFlow first): the window sees a live job
        waited_until = time.perf_counter() + 120
        while not watchers.received and time.perf_counter() < waited_until:
            gevent.sleep(0.2)
        samplers = [watch_cpu(server_cpu)] + [watch_cpu(tree) for _, tree in others]
        lag = LoopLag()
        server_cpu.restart()
        for _, tree in others:
            tree.restart()
        own_before, machine_before, started = own_cpu_seconds(), psutil.cpu_times(), time.perf_counter()
        stop_at = started + args.seconds
        print(f"running for {args.seconds:.0f} s: {len(drawers)} drawers x {args.rate:g}/s, "
              f"{len(watchers.clients)} watchers of job {args.job}", flush=True)
        greenlets = [gevent.spawn(draw, c, images, args.rate, i / len(drawers) / args.rate, stop_at,
                                  latencies, errors) for i, c in enumerate(drawers)]
        while time.perf_counter() < stop_at:
            gevent.sleep(1)
            state = requests.get(f"{url}/api/jobs/{jobs[-1]}?after=1000000000", timeout=30).json()["state"]
            if state in FINAL_STATES and time.perf_counter() < stop_at - 5:
                start_job()  # keep a job live for the whole run
        gevent.joinall(greenlets, timeout=30)
        wall = time.perf_counter() - started
        own_cpu = own_cpu_seconds() - own_before
        machine = machine_line(machine_before, psutil.cpu_times())
        lags = lag.stop()
        server_cpu.sample()
        for _, tree in others:
            tree.sample()
        for sampler in samplers:
            sampler.kill()
        gevent.sleep(1)  # events in flight at the end
        for job_id in jobs:
            requests.delete(f"{url}/api/jobs/{job_id}", headers=TEACHER, timeout=30)
        for client in clients:
            if not client.connected:
                errors.append("a client was disconnected by the server")
    finally:
        for client in clients:
            client.close()
        stop_server(proc)
        if helpers:
            helpers.stop()
        shutil.rmtree(home, ignore_errors=True)  # the job database and models of this run only

    repeats, reordered = watchers.check_order()
    errors += watchers.errors
    spreads, partial = watchers.spreads()
    print(f"errors: {len(errors)}")
    for e in errors[:10]:
        print(f"  {e}")
    asked = len(drawers) * args.rate
    print(f"predictions: {len(latencies)} in {wall:.0f} s ({len(latencies) / wall:.0f}/s of "
          f"{asked:.0f}/s asked); p50 {percentile(latencies, 50) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 99) * 1000:.1f} ms, max {max(latencies, default=float('nan')) * 1000:.0f} ms")
    for kind in ("epoch", "batch"):
        values = spreads[kind]
        print(f"{kind} events: {len(values)} seen by all {len(watchers.clients)} watchers; fan-out delay "
              f"(first to last watcher) p50 {percentile(values, 50) * 1000:.1f} ms, "
              f"p99 {percentile(values, 99) * 1000:.1f} ms")
    if partial:
        print(f"events not seen by every watcher (at the start or end of the window, while subscribing): {partial}")
    print(f"repeated events (dropped by the page): {repeats}; out of order (held by the page): {reordered}")
    print(cpu_line("load generator (this process)", own_cpu, wall))
    print(f"  its event loop's lag: p50 {lags[0] * 1000:.1f} ms, p99 {lags[1] * 1000:.1f} ms, "
          f"max {lags[2] * 1000:.0f} ms (latencies above include it)")
    for role, seconds in sorted(server_cpu.by_role().items()):
        print(cpu_line(f"server: {role}", seconds, wall))
    for name, tree in others:
        print(cpu_line(name, sum(tree.by_role().values()), wall))
    print(machine)
    p99 = percentile(latencies, 99)
    epoch_p99 = percentile(spreads["epoch"], 99)
    ok = not errors and latencies and p99 <= 0.150 and spreads["epoch"] and epoch_p99 <= 0.100
    print("targets (0 errors, prediction p99 <= 150 ms, epoch fan-out p99 <= 100 ms):", "met" if ok else "NOT met")
    return {"processes": processes, "errors": len(errors), "throughput": len(latencies) / wall, "p99": p99,
            "epoch_p99": epoch_p99, "epochs": len(spreads["epoch"])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", default=DEFAULT_MNIST, help="NEURONLAB_MNIST for the server")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--drawers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=5, help="predictions a second per drawer")
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--job", type=json.loads, default=DEFAULT_JOB, help="the training job to watch (JSON)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="web processes; N > 1 runs 1 process, then N with Redis and a training worker")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be 1 or more")

    mnist = mnist_setting(args.mnist)
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} before the runs")
    results = [run(args, mnist, 1)]
    if args.workers > 1:
        results.append(run(args, mnist, args.workers))
        one, many = results
        print(f"\n== {many['processes']} web processes against 1, same load, same run")
        print(f"throughput: {many['throughput']:.0f}/s against {one['throughput']:.0f}/s predictions answered: "
              f"ratio {many['throughput'] / one['throughput']:.2f}")
        print(f"prediction p99: {many['p99'] * 1000:.1f} ms against {one['p99'] * 1000:.1f} ms")
        print(f"epoch fan-out p99: {many['epoch_p99'] * 1000:.1f} ms against {one['epoch_p99'] * 1000:.1f} ms "
              f"({many['epochs']} and {one['epochs']} epochs seen by every watcher)")
        print(f"errors: {many['errors']} and {one['errors']}")
    load = os.getloadavg()
    print(f"machine: load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} after the runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
