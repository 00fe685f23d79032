"""The front door (webapp/web/front_door.py) against hostile connections: open connections per address,
slow headers and slow bodies; an upgraded websocket has no deadline.

One real server with small limits (5 Socket.IO connections per address, so 15
TCP connections; 2 s for headers and again for a body). Every simulated client
has its own loopback source address; counts and waits are bounded, and the
bounds are generous multiples of the timeout: they check the feature, not a speed.
"""
import json
import socket
import time

import pytest
import socketio
import websocket

from conftest import ServerProcess
from loopback import session_from

SOCKETS_PER_ADDRESS = 5
CONNECTIONS_PER_ADDRESS = 3 * SOCKETS_PER_ADDRESS  # the door's cap (front_door.SOCKETS_TO_CONNECTIONS)
REQUEST_TIMEOUT = 2.0
BOUND = 4 * REQUEST_TIMEOUT  # how long a test waits for the server to act


@pytest.fixture(scope="module")
def door_server(tmp_path_factory):
    """One server for the module (each start loads TensorFlow)."""
    process = ServerProcess(tmp_path_factory.mktemp("door"), env={
        "NEURONLAB_MAX_SOCKETS_PER_ADDRESS": str(SOCKETS_PER_ADDRESS),
        "NEURONLAB_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
    }).start()
    yield process
    process.stop()


def tcp_from(address, server):
    return socket.create_connection(("127.0.0.1", server.port), timeout=BOUND, source_address=(address, 0))


def read_until_closed(sock, bound=BOUND):
    """Everything the server sends until it closes the connection; None if it is still open after `bound` s."""
    received, deadline = b"", time.monotonic() + bound
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return None
        except ConnectionResetError:
            return received
        if not data:
            return received
        received += data
    return None


def trickle_until_closed(sock, head, bound=BOUND, every=0.2):
    """Send `head`, then one more byte every `every` s until the server closes the connection: all it sent
    then; None if it still held the connection after `bound` s."""
    sock.sendall(head)
    received, deadline = b"", time.monotonic() + bound
    while time.monotonic() < deadline:
        sock.settimeout(every)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            try:
                sock.sendall(b"a")
            except OSError:  # closed (reset) while we wrote: what it said, if anything, is waiting
                return received + (read_until_closed(sock, 1) or b"")
            continue
        except ConnectionResetError:
            return received
        if not data:
            return received
        received += data
    return None


def http_answer(data):
    """(status, JSON body or None when the body is empty) of a raw HTTP answer."""
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b"\r\n", 1)[0].split()[1])
    return status, json.loads(body) if body else None


def test_connections_past_the_cap_get_429_naming_the_limit_while_other_addresses_are_served(door_server):
    hostile = [tcp_from("127.0.0.70", door_server) for _ in range(40)]
    try:
        bystander = session_from("127.0.0.71")
        assert bystander.get(door_server.url + "/healthz", timeout=BOUND).status_code == 200
        models = bystander.get(door_server.url + "/api/models", timeout=BOUND)
        assert models.status_code == 200 and "models" in models.json()

        answers = [read_until_closed(sock) for sock in hostile]  # idle admitted ones: closed after the timeout
    finally:
        for sock in hostile:
            sock.close()
    assert None not in answers, "every connection is answered or closed"
    refused = [http_answer(a) for a in answers if a]
    assert len(refused) == 40 - CONNECTIONS_PER_ADDRESS
    for status, body in refused:
        assert status == 429
        assert f"the limit is {CONNECTIONS_PER_ADDRESS}" in body["error"]
        assert "NEURONLAB_MAX_SOCKETS_PER_ADDRESS" in body["error"]
    assert answers.count(b"") == CONNECTIONS_PER_ADDRESS  # admitted, sent nothing, closed without an answer

    # Once they are closed, the address gets in again: the door counted them out.
    assert session_from("127.0.0.70").get(door_server.url + "/healthz", timeout=BOUND).status_code == 200


@pytest.mark.parametrize("head", [
    b"GET /heal",  # a partial request line
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ",  # partial headers
], ids=["request-line", "headers"])
def test_slow_headers_are_cut_off_after_the_timeout(door_server, head):
    with tcp_from("127.0.0.72", door_server) as sock:
        answer = trickle_until_closed(sock, head)
    assert answer is not None, f"the server still held the connection after {BOUND:.0f} s"
    if answer:  # it may say why before closing; never a served request
        assert http_answer(answer)[0] in (400, 408)


def test_slow_headers_are_answered_408_with_a_reason(door_server):
    """A 4xx says why in JSON, as every other refusal does (not gevent's bare 400 with an empty body)."""
    with tcp_from("127.0.0.75", door_server) as sock:
        answer = trickle_until_closed(sock, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ")
    status, body = http_answer(answer or b"HTTP/1.1 000 closed without an answer\r\n\r\n")
    assert status == 408
    assert "did not arrive in time" in body["error"]


def test_a_slow_body_gets_408_and_the_same_address_is_still_served(door_server):
    address = "127.0.0.73"
    with tcp_from(address, door_server) as sock:
        sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000\r\n\r\n{\"image\":")
        same_address = session_from(address).get(door_server.url + "/api/models", timeout=BOUND)
        assert same_address.status_code == 200
        answer = read_until_closed(sock)
    assert answer is not None, f"the server still waited for the body after {BOUND:.0f} s"
    if answer:
        status, body = http_answer(answer)
        assert status == 408
        assert "did not arrive in time" in body["error"]


def test_an_idle_websocket_outlives_the_request_timeout(door_server):
    sock = socket.create_connection(("127.0.0.1", door_server.port), timeout=BOUND, source_address=("127.0.0.74", 0))
    client = socketio.Client(reconnection=False, websocket_extra_options={"socket": sock})
    client.connect(door_server.url, transports=["websocket"], wait_timeout=20)
    try:
        time.sleep(3 * REQUEST_TIMEOUT)  # nothing sent: engine.io's pings (every 25 s) look after it
        assert client.connected
        assert "role" in client.call("whoami", timeout=BOUND)  # and it still carries events
    finally:
        client.disconnect()
        sock.close()


def test_a_finished_websocket_closes_its_connection(door_server):
    """Kept alive after the websocket, the connection would hold one of the address's slots until the header
    deadline, and a client waiting for the close (python-socketio's waits 3 s) would wait with it."""
    with tcp_from("127.0.0.77", door_server) as sock:
        ws = websocket.WebSocket()
        ws.connect(f"ws://127.0.0.1:{door_server.port}/socket.io/?EIO=4&transport=websocket", socket=sock)
        assert ws.recv().startswith("0")  # engine.io's open packet
        ws.send("1")  # engine.io's close: the server ends the session and its websocket
        while ws.recv_frame().opcode != websocket.ABNF.OPCODE_CLOSE:
            pass
        ws.send_close()
        try:  # the same TCP connection must not serve another request
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = sock.recv(4096)
        except OSError:
            answer = b""
        assert answer == b"", answer[:200]


def test_a_body_over_the_limit_gets_413_and_cannot_hold_the_connection(door_server):
    """The app answers at once without reading the body; what is left unread is not waited for past the timeout."""
    with tcp_from("127.0.0.76", door_server) as sock:
        answer = trickle_until_closed(sock, b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                            b"Content-Type: application/json\r\nContent-Length: 100000000000\r\n\r\n{")
    assert answer is not None, f"the server still read the unwanted body after {BOUND:.0f} s"
    status, body = http_answer(answer)
    assert status == 413
    assert "too large" in body["error"]
