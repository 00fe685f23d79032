"""Light Socket.IO clients for the benches: hundreds on one gevent loop, each from its own loopback address.

python-socketio's Client runs three threads and two packet layers per
connection; a classroom of them costs the machine more CPU than the server
does. This client speaks Engine.IO 4 / Socket.IO 5 over one websocket
(websocket-client) with one reader greenlet: open, connect ("40"), events
("42"), acknowledgements ("43"), pings ("2" -> "3"). Nothing else (no polling,
no binary attachments, no namespaces): the server sends none of those here.

The bench that uses it calls gevent.monkey.patch_all() before anything else.
"""
import itertools
import json
import os
import socket
import time
from urllib.parse import urlsplit

import gevent
import psutil
import websocket
from gevent import monkey
from gevent.event import AsyncResult

try:
    from orjson import loads
except ImportError:  # pragma: no cover - orjson is in requirements.txt
    from json import loads


class Refused(Exception):
    """The server refused the connection: `status` is the HTTP status (None: Socket.IO's refusal), `reason` why."""

    def __init__(self, status, reason):
        super().__init__(f"{status or 'socket.io'}: {reason}")
        self.status, self.reason = status, reason


class Closed(Exception):
    """The connection ended while a call waited for its acknowledgement."""


def address(block, index):
    """The `index`th loopback source address of a block of clients: 127.<block>.<hi>.<lo>, never .0 or .255."""
    return f"127.{block}.{index // 250}.{index % 250 + 1}"


def tcp_from(source, host, port, timeout=30):
    """A TCP connection to host:port from loopback address `source` (None: the system's choice)."""
    return socket.create_connection((host, port), timeout=timeout,
                                    source_address=(source, 0) if source else None)


class Client:
    """One Socket.IO connection over a websocket. `on(event, handler)`; `call(event, data)` -> the acknowledgement."""

    def __init__(self, url, source=None, auth=None, timeout=30):
        if not monkey.is_module_patched("socket"):
            raise RuntimeError("bench.swarm needs gevent.monkey.patch_all() first")
        parts = urlsplit(url)
        self.handlers, self.acks, self.ids = {}, {}, itertools.count(1)
        self.connected, self.closed_by_server = False, False
        sock = tcp_from(source, parts.hostname, parts.port, timeout)
        self.ws = websocket.WebSocket(enable_multithread=True, skip_utf8_validation=True)
        try:
            self.ws.connect(f"ws://{parts.netloc}/socket.io/?EIO=4&transport=websocket", socket=sock,
                            timeout=timeout)
            opening = self.ws.recv()
            if not opening.startswith("0"):
                raise ConnectionError(f"no Engine.IO open packet: {opening[:80]!r}")
            self.ws.send("40" + (json.dumps(auth) if auth else ""))
            reply = self.ws.recv()
            while reply == "2":  # a ping before the connect answer
                self.ws.send("3")
                reply = self.ws.recv()
        except websocket.WebSocketBadStatusException as exc:
            sock.close()
            raise Refused(exc.status_code, (exc.resp_body or b"").decode("utf-8", "replace")[:300]) from None
        except BaseException:
            sock.close()
            raise
        if reply.startswith("44"):
            self.ws.close(timeout=0)
            message = loads(reply[2:]) if len(reply) > 2 else {}
            raise Refused(None, message.get("message") if isinstance(message, dict) else message)
        if not reply.startswith("40"):
            self.ws.close(timeout=0)
            raise ConnectionError(f"no Socket.IO connect answer: {reply[:80]!r}")
        self.ws.settimeout(None)
        self.connected = True
        self.reader = gevent.spawn(self._read)

    def on(self, event, handler):
        self.handlers[event] = handler

    def call(self, event, data=None, timeout=30):
        """Send `event` with `data` and wait for its acknowledgement's first argument."""
        if not self.connected:
            raise Closed("not connected")
        ack_id = next(self.ids)
        self.acks[ack_id] = waiting = AsyncResult()
        try:
            self.ws.send(f"42{ack_id}" + json.dumps([event, data], separators=(",", ":")))
            answer = waiting.get(timeout=timeout)
        finally:
            self.acks.pop(ack_id, None)
        return answer[0] if answer else None

    def _read(self, at_start=False):
        try:
            while True:
                message = self.ws.recv()
                if not message or message[0] == "1":  # a close frame, or Engine.IO's close
                    self.closed_by_server = True
                    break
                if message == "2":
                    self.ws.send("3")
                elif message.startswith("42"):
                    body = message[2:].lstrip("0123456789")  # an id would ask us for an ack: none here
                    name, *args = loads(body)
                    handler = self.handlers.get(name)
                    if handler:
                        handler(*args)
                elif message.startswith("43"):
                    body = message[2:]
                    digits = len(body) - len(body.lstrip("0123456789"))
                    waiting = self.acks.get(int(body[:digits]))
                    if waiting is not None:
                        waiting.set(loads(body[digits:]))
                elif message.startswith("41"):  # the server disconnected us
                    self.closed_by_server = True
                    break
        except (websocket.WebSocketException, OSError):
            self.closed_by_server = self.connected
        finally:
            self.connected = False
            for waiting in list(self.acks.values()):
                waiting.set_exception(Closed("the connection closed"))

    def close(self):
        if self.connected:
            self.connected = False
            try:
                self.ws.send("41")
            except (websocket.WebSocketException, OSError):
                pass
        try:
            self.ws.close(timeout=0)
        except (websocket.WebSocketException, OSError):
            pass


