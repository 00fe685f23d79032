"""Throughput and latency of POST /api/predict against the tutorial-style baseline and a bare-Flask floor.

    python -m bench.predict [--seconds 10] [--model cnn] [--repeat 3] [--client python|wrk] [--also VAR=VALUE ...]
    python -m bench.predict --inspect [--seconds 10] [--repeat 3] [--inspect-rate 20]

Starts, side by side: the real server (`python -m webapp serve`: gunicorn, one
gevent worker, inference in worker processes), bench/tutorial_app.py with the
same model file, and bench/bare_flask.py (a trivial JSON endpoint) under the
same gunicorn command as ours. Then, `repeat` times (this machine is noisy),
loads each in turn with a drawn-digit PNG from 1 and 8 concurrent connections
and prints requests/s, p50 and p99 latency, the client's CPU, and the ratios:
ours / tutorial at 8 connections (target >= 30x), our p50 at 1 connection
(target <= 3 ms), and the share of the floor we reach (ours / bare req/s at 8
connections, bare p50 / our p50 at 1). Our servers are also timed as a student
drawing alone loads them: one connection sending 5 drawings a second (p50, p99).
Last, the median of every figure.
Each --also VAR=VALUE[,VAR=VALUE] adds a server of ours with those settings, loaded in the same runs, to
compare a switch (e.g. --also NEURONLAB_INFERENCE_RUNTIME=keras, --also NEURONLAB_LONE_DRAWER_INLINE=0); the
ratios are those of the default server.

With --inspect it starts only the real server and measures the "Look inside" path instead: for the CNN, MLP
and MLP2, POST /api/inspect's p50 at 1 connection (target <= 10 ms for the CNN) and its answer's size; then plain
predictions of the CNN at 1 and 8 connections, alone and with `--inspect-rate` CNN inspections a second
alongside (4 students drawing at 5 a second with Look inside open), whose p50 should not be slower.

The load comes from Python threads with keep-alive connections, or from wrk
(Debian's `wrk`) with --client wrk. When the client's CPU nears one core (the
GIL), the Python client is what limits the figure: use wrk.
"""
import argparse
import base64
import http.client
import json
import multiprocessing
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.strokes import canvas_png, drawn_digit

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(port, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("server did not start")


def one_connection(port, body, stop_at, latencies, errors, path="/api/predict", interval=0.0, sizes=None):
    """Requests one after another on a keep-alive connection, or one every `interval` seconds."""
    conn = None
    next_at = time.perf_counter()
    while time.perf_counter() < stop_at:
        if interval:
            next_at += interval
            time.sleep(max(0.0, next_at - time.perf_counter()))
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        started = time.perf_counter()
        try:
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200 or b'"digit"' not in payload:
                errors.append(response.status)
            if sizes is not None:
                sizes.append(len(payload))
            if response.getheader("Connection", "").lower() == "close" or response.version == 10:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            errors.append(repr(exc))
            conn.close()
            conn = None
            continue
        latencies.append(time.perf_counter() - started)


def load(port, body, connections, seconds, path="/api/predict", sizes=None, interval=0.0):
    latencies, errors = [], []
    stop_at = time.perf_counter() + seconds
    threads = [threading.Thread(target=one_connection, args=(port, body, stop_at, latencies, errors, path),
                                kwargs={"sizes": sizes, "interval": interval})
               for _ in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"rps": len(latencies) / elapsed, "p50": float(np.percentile(ms, 50)),
            "p99": float(np.percentile(ms, 99)), "n": len(latencies), "errors": len(errors), "ms": ms,
            "seconds": elapsed}


def merged(results):
    """One result from several loads of the same kind (slices of one measurement)."""
    ms = np.concatenate([r["ms"] for r in results])
    return {"rps": len(ms) / sum(r["seconds"] for r in results), "p50": float(np.percentile(ms, 50)),
            "p99": float(np.percentile(ms, 99)), "n": len(ms), "errors": sum(r["errors"] for r in results)}


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open(os.getenv("BENCH_BODY_FILE"), "rb"):read()
"""


def load_with_wrk(port, body, connections, seconds):
    """The same load from wrk: requests/s and the p50/p99 it reports."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "body.json").write_text(body)
        (Path(folder) / "post.lua").write_text(WRK_SCRIPT)
        result = subprocess.run(
            ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{seconds:.0f}s", "--latency",
             "-s", str(Path(folder) / "post.lua"), f"http://127.0.0.1:{port}/api/predict"],
            capture_output=True, text=True, env={**os.environ, "BENCH_BODY_FILE": str(Path(folder) / "body.json")},
        )
    out = result.stdout

    def number(label):
        line = next(l for l in out.splitlines() if l.strip().startswith(label))
        value = line.split()[-1] if label.endswith(":") else line.split()[1]
        scale = {"us": 0.001, "ms": 1, "s": 1000}
        for unit in ("us", "ms", "s"):
            if value.endswith(unit) and value[: -len(unit)].replace(".", "").isdigit():
                return float(value[: -len(unit)]) * scale[unit]
        return float(value)

    errors = sum(int(l.split()[-1]) for l in out.splitlines() if l.strip().startswith("Non-2xx"))
    return {"rps": number("Requests/sec:"), "p50": number("50%"), "p99": number("99%"),
            "n": int(next(l for l in out.splitlines() if "requests in" in l).split()[0]), "errors": errors}


