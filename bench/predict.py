"""Throughput and latency of POST /api/predict against the tutorial-style baseline.

    python -m bench.predict [--seconds 10] [--model cnn]

Starts the real server (`python -m webapp serve`: gunicorn, one gthread worker)
and, in the same run, bench/tutorial_app.py with the same model file; loads
each with a drawn-digit PNG from 1 and 8 concurrent connections, and prints
requests/s, p50 and p99 latency and the ratios.

The load comes from Python threads with keep-alive connections, or from wrk
(Debian's `wrk`) with --client wrk. Both gave the same server throughput here,
so the client is not what limits it; the Python client's tail is steadier.
"""
import argparse
import base64
import http.client
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.strokes import drawn_digit

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


def one_connection(port, body, stop_at, latencies, errors):
    conn = None
    while time.perf_counter() < stop_at:
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        started = time.perf_counter()
        try:
            conn.request("POST", "/api/predict", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200 or b'"digit"' not in payload:
                errors.append(response.status)
            if response.getheader("Connection", "").lower() == "close" or response.version == 10:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            errors.append(repr(exc))
            conn.close()
            conn = None
            continue
        latencies.append(time.perf_counter() - started)


def load(port, body, connections, seconds):
    latencies, errors = [], []
    stop_at = time.perf_counter() + seconds
    threads = [threading.Thread(target=one_connection, args=(port, body, stop_at, latencies, errors))
               for _ in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"rps": len(latencies) / elapsed, "p50": float(np.percentile(ms, 50)),
            "p99": float(np.percentile(ms, 99)), "n": len(latencies), "errors": len(errors)}


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


def measure(name, command, env, port, body, seconds, use_wrk=False):
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_until_up(port, proc)
        load(port, body, 1, 2)  # warm up: load the model, trace the graph
        run = load_with_wrk if use_wrk else load
        results = {c: run(port, body, c, seconds) for c in (1, 8)}
    finally:
        proc.terminate()
        proc.wait(30)
    for c, r in results.items():
        print(f"{name:>10} {c} conn: {r['rps']:8.1f} req/s   p50 {r['p50']:7.1f} ms   p99 {r['p99']:7.1f} ms"
              f"   ({r['n']} requests, {r['errors']} errors)", flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--model", default="cnn", help="a model in models/ (default cnn)")
    parser.add_argument("--client", choices=["wrk", "python"], default="python")
    args = parser.parse_args()
    use_wrk = args.client == "wrk"

    image = drawn_digit(8, np.random.default_rng(0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    body = json.dumps({"image": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(),
                       "model": args.model})
    print(f"drawn digit PNG: {len(buffer.getvalue())} bytes; model {args.model}; {args.seconds:.0f} s per run; "
          f"load from {args.client}")

    with tempfile.TemporaryDirectory() as home:
        port = free_port()
        env = {**os.environ, "NEURONLAB_HOME": home, "NEURONLAB_PREDICT_RATE": "1000000"}
        ours = measure("neuronlab", [sys.executable, "-m", "webapp", "serve", "--host", "127.0.0.1",
                                     "--port", str(port)], env, port, body, args.seconds, use_wrk)
    port = free_port()
    model_file = ROOT / "models" / f"{args.model}.keras"
    base = measure("tutorial", [sys.executable, "-m", "bench.tutorial_app", str(model_file), str(port)],
                   dict(os.environ), port, body, args.seconds, use_wrk)

    print(f"throughput ratio at 8 connections: {ours[8]['rps'] / base[8]['rps']:.1f}x (target >= 20x)")
    print(f"p50 at 1 connection: {ours[1]['p50']:.2f} ms (target <= 5 ms); "
          f"baseline p50 at 8 connections {base[8]['p50']:.0f} ms")


if __name__ == "__main__":
    main()
