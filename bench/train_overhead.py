"""How much do jobs, events and viewers cost? And do predictions stay fast while training?

1. Trains the same recipe on the same data for the same epochs three ways: as a
   plain `model.fit` script (a child process, at the same lowered CPU priority as
   a job), as that script with the TensorBoard callback a job uses
   (webapp.core.job_progress.make_tensorboard_callback), and through the app (a real
   server, a real job that writes TensorBoard files, viewers connected over
   Socket.IO). Prints the wall times and the ratios to the plain fit (target: <= 1.05).
   `--runs 3` repeats all three, interleaved, and prints every run.
2. Measures POST /api/predict p50/p95 on an idle server, then while a CNN job
   trains (target: p95 <= 50 ms); `--no-predict` skips it.

    .venv/bin/python -m bench.train_overhead --mnist /work/shared/data/mnist.npz
    .venv/bin/python -m bench.train_overhead --runs 3 --no-predict   # the TensorBoard overhead, 3 times
"""
import argparse
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
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ServerProcess  # noqa: E402  (the same real server the tests use)

PLAIN_SCRIPT = r"""
import json, os, sys, time
started = time.perf_counter()
os.nice(int(sys.argv[4]))
import keras
from webapp.core import networks
from webapp.core.datasets import load_mnist
net, epochs, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
callbacks = []
if sys.argv[6] != "-":  # the same TensorBoard callback a job adds
    from webapp.core.job_progress import make_tensorboard_callback
    callback, status = make_tensorboard_callback(sys.argv[6])
    assert callback is not None, status
    callbacks.append(callback)
recipe = networks.RECIPES[net]
mnist = load_mnist(path)
keras.utils.set_random_seed(0)
model = networks.build(net)
x_train, x_test = networks.shape_inputs(model, mnist.x_train), networks.shape_inputs(model, mnist.x_test)
fit_started, fit_cpu_started = time.perf_counter(), time.process_time()
model.fit(x_train, mnist.y_train, epochs=epochs, batch_size=recipe.batch_size,
          validation_data=(x_test, mnist.y_test), callbacks=callbacks, verbose=0)
fit_s, fit_cpu_s = time.perf_counter() - fit_started, time.process_time() - fit_cpu_started
accuracy = float((model.predict(x_test, batch_size=1000, verbose=0).argmax(1) == mnist.y_test).mean())
model.save(sys.argv[5])
print(json.dumps({"fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "total_s": time.perf_counter() - started,
                  "test_accuracy": accuracy}))
"""


def plain_fit(net, epochs, mnist, niceness, tensorboard=False):
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        output = subprocess.run(
            [sys.executable, "-c", PLAIN_SCRIPT, net, str(epochs), mnist, str(niceness), f"{folder}/m.keras",
             f"{folder}/tensorboard" if tensorboard else "-"],
            cwd=ROOT, capture_output=True, text=True, check=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)},
        ).stdout
        wall = time.perf_counter() - started
    return {**json.loads(output.strip().splitlines()[-1]), "wall_s": wall}


class Viewer:
    def __init__(self, url, job_id):
        import socketio

        self.events, self.done = [], threading.Event()
        self.first_batch = threading.Event()
        self.client = socketio.Client(reconnection=False)
        self.client.on("job", self._on_job)
        self.client.connect(url, transports=["websocket"], wait_timeout=20)
        self.client.call("subscribe", {"job": job_id}, timeout=30)

    def _on_job(self, event):
        self.events.append(event)
        if event["type"] == "batch":
            self.first_batch.set()
        if event["type"] == "done":
            self.done.set()


def app_fit(server, net, epochs, viewers):
    started = time.perf_counter()
    response = requests.post(server.url + "/api/jobs", json={"net": net, "epochs": epochs, "data": "mnist"},
                             timeout=30)
    response.raise_for_status()
    job_id = response.json()["id"]
    watching = [Viewer(server.url, job_id) for _ in range(viewers)]
    watching[0].done.wait(3600)
    wall = time.perf_counter() - started
    for viewer in watching:
        viewer.done.wait(60)
    streams = [[e["seq"] for e in v.events] for v in watching]
    done = watching[0].events[-1]
    if done.get("state") != "succeeded":
        raise SystemExit(f"the job did not succeed: {done}")
    tensorboard = next((e["tensorboard"] for e in watching[0].events if "tensorboard" in e), None)
    complete = all(s == list(range(1, len(streams[0]) + 1)) for s in streams)
    for viewer in watching:
        viewer.client.disconnect()
    result = done["result"]
    return {"wall_s": wall, "fit_s": result["seconds"], "test_accuracy": result["test_accuracy"],
            "model": result["model"], "events": len(streams[0]), "streams_complete": complete,
            "tensorboard": tensorboard}