def start(name, command, env, port, body):
    """A server's process, up and warmed (the model loaded, the graph traced)."""
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_until_up(port, proc)
        load(port, body, 8, 2)  # every inference worker and thread sees a request first
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def client_cpu_seconds():
    """This process's CPU and that of its finished children (wrk), user + sys."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(name, port, body, connections, seconds, use_wrk=False):
    before = client_cpu_seconds()
    result = (load_with_wrk if use_wrk else load)(port, body, connections, seconds)
    result["client_cpu"] = (client_cpu_seconds() - before) / seconds
    print(f"{name:>10} {connections} conn: {result['rps']:8.1f} req/s   p50 {result['p50']:7.2f} ms   "
          f"p99 {result['p99']:7.1f} ms   ({result['n']} requests, {result['errors']} errors; "
          f"client CPU {100 * result['client_cpu']:.0f}% of a core)", flush=True)
    return result


def figures(results):
    """The comparison's figures from one run's results[name][connections]."""
    ours, base, bare = results["neuronlab"], results["tutorial"], results["bare flask"]
    return {
        "ratio_8": ours[8]["rps"] / base[8]["rps"],
        "ours_p50_1": ours[1]["p50"],
        "bare_rps_8": bare[8]["rps"],
        "bare_p50_1": bare[1]["p50"],
        "share_rps_8": ours[8]["rps"] / bare[8]["rps"],
        "share_p50_1": bare[1]["p50"] / ours[1]["p50"],
    }


def print_figures(f, label):
    print(f"{label}: ours/tutorial at 8 connections {f['ratio_8']:.1f}x (target >= 30x); our p50 at 1 connection "
          f"{f['ours_p50_1']:.2f} ms (target <= 3 ms)\n"
          f"{' ' * len(label)}  bare-Flask floor: {f['bare_rps_8']:.0f} req/s at 8, p50 {f['bare_p50_1']:.2f} ms at 1; "
          f"we reach {100 * f['share_rps_8']:.0f}% of its req/s at 8 and {100 * f['share_p50_1']:.0f}% of its "
          f"p50 at 1 (bare p50 / ours)", flush=True)


def drawing_body(model):
    png = canvas_png(drawn_digit(8, np.random.default_rng(0)))  # as the Draw page sends it
    return json.dumps({"image": "data:image/png;base64," + base64.b64encode(png).decode(), "model": model})


def report(label, result):
    print(f"{label:>36}: {result['rps']:7.1f} req/s   p50 {result['p50']:7.2f} ms   p99 {result['p99']:7.1f} ms   "
          f"({result['n']} requests, {result['errors']} errors)", flush=True)


SPAWN = multiprocessing.get_context("spawn")
PACED_RATE = 5  # drawings a second from a student drawing alone (as bench/load.py's drawers)


def side_inspections(port, body, seconds, interval, answers):
    """Two connections, each asking /api/inspect every `interval` seconds for `seconds`; (latencies, errors)."""
    stop_at = time.perf_counter() + seconds
    latencies, errors = [], []
    side = [threading.Thread(target=one_connection, args=(port, body, stop_at, latencies, errors, "/api/inspect"),
                             kwargs={"interval": interval}) for _ in range(2)]
    for thread in side:
        thread.start()
    for thread in side:
        thread.join()
    answers.put((latencies, [str(e) for e in errors]))


def inspect_bench(args):
    """The --inspect figures (see the module's docstring)."""
    models = ("cnn", "mlp", "mlp2")
    bodies = {model: drawing_body(model) for model in models}
    home = tempfile.mkdtemp(prefix="neuronlab-inspect-")
    port = free_port()
    command = [sys.executable, "-m", "webapp", "serve", "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "NEURONLAB_HOME": home, "NEURONLAB_PREDICT_RATE": "1000000"}
    print(f"inspect: {args.seconds:g} s per measurement; {args.repeat} runs; {args.inspect_rate:g} inspections/s "
          f"alongside; {os.cpu_count()} cores")
    proc = start("neuronlab", command, env, port, bodies["cnn"])
    runs = []
    try:
        for model in models:  # every worker has built each model's inspector before anything is timed
            load(port, bodies[model], 8, 2, path="/api/inspect")
        for run in range(1, args.repeat + 1):
            print(f"-- run {run} of {args.repeat}", flush=True)
            figures = {}
            for model in models:
                sizes = []
                result = load(port, bodies[model], 1, args.seconds, path="/api/inspect", sizes=sizes)
                figures[f"inspect {model} p50"] = result["p50"]
                figures[f"inspect {model} bytes"] = float(np.median(sizes))
                report(f"inspect {model}, 1 conn", result)
                print(f"{'':>36}  answer {np.median(sizes) / 1000:.1f} KB", flush=True)
            for connections in (1, 8):
                # alone and alongside take turns, in quarters: a machine that gets busier or quieter meanwhile
                # weighs on both alike
                slices, side_latencies, side_errors = {"alone": [], "alongside": []}, [], []
                for quarter in range(4):
                    if quarter % 2 == 0:
                        slices["alone"].append(load(port, bodies["cnn"], connections, args.seconds / 2))
                        continue
                    # the inspections come from a process of their own: reading their 150 KB answers in this
                    # one would hold its GIL and slow the very predictions being timed
                    answers = SPAWN.Queue()
                    side = SPAWN.Process(target=side_inspections, args=(
                        port, bodies["cnn"], args.seconds / 2 + 0.5, 2 / args.inspect_rate, answers))
                    side.start()
                    time.sleep(0.25)
                    slices["alongside"].append(load(port, bodies["cnn"], connections, args.seconds / 2))
                    latencies, errors = answers.get(timeout=60)
                    side.join()
                    side_latencies += latencies
                    side_errors += errors
                alone, alongside = merged(slices["alone"]), merged(slices["alongside"])
                report(f"predict cnn, {connections} conn, alone", alone)
                report(f"predict cnn, {connections} conn, alongside", alongside)
                side_ms = np.array(side_latencies) * 1000
                print(f"{'':>36}  the inspections alongside: {len(side_ms)} answered, p50 "
                      f"{np.percentile(side_ms, 50):.2f} ms, {len(side_errors)} errors", flush=True)
                figures[f"predict {connections} alone p50"] = alone["p50"]
                figures[f"predict {connections} alongside p50"] = alongside["p50"]
                figures[f"predict {connections} alone rps"] = alone["rps"]
                figures[f"predict {connections} alongside rps"] = alongside["rps"]
            runs.append(figures)
    finally:
        stop(proc)
        shutil.rmtree(home, ignore_errors=True)
    print(f"-- median of {len(runs)} runs")
    for key in runs[0]:
        values = [r[key] for r in runs]
        unit = "bytes" if key.endswith("bytes") else "req/s" if key.endswith("rps") else "ms"
        print(f"{key:>36}: {np.median(values):10.2f} {unit}   (runs: {', '.join(f'{v:.2f}' for v in values)})")
    print(f"targets: inspect cnn p50 <= 10 ms (median {np.median([r['inspect cnn p50'] for r in runs]):.2f} ms); "
          f"predictions alongside not slower than alone")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="per server and connection count")
    parser.add_argument("--model", default="cnn", help="a model in models/ (default cnn)")
    parser.add_argument("--client", choices=["wrk", "python"], default="python")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the whole comparison (default 3)")
    parser.add_argument("--inspect", action="store_true", help="measure /api/inspect instead (see above)")
    parser.add_argument("--inspect-rate", type=float, default=20, help="inspections a second alongside predictions")
    parser.add_argument("--also", action="append", default=[], metavar="VAR=VALUE[,VAR=VALUE]",
                        help="another server of ours with these settings, in the same runs (repeatable)")
    args = parser.parse_args()
    if args.inspect:
        return inspect_bench(args)
    use_wrk = args.client == "wrk"

    png = canvas_png(drawn_digit(8, np.random.default_rng(0)))  # as the Draw page sends it
    body = json.dumps({"image": "data:image/png;base64," + base64.b64encode(png).decode(), "model": args.model})
    print(f"drawn digit PNG as the Draw page sends it: {len(png)} bytes; model {args.model}; {args.seconds:g} s per "
          f"measurement; {args.repeat} runs; load from {args.client}; {os.cpu_count()} cores; "
          f"{len(args.also)} variants")

    from webapp.web.server import GUNICORN  # our gunicorn settings, for the bare floor

    home = tempfile.mkdtemp(prefix="neuronlab-predict-")
    ours = {"neuronlab": {}}
    for n, variant in enumerate(args.also, 1):
        ours[f"ours+{n}"] = dict(pair.strip().split("=", 1) for pair in variant.split(",") if pair.strip())
        print(f"ours+{n}: {ours[f'ours+{n}']}")
    ports = {name: free_port() for name in (*ours, "tutorial", "bare flask")}
    gunicorn_options = [f"--{k.replace('_', '-')}={v}" for k, v in GUNICORN.items() if v is not None]
    commands = {
        **{name: ([sys.executable, "-m", "webapp", "serve", "--host", "127.0.0.1", "--port", str(ports[name])],
                  {**os.environ, "NEURONLAB_HOME": home, "NEURONLAB_PREDICT_RATE": "1000000",
                   **variant})
           for name, variant in ours.items()},
        "tutorial": ([sys.executable, "-m", "bench.tutorial_app", str(ROOT / "models" / f"{args.model}.keras"),
                      str(ports["tutorial"])], dict(os.environ)),
        "bare flask": ([str(Path(sys.executable).parent / "gunicorn"), *gunicorn_options,
                        f"--bind=127.0.0.1:{ports['bare flask']}", "bench.bare_flask:app"], dict(os.environ)),
    }
    print("bare flask: " + " ".join(commands["bare flask"][0][1:]))
    procs, runs = {}, []
    try:
        for name, (command, env) in commands.items():
            procs[name] = start(name, command, env, ports[name], body)
        for run in range(1, args.repeat + 1):
            print(f"-- run {run} of {args.repeat}", flush=True)
            results = {name: {c: measure(name, ports[name], body, c, args.seconds, use_wrk) for c in (1, 8)}
                       for name in commands}
            for name in ours:  # a student drawing alone, as the page sends: one connection, 5 drawings a second
                paced = load(ports[name], body, 1, max(args.seconds, 10), interval=1 / PACED_RATE)
                print(f"{name:>10} 1 conn at {PACED_RATE}/s: p50 {paced['p50']:5.2f} ms   p99 {paced['p99']:5.1f} ms   "
                      f"({paced['n']} requests, {paced['errors']} errors)", flush=True)
                results[name]["paced"] = paced
            runs.append((results, figures(results)))
            print_figures(runs[-1][1], f"run {run}")
    finally:
        for proc in procs.values():
            stop(proc)
        shutil.rmtree(home, ignore_errors=True)

    print(f"-- median of {len(runs)} runs")
    for name in commands:
        for c in (1, 8, "paced"):
            if c not in runs[0][0][name]:
                continue
            median = {k: float(np.median([r[name][c][k] for r, _ in runs])) for k in ("rps", "p50", "p99")}
            label = f"1 conn at {PACED_RATE}/s" if c == "paced" else f"{c} conn"
            print(f"{name:>10} {label}: {median['rps']:8.1f} req/s   p50 {median['p50']:7.2f} ms   "
                  f"p99 {median['p99']:7.1f} ms")
    print_figures({k: float(np.median([f[k] for _, f in runs])) for k in runs[0][1]}, "median")


if __name__ == "__main__":
    main()
