"""Hostile clients and per-address limits: open websockets per address, the
prediction rate per address across all its connections, and one subscription
per connection and job. Every simulated client has its own loopback source
address (127.0.0.0/8); counts and waits are bounded.

Wiring these need (the lead's webapp/web/events.py and webapp/web/api.py):
- the connect handler calls connections.admit(request.sid, request.remote_addr)
  and the disconnect handler connections.release(request.sid): the tests named
  *_websockets_per_address_* and the page's banner need it;
- both predict paths call limits.allow_prediction(): the test named
  *_share_one_prediction_bucket needs it.
"""
import base64
import io
import threading
import time

import pytest
import requests
from PIL import Image
from socketio.exceptions import ConnectionRefusedError  # the one whose message reaches the client

from conftest import ServerProcess, wait_for_job
from loopback import Refused, connect_from, session_from
from webapp.web.connections import Connections, refusal

LIMIT = 20  # the default of NEURONLAB_MAX_SOCKETS_PER_ADDRESS


def blank_png():
    buffer = io.BytesIO()
    Image.new("L", (28, 28), 255).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """The default socket limit; a prediction rate so low (burst 1, then one per 100 s) that no token refills
    while a test runs."""
    process = ServerProcess(tmp_path_factory.mktemp("hostile"), env={"NEURONLAB_PREDICT_RATE": "0.01"}).start()
    yield process
    process.stop()


@pytest.fixture
def clients():
    opened = []
    yield opened
    for client in opened:
        if client.connected:
            client.disconnect()


# -- open websockets per address -----------------------------------------------------------

def test_connections_count_per_address_and_refuse_one_beyond_the_limit():
    counter = Connections(limit=3)
    for n in range(3):
        counter.admit(f"a{n}", "10.0.0.1")
    with pytest.raises(ConnectionRefusedError) as refused:
        counter.admit("a3", "10.0.0.1")
    assert refused.value.error_args["message"] == refusal(3)
    assert "too many open connections" in refusal(3) and "NEURONLAB_MAX_SOCKETS_PER_ADDRESS" in refusal(3)
    counter.admit("b0", "10.0.0.2")  # another address has its own count
    counter.admit("a0", "10.0.0.1")  # the same connection twice counts once
    assert counter.count("10.0.0.1") == 3 and counter.count("10.0.0.2") == 1
    counter.release("a1")
    counter.admit("a4", "10.0.0.1")  # a closed connection frees its place
    for sid in ("a0", "a2", "a4", "b0", "a3", "never-admitted"):
        counter.release(sid)
    assert counter.addresses() == 0  # nothing kept per address once its connections are gone


def test_the_websockets_per_address_limit_refuses_the_21st_with_its_reason(hostile_server, clients):
    """Needs events.py's connect/disconnect to call connections.admit/release."""
    hostile = "127.0.0.77"
    for _ in range(LIMIT):
        clients.append(connect_from(hostile, hostile_server.url))
    with pytest.raises(Refused) as refused:
        connect_from(hostile, hostile_server.url)
    assert f"too many open connections from your address (the limit is {LIMIT})" in str(refused.value)
    other = connect_from("127.0.0.78", hostile_server.url)  # another address is not affected
    clients.append(other)
    assert other.call("whoami", timeout=20)["role"] in ("teacher", "viewer")
    assert all(client.connected for client in clients)  # nobody was dropped to make room
    clients.pop(0).disconnect()  # one closes: its place is free again
    deadline = time.monotonic() + 20
    while True:
        try:
            clients.append(connect_from(hostile, hostile_server.url))
            break
        except Refused:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # the server hears of the close a moment later


# -- the prediction rate per address ------------------------------------------------------------

