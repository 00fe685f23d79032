"""Hostile input, the small findings: JSON nested 100,000 deep, an `after` beyond
64 bits, NaN/Infinity/1e400 for numbers, a lone surrogate as a job id. Each gets
a 4xx JSON answer (REST) or an error acknowledgement (Socket.IO), never a 500 or
silence, and the server stays up. Clients run on loopback from source
addresses of their own; every wait is bounded."""
import json
import socket
import time
from urllib.parse import urlsplit

import pytest
import requests
import socketio
import websocket

from loopback import session_from
from webapp.web.fastjson import MAX_DEPTH, SocketPacket, TooDeep, loads

DEPTH = 100_000
DEEP_TEXTS = {"lists": "[" * DEPTH + "]" * DEPTH, "objects": '{"a":' * DEPTH + "1" + "}" * DEPTH}
SOURCE = "127.0.0.31"  # this module's hostile client
JSON_ROUTES = [  # every route that reads a JSON body; the server trusts localhost, so the teacher's too
    ("POST", "/api/predict"), ("POST", "/api/jobs"), ("POST", "/api/xor/breakdown"), ("POST", "/api/xor/study"),
    ("POST", "/api/xor/keep"), ("PATCH", "/api/models/mlp"),
]
VIEWER_ROUTES = [("POST", "/api/predict"), ("POST", "/api/xor/breakdown")]


