"""Throughput and latency of POST /api/predict against the tutorial-style baseline.

    python -m bench.predict [--seconds 10] [--model cnn]

Starts the real server (`python -m webapp serve`: gunicorn, one gthread worker)
and, in the same run, bench/tutorial_app.py with the same model file; loads
each with a drawn-digit PNG from 1 and 8 concurrent connections, and prints
requests/s, p50 and p99 latency and the ratios.
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


def measure(name, command, env, port, body, seconds):
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_until_up(port, proc)
        load(port, body, 1, 2)  # warm up: load the model, trace the graph
        results = {c: load(port, body, c, seconds) for c in (1, 8)}
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
    args = parser.parse_args()

    image = drawn_digit(8, np.random.default_rng(0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    body = json.dumps({"image": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(),
                       "model": args.model})
    print(f"drawn digit PNG: {len(buffer.getvalue())} bytes; model {args.model}; {args.seconds:.0f} s per run")

    with tempfile.TemporaryDirectory() as home:
        port = free_port()
        env = {**os.environ, "NEURONLAB_HOME": home, "NEURONLAB_PREDICT_RATE": "1000000"}
        ours = measure("neuronlab", [sys.executable, "-m", "webapp", "serve", "--host", "127.0.0.1",
                                     "--port", str(port)], env, port, body, args.seconds)
    port = free_port()
    model_file = ROOT / "models" / f"{args.model}.keras"
    base = measure("tutorial", [sys.executable, "-m", "bench.tutorial_app", str(model_file), str(port)],
                   dict(os.environ), port, body, args.seconds)

    print(f"throughput ratio at 8 connections: {ours[8]['rps'] / base[8]['rps']:.1f}x (target >= 20x)")
    print(f"p50 at 1 connection: {ours[1]['p50']:.2f} ms (target <= 5 ms); "
          f"baseline p50 at 8 connections {base[8]['p50']:.0f} ms")


if __name__ == "__main__":
    main()