# -- CPU accounting ----------------------------------------------------------------------------------

class TreeCPU:
    """CPU seconds (user + sys) spent by a process tree since `start()`, by role.

    `role(process, root, at_start)` names each process's part. The tree is sampled every
    `every` seconds (call `sample` from a greenlet), so a process that ends
    keeps its last reading: up to `every` seconds of its CPU are missed."""

    def __init__(self, root_pid, role):
        self.root = psutil.Process(root_pid)
        self.role = role
        self.first, self.last, self.roles = {}, {}, {}

    def _read(self, at_start=False):
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return {}
        found = {}
        for process in processes:
            try:
                times = process.cpu_times()
                if process.pid not in self.roles:
                    self.roles[process.pid] = self.role(process, self.root, at_start)
                found[process.pid] = times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return found

    def start(self):
        """Name the processes there now (`at_start`) and count from here."""
        self.first = self._read(at_start=True)
        self.last = dict(self.first)

    def restart(self):
        """Count from here; processes seen since `start` keep the names they got then."""
        self.first = self._read()
        self.last = dict(self.first)

    def sample(self):
        self.last.update(self._read())

    def by_role(self):
        """{role: CPU seconds since start}."""
        spent = {}
        for pid, seconds in self.last.items():
            role = self.roles.get(pid, "other")
            spent[role] = spent.get(role, 0.0) + seconds - self.first.get(pid, 0.0)
        return spent


def own_cpu_seconds():
    """This process's user + sys CPU seconds (its children, such as the server, are not counted)."""
    times = psutil.Process().cpu_times()
    return times.user + times.system


def machine_line(before, after):
    """How the machine's CPU time went between two psutil.cpu_times() readings: busy, idle and stolen by the
    hypervisor (the VM's neighbours). A run with much stolen time was slow for reasons outside the app."""
    spent = {field: getattr(after, field) - getattr(before, field) for field in after._fields
             if field not in ("guest", "guest_nice")}  # Linux counts guest time in user time already
    total = sum(spent.values()) or 1.0
    idle = spent.get("idle", 0.0) + spent.get("iowait", 0.0)
    stolen = spent.get("steal", 0.0)
    return (f"machine during the run: busy {100 * (total - idle - stolen) / total:.0f}%, idle {100 * idle / total:.0f}%, "
            f"stolen by the hypervisor {100 * stolen / total:.1f}% of its {os.cpu_count()} cores' time")


def cpu_line(name, seconds, wall):
    cores = os.cpu_count() or 1
    return (f"{name}: {seconds:.1f} CPU s in {wall:.0f} s = {100 * seconds / wall:.0f}% of one core, "
            f"{100 * seconds / wall / cores:.0f}% of the machine's {cores} cores")


def server_role(process, root, at_start):
    """The Procfile's server: gunicorn's master, its worker (the web process), and the web process's children:
    the inference workers (there from the start: measure after a first prediction), later ones train."""
    if process.pid == root.pid:
        return "gunicorn master"
    try:
        parent = process.parent()
        cmdline = " ".join(process.cmdline())
    except psutil.Error:
        return "other"
    if parent is not None and parent.pid == root.pid:
        return "web process"
    if "resource_tracker" in cmdline:
        return "other"
    return "inference workers" if at_start else "training (jobs)"


def watch_cpu(tree, every=1.0):
    """A greenlet that samples `tree` until killed."""
    def loop():
        while True:
            gevent.sleep(every)
            tree.sample()
    return gevent.spawn(loop)


class LoopLag:
    """How late this process's event loop wakes a sleeping greenlet: when it is busy, every latency measured
    here is late by about as much, so a high lag means the load generator, not the server, is the limit."""

    def __init__(self, every=0.05):
        self.every, self.lags = every, []
        self.greenlet = gevent.spawn(self._loop)

    def _loop(self):
        while True:
            before = time.perf_counter()
            gevent.sleep(self.every)
            self.lags.append(time.perf_counter() - before - self.every)

    def stop(self):
        self.greenlet.kill()
        lags = sorted(self.lags) or [0.0]
        return lags[len(lags) // 2], lags[min(len(lags) - 1, int(len(lags) * 0.99))], lags[-1]
