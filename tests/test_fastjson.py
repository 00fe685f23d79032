"""The JSON encoder for responses and Socket.IO packets: orjson where it can,
the standard library where orjson refuses."""
import json

import numpy as np

from webapp.web import create_app
from webapp.web.fastjson import SocketJSON, SocketPacket


def test_numbers_numpy_and_nan_encode_as_json_browsers_parse():
    text = SocketJSON.dumps({"input": np.full((2, 2), 0.5, np.float32), "p": [0.25, float("nan")], 3: "x"})
    assert json.loads(text) == {"input": [[0.5, 0.5], [0.5, 0.5]], "p": [0.25, None], "3": "x"}


def test_what_orjson_refuses_falls_back_to_the_standard_library():
    assert json.loads(SocketJSON.dumps({"epochs": 10**30}, separators=(",", ":"))) == {"epochs": 10**30}


def test_flask_responses_use_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURONLAB_HOME", str(tmp_path))
    app = create_app()
    with app.app_context():
        response = app.json.response({"big": 10**30, "input": np.zeros(3, np.float32)})
    assert json.loads(response.get_data()) == {"big": 10**30, "input": [0.0, 0.0, 0.0]}


def test_socket_packets_find_binary_data_wherever_it_is():
    assert not SocketPacket.data_is_binary({"input": [[0.5] * 28] * 28, "digit": 8, "big": 10**30})
    assert SocketPacket.data_is_binary({"a": [1, {"b": b"\x00"}]})
    assert SocketPacket.data_is_binary([bytearray(b"x")])
    event = SocketPacket(data=["predict", {"input": [[0.0, 1.0]]}])
    assert event.encode() == '2["predict",{"input":[[0.0,1.0]]}]'
