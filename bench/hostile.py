"""One hostile address against a class: does the teacher still get answers, do the students still draw?

    python -m bench.hostile [--seconds 60] [--websockets 1000] [--slow-headers 150] [--slow-bodies 150]
                            [--students 30] [--rate 5] [--retry 5] [--trickle 1]

Starts the Procfile's command (as bench/load.py does; default limits, no
localhost trust) and, for `seconds`, all on loopback with a source address each:
- 127.0.0.66 keeps trying to hold `websockets` Socket.IO connections (Engine.IO
  over a websocket, answering pings), `slow-headers` connections that send a
  request's headers one byte every `trickle` s, and `slow-bodies` connections
  that send full headers declaring a 1,000,000-byte body and then trickle it.
  Whatever the server refuses or closes is tried again about `retry` s later;
- the teacher (127.0.0.2, Bearer token) makes a REST call every 0.5 s, in turn
  GET /api/jobs, GET /api/models, POST /api/predict;
- `students` students (127.0.0.10, .11, ...) each draw `rate` predictions a second over Socket.IO.
It prints what became of the hostile connections, the teacher's and the
students' latencies and errors, and the CPU of this generator and of the server.
Targets: every teacher answer within 1 s; students 0 errors and p99 <= 300 ms.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402
from requests.adapters import HTTPAdapter  # noqa: E402

from bench.load import (TEACHER, TOKEN, digit_images, draw, ensure_digit_model, free_port,  # noqa: E402
                        percentile, procfile_command, start_server, stop_server)
from bench.swarm import (Client, LoopLag, Refused, TreeCPU, cpu_line, machine_line, own_cpu_seconds,  # noqa: E402
                         server_role, tcp_from, watch_cpu)

HOSTILE = "127.0.0.66"
TEACHER_ADDRESS = "127.0.0.2"
FIRST_STUDENT = 10  # 127.0.0.10, 127.0.0.11, ...
TEACHER_EVERY_S = 0.5
BODY_BYTES = 1_000_000


class SourceAddress(HTTPAdapter):
    """requests from one loopback source address."""

    def __init__(self, source):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


KNOWN = ("attempts", "admitted", "refused at the door", "refused by socket.io", "closed by server",
         "open at the end", "client errors")


class Tally:
    """What became of one kind of hostile connection."""

    def __init__(self):
        self.counts = Counter()
        self.answers = Counter()  # the server's status lines when it closed an admitted connection
        self.held = []  # seconds each admitted connection stayed open until the server closed it

    def line(self, name):
        c = self.counts
        held = f"; held until closed: max {max(self.held):.1f} s" if self.held else ""
        answers = ", ".join(f"{status} x{n}" for status, n in sorted(self.answers.items()))
        return (f"  {name}: {c['attempts']} attempts, {c['admitted']} admitted, {c['refused at the door']} refused "
                f"at the door (429), {c['refused by socket.io']} refused by Socket.IO, {c['closed by server']} "
                f"closed by the server{' (' + answers + ')' if answers else ''}, {c['open at the end']} open at "
                f"the end, {c['client errors']} client errors{held}"
                + "".join(f", {key}: {n}" for key, n in c.items() if key not in KNOWN))


def later(retry):
    """`retry` s, give or take half: the retries spread out instead of coming in waves."""
    return retry * random.uniform(0.5, 1.5)


def status_of(data):
    """'429' from b'HTTP/1.1 429 Too Many...'; the first bytes otherwise."""
    first = data.split(b"\r\n", 1)[0].split()
    return first[1].decode() if len(first) > 1 and first[0].startswith(b"HTTP/") else repr(data[:20])


def hostile_websocket(url, tally, stop_at, retry):
    """Hold a Socket.IO connection from the hostile address; when refused or closed, try again later."""
    while time.perf_counter() < stop_at:
        tally.counts["attempts"] += 1
        try:
            client = Client(url, source=HOSTILE, timeout=10)
        except Refused as exc:
            tally.counts["refused at the door" if exc.status == 429 else "refused by socket.io"
                         if exc.status is None else f"refused {exc.status}"] += 1
        except Exception:
            tally.counts["client errors"] += 1
        else:
            tally.counts["admitted"] += 1
            opened = time.perf_counter()
            while client.connected and time.perf_counter() < stop_at:
                gevent.sleep(0.5)
            if client.connected:
                tally.counts["open at the end"] += 1
                client.close()
                return
            tally.counts["closed by server"] += 1
            tally.held.append(time.perf_counter() - opened)
        gevent.sleep(min(later(retry), max(0.0, stop_at - time.perf_counter())))


def slow_request(port, head, trickle, tally, stop_at, retry):
    """Send `head` at once, then one more byte every `trickle` s (after any answer too) until the server closes."""
    while time.perf_counter() < stop_at:
        tally.counts["attempts"] += 1
        try:
            sock = tcp_from(HOSTILE, "127.0.0.1", port, timeout=10)
        except OSError:
            tally.counts["client errors"] += 1
            gevent.sleep(later(retry))
            continue
        opened, answer, closed = time.perf_counter(), b"", False
        try:
            sock.sendall(head)
            sock.settimeout(trickle)
            while time.perf_counter() < stop_at:
                try:
                    data = sock.recv(4096)
                except socket.timeout:
                    sock.sendall(b"a")
                    continue
                if not data:
                    closed = True
                    break
                answer += data
                if answer.startswith(b"HTTP/1.1 429"):
                    closed = True
                    break
        except OSError:  # closed while we wrote: its answer may be waiting
            closed = True
            try:
                answer += sock.recv(4096)
            except OSError:
                pass
        finally:
            sock.close()
        if answer.startswith(b"HTTP/1.1 429"):
            tally.counts["refused at the door"] += 1
        else:
            tally.counts["admitted"] += 1
            if closed:
                tally.counts["closed by server"] += 1
                tally.answers[status_of(answer) if answer else "no answer"] += 1
                tally.held.append(time.perf_counter() - opened)
            else:
                tally.counts["open at the end"] += 1
                if answer:
                    tally.counts[f"answered {status_of(answer)} but still open at the end"] += 1
                return
        gevent.sleep(min(later(retry), max(0.0, stop_at - time.perf_counter())))


def teacher(url, body, stop_at, latencies, errors):
    """A REST call every 0.5 s, in turn: jobs, models, a prediction."""
    session = requests.Session()
    session.mount("http://", SourceAddress(TEACHER_ADDRESS))
    session.headers.update(TEACHER)
    calls = [("GET", "/api/jobs", None), ("GET", "/api/models", None), ("POST", "/api/predict", body)]
    n, next_at = 0, time.perf_counter()
    while next_at < stop_at:
        gevent.sleep(max(0.0, next_at - time.perf_counter()))
        method, path, payload = calls[n % len(calls)]
        started = time.perf_counter()
        try:
            response = session.request(method, url + path, json=payload, timeout=10)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors.append(f"{method} {path}: {response.status_code} {response.text[:120]}")
        except requests.RequestException as exc:
            latencies.append(time.perf_counter() - started)
            errors.append(f"{method} {path}: {type(exc).__name__} {exc}"[:200])
        n += 1
        next_at += TEACHER_EVERY_S


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--websockets", type=int, default=1000)
    parser.add_argument("--slow-headers", type=int, default=150)
    parser.add_argument("--slow-bodies", type=int, default=150)
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--rate", type=float, default=5, help="predictions a second per student")
    parser.add_argument("--retry", type=float, default=5, help="seconds before the hostile retries a connection")
    parser.add_argument("--trickle", type=float, default=1, help="seconds between the slow connections' bytes")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="neuronlab-hostile-"))
    port = free_port()
    proc, url = start_server(port, home, {"NEURONLAB_TOKEN": TOKEN, "NEURONLAB_MNIST": "sample",
                                          "NEURONLAB_TRUST_LOCALHOST": "0"})
    print(f"server: {' '.join(procfile_command(port))}  (home {home}; default limits)", flush=True)
    students, hostile_greenlets = [], []
    tallies = {"websockets": Tally(), "slow headers": Tally(), "slow bodies": Tally()}
    student_latencies, student_errors, teacher_latencies, teacher_errors = [], [], [], []
    try:
        ensure_digit_model(url, home)
        images = digit_images()
        prediction = {"image": images[0]}
        addresses = [f"127.0.0.{FIRST_STUDENT + i}" for i in range(args.students)]

        def connect(source):
            try:
                students.append(Client(url, source=source))
            except Exception as exc:
                student_errors.append(f"student {source} connect: {type(exc).__name__} {exc}"[:200])

        gevent.pool.Pool(10).map(connect, addresses)
        for _ in range(3):  # a first prediction loads the model in each inference worker: not part of the run
            gevent.joinall([gevent.spawn(c.call, "predict", prediction, timeout=120) for c in students])

        server_cpu = TreeCPU(proc.pid, server_role)
        server_cpu.start()
        sampler = watch_cpu(server_cpu)
        lag = LoopLag()
        own_before, machine_before, started = own_cpu_seconds(), psutil.cpu_times(), time.perf_counter()
        stop_at = started + args.seconds
        slow_headers = (b"GET /api/models HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Padding: ")
        slow_body = (b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n{\"image\": \"" % BODY_BYTES)
        spawn_at = lambda i, f, *a: gevent.spawn_later(i * 0.002, f, *a)  # noqa: E731 - not all at once
        hostile_greenlets += [spawn_at(i, hostile_websocket, url, tallies["websockets"], stop_at, args.retry)
                              for i in range(args.websockets)]
        hostile_greenlets += [spawn_at(i, slow_request, port, slow_headers, args.trickle, tallies["slow headers"],
                                       stop_at, args.retry) for i in range(args.slow_headers)]
        hostile_greenlets += [spawn_at(i, slow_request, port, slow_body, args.trickle, tallies["slow bodies"],
                                       stop_at, args.retry) for i in range(args.slow_bodies)]
        print(f"running for {args.seconds:.0f} s: {HOSTILE} tries {args.websockets} websockets, "
              f"{args.slow_headers} slow headers, {args.slow_bodies} slow bodies (retrying after about {args.retry:g} s); "
              f"the teacher ({TEACHER_ADDRESS}) calls every {TEACHER_EVERY_S} s; {len(students)} students draw "
              f"{args.rate:g}/s", flush=True)
        workers = [gevent.spawn(teacher, url, prediction, stop_at, teacher_latencies, teacher_errors)]
        workers += [gevent.spawn(draw, c, images, args.rate, i / len(students) / args.rate, stop_at,
                                 student_latencies, student_errors) for i, c in enumerate(students)]
        gevent.joinall(workers, timeout=args.seconds + 30)
        gevent.joinall(hostile_greenlets, timeout=15)
        wall = time.perf_counter() - started
        own_cpu = own_cpu_seconds() - own_before
        machine = machine_line(machine_before, psutil.cpu_times())
        lags = lag.stop()
        server_cpu.sample()
        sampler.kill()
        student_errors += [f"student {i} was disconnected" for i, c in enumerate(students) if not c.connected]
    finally:
        gevent.killall(hostile_greenlets, timeout=5)
        for client in students:
            client.close()
        stop_server(proc)
        shutil.rmtree(home, ignore_errors=True)

    print(f"hostile connections from {HOSTILE}:")
    for name, tally in tallies.items():
        print(tally.line(name))
    late = sum(1 for x in teacher_latencies if x > 1.0)
    print(f"teacher: {len(teacher_latencies)} calls, {len(teacher_errors)} errors, {late} over 1 s; "
          f"p50 {percentile(teacher_latencies, 50) * 1000:.1f} ms, p99 {percentile(teacher_latencies, 99) * 1000:.1f} ms,"
          f" max {max(teacher_latencies, default=float('nan')) * 1000:.1f} ms")
    for e in teacher_errors[:5]:
        print(f"  {e}")
    print(f"students: {len(student_latencies)} predictions ({len(student_latencies) / args.seconds:.0f}/s of "
          f"{len(students) * args.rate:g}/s asked), {len(student_errors)} errors; "
          f"p50 {percentile(student_latencies, 50) * 1000:.1f} ms, p99 {percentile(student_latencies, 99) * 1000:.1f} ms")
    for e in student_errors[:5]:
        print(f"  {e}")
    print(cpu_line("load generator (this process)", own_cpu, wall))
    print(f"  its event loop's lag: p50 {lags[0] * 1000:.1f} ms, p99 {lags[1] * 1000:.1f} ms, "
          f"max {lags[2] * 1000:.0f} ms (latencies above include it)")
    for role, seconds in sorted(server_cpu.by_role().items()):
        print(cpu_line(f"server: {role}", seconds, wall))
    print(machine)
    ok = (teacher_latencies and not teacher_errors and not late and student_latencies and not student_errors
          and percentile(student_latencies, 99) <= 0.300)
    print("targets (teacher: every answer within 1 s; students: 0 errors, p99 <= 300 ms):",
          "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