def digit_png(mnist):
    from PIL import Image

    from webapp.core.datasets import load_mnist

    image = load_mnist(mnist).x_test[0]
    buffer = io.BytesIO()
    Image.fromarray((255 - image * 255).astype(np.uint8), mode="L").save(buffer, "PNG")
    return buffer.getvalue()


def predict_latencies(server, model, png, count, gap_s=0.05):
    session = requests.Session()
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.post(f"{server.url}/api/predict?model={model}", data=png,
                                headers={"Content-Type": "image/png"}, timeout=30)
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        time.sleep(gap_s)
    return latencies


def percentiles(latencies):
    return float(np.percentile(latencies, 50)), float(np.percentile(latencies, 95))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mnist", default="/work/shared/data/mnist.npz", help="full MNIST (Keras npz)")
    parser.add_argument("--net", default="mlp")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--viewers", type=int, default=10)
    parser.add_argument("--predicts", type=int, default=200, help="predictions per latency measurement")
    parser.add_argument("--runs", type=int, default=1, help="repeat the training comparison, interleaved")
    parser.add_argument("--no-predict", action="store_true", help="skip the prediction latency part")
    args = parser.parse_args(argv)

    from webapp.core.execution.local import NICENESS

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    with tempfile.TemporaryDirectory() as home:
        server = ServerProcess(home, env={"NEURONLAB_MNIST": args.mnist, "NEURONLAB_PREDICT_RATE": "0",
                                          "NEURONLAB_TRUST_LOCALHOST": "1"})
        server.start()
        try:
            for run in range(1, args.runs + 1):
                plain = plain_fit(args.net, args.epochs, args.mnist, NICENESS)
                print(f"run {run}: plain model.fit script: {plain['wall_s']:.1f} s wall ({plain['fit_s']:.1f} s in "
                      f"fit, {plain['fit_cpu_s']:.1f} s of CPU), test accuracy {plain['test_accuracy']:.4f}",
                      flush=True)
                board = plain_fit(args.net, args.epochs, args.mnist, NICENESS, tensorboard=True)
                print(f"run {run}: plain fit + the job's TensorBoard callback: {board['wall_s']:.1f} s wall "
                      f"({board['fit_s']:.1f} s in fit, {board['fit_cpu_s']:.1f} s of CPU)", flush=True)
                app = app_fit(server, args.net, args.epochs, args.viewers)
                print(f"run {run}: through the app ({args.viewers} viewers, TensorBoard {app['tensorboard']}): "
                      f"{app['wall_s']:.1f} s from POST to done ({app['fit_s']:.1f} s in fit), test accuracy "
                      f"{app['test_accuracy']:.4f}, {app['events']} events, every viewer's stream complete: "
                      f"{app['streams_complete']}")
                # CPU seconds of the fit: what the callback itself costs, less swayed by other load than wall time
                print(f"run {run}: TENSORBOARD ratio (plain fit + TensorBoard)/plain: "
                      f"{board['wall_s'] / plain['wall_s']:.3f} end to end, {board['fit_s'] / plain['fit_s']:.3f} "
                      f"in fit, {board['fit_cpu_s'] / plain['fit_cpu_s']:.3f} in fit's CPU time (target <= 1.05)")
                print(f"run {run}: OVERHEAD ratio app/plain: {app['wall_s'] / plain['wall_s']:.3f} end to end, "
                      f"{app['fit_s'] / plain['fit_s']:.3f} in fit (target <= 1.05)", flush=True)
            if args.no_predict:
                return

            png = digit_png(args.mnist)
            predict_latencies(server, app["model"], png, 10)  # load the model once
            idle = predict_latencies(server, app["model"], png, args.predicts)
            print("predict while idle: p50 {:.1f} ms, p95 {:.1f} ms".format(*percentiles(idle)), flush=True)

            response = requests.post(server.url + "/api/jobs", json={"net": "cnn", "epochs": 8, "data": "mnist"},
                                     timeout=30)
            cnn_id = response.json()["id"]
            viewer = Viewer(server.url, cnn_id)
            viewer.first_batch.wait(600)
            busy = predict_latencies(server, app["model"], png, args.predicts)
            running = viewer.events[-1]
            print("predict while a CNN trains: p50 {:.1f} ms, p95 {:.1f} ms (target p95 <= 50 ms); "
                  "the CNN was at epoch {}, {} samples/s".format(*percentiles(busy), running.get("epoch"),
                                                                running.get("samples_per_s")), flush=True)
            requests.delete(f"{server.url}/api/jobs/{cnn_id}", timeout=30)
            viewer.done.wait(120)
            viewer.client.disconnect()
        finally:
            server.stop()
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