def test_every_connection_and_rest_from_one_address_share_one_prediction_bucket(hostile_server, clients):
    """Needs both predict paths to call limits.allow_prediction()."""
    greedy = "127.0.0.81"
    sockets = [connect_from(greedy, hostile_server.url) for _ in range(4)]
    clients.extend(sockets)
    first = sockets[0].call("predict", {"image": blank_png()}, timeout=60)
    assert first.get("status") != 429, first  # the burst: one prediction
    for other in sockets[1:]:  # a bucket per connection would have let each of these through
        assert other.call("predict", {"image": blank_png()}, timeout=60).get("status") == 429
    rest = session_from(greedy).post(hostile_server.url + "/api/predict", json={"image": blank_png()}, timeout=60)
    assert rest.status_code == 429 and "from one address" in rest.json()["error"]
    elsewhere = session_from("127.0.0.82").post(hostile_server.url + "/api/predict", json={"image": blank_png()},
                                                timeout=60)
    assert elsewhere.status_code == 200, elsewhere.text[:300]  # another address has its own bucket


# -- one subscription per connection and job ---------------------------------------------------------

@pytest.fixture(scope="module")
def finished_job(hostile_server):
    teacher = requests.Session()  # from 127.0.0.1: the teacher
    created = teacher.post(hostile_server.url + "/api/jobs", json={"net": "xor", "epochs": 30, "seed": 2}, timeout=30)
    assert created.status_code == 202, created.text
    return wait_for_job(hostile_server, created.json()["id"])


def collect_job_events(client):
    received = []
    client.on("job", received.append)
    return received


def test_repeated_subscribes_send_each_event_once(hostile_server, finished_job, clients):
    job_id, events = finished_job["id"], len(finished_job["events"])
    client = connect_from("127.0.0.85", hostile_server.url)
    clients.append(client)
    received = collect_job_events(client)
    acks, done = [], threading.Event()
    repeats = 50

    def acked(answer):
        acks.append(answer)
        if len(acks) == repeats:
            done.set()

    for _ in range(repeats):  # all at once: the server handles them side by side
        client.emit("subscribe", {"job": job_id, "after": 0}, callback=acked)
    assert done.wait(60), f"{len(acks)} of {repeats} acknowledgements"
    assert all(a.get("ok") for a in acks), acks[:3]
    assert sum(1 for a in acks if not a.get("already_subscribed")) == 1
    assert client.call("whoami", timeout=20)  # every event sent before this answer has arrived
    # Each once. (Not their order: the python-socketio client runs every message's handler in a thread of its
    # own, so a burst can reach `received` swapped; the server sends them in order under the job's lock.)
    assert sorted(e["seq"] for e in received) == list(range(1, events + 1))

    again = client.call("subscribe", {"job": job_id, "after": 2}, timeout=20)  # a lower after resends nothing
    assert again["already_subscribed"] and client.call("whoami", timeout=20) and len(received) == events

    assert client.call("unsubscribe", {"job": job_id}, timeout=20) == {"ok": True}
    fresh = client.call("subscribe", {"job": job_id, "after": 0}, timeout=20)  # unsubscribed: a new subscription
    assert "already_subscribed" not in fresh and client.call("whoami", timeout=20)
    assert sorted(e["seq"] for e in received[events:]) == list(range(1, events + 1))  # (order: see above)


def test_a_new_connection_resubscribes_from_the_last_seq_it_has(hostile_server, finished_job, clients):
    """What JobStream does after a reconnect: subscribe with after = the last seq it has."""
    job_id, events = finished_job["id"], len(finished_job["events"])
    client = connect_from("127.0.0.86", hostile_server.url)
    clients.append(client)
    received = collect_job_events(client)
    answer = client.call("subscribe", {"job": job_id, "after": 3}, timeout=20)
    assert answer["ok"] and "already_subscribed" not in answer
    assert client.call("whoami", timeout=20)
    assert sorted(e["seq"] for e in received) == list(range(4, events + 1))  # each once (the client's threads
    # may swap a burst: see test_repeated_subscribes_send_each_event_once)


def test_the_hostile_server_stayed_up(hostile_server):
    assert requests.get(hostile_server.url + "/healthz", timeout=30).ok
    log = hostile_server.log.read_text()
    assert "Traceback" not in log, log[log.index("Traceback") - 300:][:3000]
