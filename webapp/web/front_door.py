"""The web process's server: gunicorn's gevent worker, with checks at the door.

One event loop holds every connection: an idle websocket costs a greenlet and a
socket, not a thread, so a class's worth of open pages (or one student's
thousand) cannot run the server out of workers. What the loop cannot give away
is time and connections, so before the app sees a request:
- each address may hold at most `connections_per_address` open connections
  (three per Socket.IO connection the app allows it: a websocket plus a
  browser's few HTTP connections); beyond that the connection gets a short 429
  and is closed;
- a request's line and headers must arrive within `request_timeout` seconds,
  and its body within the same time after them (slowloris: partial headers, or
  a declared body trickled in). An idle keep-alive connection is closed after
  that long too.
A websocket, once upgraded, has no deadline: engine.io's pings look after it.
"""
import time

import gevent
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler
from werkzeug.exceptions import RequestTimeout

from webapp.config import Settings

SOCKETS_TO_CONNECTIONS = 3

TOO_MANY = (b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s")


_SLOW_HEADERS_BODY = b'{"error": "the request headers did not arrive in time"}'
SLOW_HEADERS = (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(_SLOW_HEADERS_BODY), _SLOW_HEADERS_BODY))


class SlowRequest(Exception):
    """The request line or headers did not arrive in time."""


class Door:
    """Open connections per address, and the limits (one Door per worker process: one event loop, no locks)."""

    def __init__(self, settings):
        self.request_timeout = settings.request_timeout
        self.connections_per_address = SOCKETS_TO_CONNECTIONS * settings.max_sockets_per_address
        self.open = {}

    def enter(self, address):
        count = self.open.get(address, 0)
        if count >= self.connections_per_address:
            return False
        self.open[address] = count + 1
        return True

    def leave(self, address):
        count = self.open.pop(address, 1) - 1
        if count > 0:
            self.open[address] = count

    def too_many_response(self):
        body = (b'{"error": "too many connections from your address (the limit is %d): close some tabs, or ask '
                b'the teacher to raise NEURONLAB_MAX_SOCKETS_PER_ADDRESS"}' % self.connections_per_address)
        return TOO_MANY % (len(body), body)


class DeadlineInput:
    """A request body that must arrive by `deadline` (time.monotonic()); reads past it raise 408."""

    def __init__(self, body, deadline):
        self._body, self._deadline = body, deadline

    def _within(self, read, *args):
        remaining = self._deadline - time.monotonic()
        try:
            with gevent.Timeout(max(remaining, 0.001), SlowRequest):
                return read(*args)
        except SlowRequest:
            raise RequestTimeout("the request body did not arrive in time") from None

    def read(self, *args):
        return self._within(self._body.read, *args)

    def readline(self, *args):
        return self._within(self._body.readline, *args)

    def readlines(self, *args):
        return self._within(self._body.readlines, *args)

    def __iter__(self):
        return iter(self.readline, b"")


class GuardedHandler(PyWSGIHandler):
    door = None  # set by Worker.init_process

    def handle(self):
        address = self.client_address[0] if isinstance(self.client_address, tuple) else str(self.client_address)
        if not self.door.enter(address):
            try:
                self.socket.sendall(self.door.too_many_response())
            except OSError:
                pass
            self.socket.close()
            return
        try:
            super().handle()
        finally:
            self.door.leave(address)

    def read_requestline(self):
        """The first line of a request (or the wait for one on a kept-alive connection), within the timeout."""
        self._header_timer = gevent.Timeout.start_new(self.door.request_timeout, SlowRequest)
        try:
            return super().read_requestline()
        except SlowRequest:
            self._header_timer = None
            return ""  # closes the connection

    def read_request(self, raw_requestline):
        try:
            return super().read_request(raw_requestline)
        except SlowRequest:
            self._slow_headers = True
            raise ValueError("the request headers did not arrive in time") from None
        finally:
            timer, self._header_timer = getattr(self, "_header_timer", None), None
            if timer is not None:
                timer.close()

    def _handle_client_error(self, ex):
        if getattr(self, "_slow_headers", False):  # a 408 that says why, then closed
            self._slow_headers = False
            self.close_connection = True
            return ("408", SLOW_HEADERS)
        return super()._handle_client_error(ex)

    def get_environ(self):
        environ = super().get_environ()
        self._body_deadline = None
        # It is gevent's server, run by gunicorn: simple-websocket takes the socket to upgrade the gevent way.
        environ["SERVER_SOFTWARE"] = f"gevent/{gevent.__version__} {environ.get('SERVER_SOFTWARE', '')}".strip()
        if environ.get("wsgi.input_terminated"):  # a body to read; False for a websocket upgrade
            deadline = time.monotonic() + self.door.request_timeout
            environ["wsgi.input"] = DeadlineInput(environ["wsgi.input"], deadline)
            self._body_deadline = deadline
        return environ

    def run_application(self):
        try:
            super().run_application()
        finally:
            self._skip_unread_body()
            if self.environ.get("HTTP_UPGRADE", "").lower() == "websocket":
                # The websocket has ended: close the connection. Kept alive, it held one of the address's
                # connections until the header deadline, and a client waiting for the close waited with it.
                self.close_connection = True

    def _skip_unread_body(self):
        """gevent reads what the app left unread (after a 408 or a 413, say) to keep the connection, with no
        deadline: a client could trickle it forever. Read it by the body's deadline, or close the connection.
        This uses gevent's own Input._discard (private): tests/test_hostile_door.py fails if that changes."""
        body = self.wsgi_input
        if body is None or self._body_deadline is None:
            return
        try:
            with gevent.Timeout(max(self._body_deadline - time.monotonic(), 0.001), SlowRequest):
                body._discard()
        except SlowRequest:
            body._chunked_input_error = True  # gevent's own _discard then leaves it alone
            self.close_connection = True


class Worker(GeventPyWSGIWorker):
    """`gunicorn -k webapp.web.front_door.Worker`: the gevent worker with the door above."""

    wsgi_handler = GuardedHandler

    def init_process(self):
        GuardedHandler.door = Door(Settings.from_env())
        super().init_process()