class RawSocket:
    """Socket.IO spoken by hand over one websocket, so a packet can be anything at all."""

    def __init__(self, url, source):
        parts = urlsplit(url)
        sock = socket.create_connection((parts.hostname, parts.port), timeout=30, source_address=(source, 0))
        self.ws = websocket.create_connection(f"ws://{parts.netloc}/socket.io/?EIO=4&transport=websocket",
                                              socket=sock, timeout=30)
        assert self.ws.recv().startswith("0")  # Engine.IO open
        self.ws.send("40")
        assert self.receive().startswith("40")  # Socket.IO connected
        self.next_id = 1

    def receive(self):
        while True:
            message = self.ws.recv()
            if message == "2":  # Engine.IO ping
                self.ws.send("3")
                continue
            return message

    def call(self, event_packet_text):
        """Send `42<id><text>` and return the acknowledgement's arguments."""
        packet_id, self.next_id = self.next_id, self.next_id + 1
        self.ws.send(f"42{packet_id}{event_packet_text}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = self.receive()
            if message.startswith(f"43{packet_id}["):
                return json.loads(message[len(f"43{packet_id}"):])
        raise AssertionError("no acknowledgement")

    def close(self):
        self.ws.close()


@pytest.fixture
def raw(server):
    client = RawSocket(server.url, SOURCE)
    yield client
    client.close()


# -- JSON nested too deeply ----------------------------------------------------------------

def test_loads_refuses_deep_nesting_as_a_value_error_and_reads_the_rest():
    for text in [*DEEP_TEXTS.values(), "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)]:
        with pytest.raises(TooDeep) as refused:
            loads(text)
        assert isinstance(refused.value, ValueError)  # what Flask answers with a 400
    assert loads("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    wide = {"a": [list(range(100))] * 100, "b": "[[[[" * 100}  # many brackets, little depth
    assert loads(json.dumps(wide)) == wide
    assert loads(b'{"x": [1, NaN]}')["x"][0] == 1


def test_a_deep_socket_packet_keeps_its_event_and_drops_its_arguments():
    packet = SocketPacket(encoded_packet='27["predict",' + DEEP_TEXTS["lists"] + "]")
    assert (packet.packet_type, packet.id, packet.data) == (2, 7, ["predict"])
    nameless = SocketPacket(encoded_packet="2" + DEEP_TEXTS["objects"])
    assert nameless.data == [""]  # no handler has that name: unanswered, like any unknown event


@pytest.mark.parametrize("method,path", JSON_ROUTES)
@pytest.mark.parametrize("shape", sorted(DEEP_TEXTS))
def test_deep_json_gets_400_on_every_json_route(server, method, path, shape):
    response = session_from(SOURCE).request(method, server.url + path, data=DEEP_TEXTS[shape],
                                            headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["error"]


@pytest.mark.parametrize("method,path", VIEWER_ROUTES)
def test_deep_json_gets_400_for_viewers_too(classroom, method, path):
    response = session_from(SOURCE).request(method, classroom.url + path, data=DEEP_TEXTS["lists"],
                                            headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 400 and response.json()["error"]


@pytest.mark.parametrize("event", ["predict", "subscribe"])
@pytest.mark.parametrize("shape", sorted(DEEP_TEXTS))
def test_deep_json_in_a_socket_event_gets_a_400_acknowledgement(server, raw, event, shape):
    answer = raw.call(f'["{event}",{DEEP_TEXTS[shape]}]')
    assert answer[0]["status"] == 400 and answer[0]["error"], answer
    assert raw.call('["whoami"]') == [{"role": "teacher"}]  # the connection goes on


def test_unreadable_json_in_a_socket_event_gets_an_acknowledgement(server, raw):
    too_long = raw.call('["subscribe",{"job":"x","after":' + "9" * 5000 + "}]")  # beyond int()'s 4,300 digits
    assert too_long[0]["status"] == 400
    assert raw.call('["unsubscribe",{"job":') == [{"ok": True}]
    assert "Traceback" not in server.log.read_text()


# -- numbers -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_job(server):
    """One short XOR job, finished: its events are what `after` counts."""
    teacher = session_from(SOURCE)
    created = teacher.post(server.url + "/api/jobs", json={"net": "xor", "epochs": 20, "seed": 1}, timeout=30)
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = teacher.get(f"{server.url}/api/jobs/{job_id}", timeout=30).json()
        if job["state"] in ("succeeded", "failed", "cancelled", "interrupted"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.mark.parametrize("after", ["99999999999999999999999999", str(2**63), "9" * 5000, "²", "-1", "1.5", " 1"])
def test_an_after_that_is_not_a_64_bit_seq_gets_400(server, finished_job, after):
    response = session_from(SOURCE).get(f"{server.url}/api/jobs/{finished_job['id']}", params={"after": after},
                                        timeout=30)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["field"] == "after"


def test_the_largest_after_is_answered_with_no_events(server, finished_job):
    response = session_from(SOURCE).get(f"{server.url}/api/jobs/{finished_job['id']}",
                                        params={"after": str(2**63 - 1)}, timeout=30)
    assert response.status_code == 200 and response.json()["events"] == []


def test_a_socket_after_beyond_64_bits_gets_an_error_acknowledgement(server, raw, finished_job):
    answer = raw.call(json.dumps(["subscribe", {"job": finished_job["id"], "after": 10**26}]))
    assert answer[0]["status"] == 400


NOT_FINITE = ["NaN", "Infinity", "-Infinity", "1e400"]


@pytest.mark.parametrize("literal", NOT_FINITE)
@pytest.mark.parametrize("field", ["seeds", "epochs"])
def test_study_numbers_that_are_not_finite_get_400_naming_the_field(server, literal, field):
    response = session_from(SOURCE).post(server.url + "/api/xor/study", data=f'{{"{field}": {literal}}}',
                                         headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["field"] == field


@pytest.mark.parametrize("literal", [*NOT_FINITE, "1" + "0" * 400])
def test_breakdown_inputs_that_are_not_finite_get_400(server, literal):
    session = session_from(SOURCE)
    response = session.post(server.url + "/api/xor/breakdown", data=f'{{"input": [{literal}, 1]}}',
                            headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 400 and response.json()["field"] == "input", response.text[:300]
    got = session.get(server.url + "/api/xor/breakdown", params={"x": f"{literal},1"}, timeout=30)
    assert got.status_code == 400 and got.json()["field"] == "x", got.text[:300]


JOB_NUMBERS = ["epochs", "batch_size", "learning_rate", "hidden", "seed"]


@pytest.mark.parametrize("literal", NOT_FINITE)
@pytest.mark.parametrize("field", JOB_NUMBERS)
def test_job_numbers_that_are_not_finite_get_400_naming_the_field(server, literal, field):
    post_job_numbers(server, field, literal)


@pytest.mark.parametrize("field", JOB_NUMBERS)
def test_job_integers_too_large_for_a_float_get_400_naming_the_field(server, field):
    """math.isfinite(10**400) raises OverflowError: the check lives in webapp/core/training.py's parse_spec."""
    post_job_numbers(server, field, "1" + "0" * 400)


def post_job_numbers(server, field, literal):
    for net in ("mlp", "xor"):
        body = f'{{"net": "{net}", "data": "sample", "{field}": {literal}}}'
        response = session_from(SOURCE).post(server.url + "/api/jobs", data=body,
                                             headers={"Content-Type": "application/json"}, timeout=30)
        assert response.status_code == 400, (net, field, literal, response.text[:300])
        assert response.json()["field"] == field


# -- a lone surrogate --------------------------------------------------------------------------

@pytest.mark.parametrize("job_id", ["\ud800", "a\udfff", "\udcff" * 50])
def test_subscribe_with_a_lone_surrogate_is_acknowledged(server, raw, job_id):
    answer = raw.call(json.dumps(["subscribe", {"job": job_id}]))  # json.dumps writes it as \ud800: as sent by JS
    assert answer[0]["status"] == 404 and "no job" in answer[0]["error"]
    assert raw.call(json.dumps(["unsubscribe", {"job": job_id}])) == [{"ok": True}]


def test_the_python_client_gets_the_surrogate_acknowledgement_too(server):
    client = socketio.Client(reconnection=False)
    client.connect(server.url, transports=["websocket"], wait_timeout=20)
    try:
        assert client.call("subscribe", {"job": "\ud800"}, timeout=20)["status"] == 404
    finally:
        client.disconnect()


def test_the_server_stayed_up_and_logged_no_traceback(server):
    assert requests.get(server.url + "/healthz", timeout=30).ok
    log = server.log.read_text()
    assert "Traceback" not in log, log[log.index("Traceback") - 300:][:3000]
