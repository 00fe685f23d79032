"""JSON out through orjson, for Flask responses and Socket.IO packets.

A prediction carries its 28x28 input: 784 numbers, which the standard library
takes ~130 us to encode and orjson ~10 us, on the hottest path of the app.
Whatever orjson refuses (an integer beyond 64 bits echoed in an error, say) is
encoded by the standard library instead, so the output never depends on luck.
orjson writes NaN as null, which browsers' JSON.parse accepts.
"""
import json

import numpy as np
import orjson
from flask.json.provider import DefaultJSONProvider
from socketio.packet import Packet

OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps(obj, default=None, **json_kwargs):
    """str JSON by orjson, else by json.dumps with the given arguments."""
    try:
        return orjson.dumps(obj, default=default, option=OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(obj, default=lambda value: _with_numpy(value, default), **json_kwargs)


def _with_numpy(value, default):
    """NumPy arrays and scalars as lists and numbers, as orjson writes them."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if default is None:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return default(value)


class FastJSONProvider(DefaultJSONProvider):
    """Flask's provider, encoding compact output with orjson (keys stay in
    insertion order). Pretty-printed output (debug mode) is the standard one."""

    def dumps(self, obj, **kwargs):
        if "indent" in kwargs or "cls" in kwargs:
            return super().dumps(obj, **kwargs)
        return dumps(obj, default=self.default, **{"sort_keys": self.sort_keys, **kwargs})


class SocketJSON:
    """The `json` module python-socketio encodes packets with."""

    dumps = staticmethod(dumps)
    loads = staticmethod(json.loads)


class SocketPacket(Packet):
    """python-socketio's packet, with a fast check for binary data.

    The standard check walks every element in Python: ~0.3 ms for the 784
    numbers of each prediction's acknowledgement. orjson refuses bytes, so
    encoding answers the same question in C; whatever it refuses is walked."""

    json = SocketJSON

    @classmethod
    def data_is_binary(cls, data):
        try:
            orjson.dumps(data, option=OPTIONS)
        except TypeError:  # bytes somewhere, or a value orjson refuses: look properly
            return super().data_is_binary(data)
        return False
