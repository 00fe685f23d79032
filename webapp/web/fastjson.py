"""JSON out through orjson, for Flask responses and Socket.IO packets.

A prediction carries its 28x28 input: 784 numbers, which the standard library
takes ~130 us to encode and orjson ~10 us, on the hottest path of the app.
Whatever orjson refuses (an integer beyond 64 bits echoed in an error, say) is
encoded by the standard library instead, so the output never depends on luck.
orjson writes NaN as null, which browsers' JSON.parse accepts.

JSON in is the standard library's, with its nesting bounded: 100,000 levels of
`[` would otherwise raise RecursionError (a 500, or a Socket.IO packet nobody
answers). Too deep is a ValueError, which Flask answers with a 400 and which a
Socket.IO event turns into a call without arguments, answered by its handler.
"""
import json
import logging
import re

import numpy as np
import orjson
from flask.json.provider import DefaultJSONProvider
from socketio import packet as socketio_packet
from socketio.packet import Packet

log = logging.getLogger(__name__)

OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
MAX_DEPTH = 64  # nesting of lists and objects a client may send; the app's own messages nest 3 deep


class BadJSON(ValueError):
    """JSON a client sent that cannot be read (a ValueError, as json's own errors are)."""


class TooDeep(BadJSON):
    """JSON nested beyond MAX_DEPTH."""

    def __init__(self):
        super().__init__(f"the JSON nests lists or objects more than {MAX_DEPTH} levels deep")


def loads(text, **kwargs):
    """json.loads, refusing anything nested beyond MAX_DEPTH with TooDeep, and other bad JSON with BadJSON."""
    try:
        value = json.loads(text, **kwargs)
    except RecursionError:  # the C parser gives up near the interpreter's recursion limit: fast
        raise TooDeep() from None
    except ValueError as exc:  # malformed, or an integer of more than 4,300 digits
        raise BadJSON(str(exc)[:200]) from None
    if _brackets(text) > MAX_DEPTH and nests_deeper(value, MAX_DEPTH):
        raise TooDeep()
    return value


def _brackets(text):
    """An upper bound of the nesting, at C speed: fewer brackets than the limit cannot nest beyond it."""
    if isinstance(text, (bytes, bytearray)):
        return text.count(b"[") + text.count(b"{")
    return text.count("[") + text.count("{")


def nests_deeper(value, limit):
    """Whether lists and dicts nest more than `limit` levels, level by level (no recursion)."""
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > limit:
            return True
        children = []
        for item in level:
            inner = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
            children.extend(v for v in inner if isinstance(v, (list, dict)))
        level = children
    return False


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

    def loads(self, s, **kwargs):
        return loads(s, **kwargs)


class SocketJSON:
    """The `json` module python-socketio encodes packets with."""

    dumps = staticmethod(dumps)
    loads = staticmethod(loads)


EVENT_NAME = re.compile(r'[^\[]*\[\s*("(?:[^"\\]|\\.)*")')  # what precedes the arguments: type, id, the name
ATTACHMENTS = re.compile(r"\d(\d+)-")


class SocketPacket(Packet):
    """python-socketio's packet, with a fast check for binary data.

    The standard check walks every element in Python: ~0.3 ms for the 784
    numbers of each prediction's acknowledgement. orjson refuses bytes, so
    encoding answers the same question in C; whatever it refuses is walked."""

    json = SocketJSON

    def __init__(self, packet_type=socketio_packet.EVENT, data=None, namespace=None, id=None, binary=None,
                 encoded_packet=None):
        self._json = None  # the data as orjson wrote it while checking for binary: encode() reuses it
        if binary is None and encoded_packet is None and data is not None:
            try:
                self._json = orjson.dumps(data, option=OPTIONS).decode()
                binary = False  # orjson refuses bytes: data it could write has none
            except TypeError:
                pass  # bytes somewhere, or a value orjson refuses: the standard check decides
        super().__init__(packet_type, data, namespace, id, binary, encoded_packet)

    def encode(self):
        """As python-socketio's, with the JSON written once (an answer's 784 numbers were encoded twice)."""
        if self._json is None or self.packet_type not in (socketio_packet.EVENT, socketio_packet.ACK):
            return super().encode()
        encoded = str(self.packet_type)
        if self.namespace is not None and self.namespace != "/":
            encoded += self.namespace + ","
        if self.id is not None:
            encoded += str(self.id)
        return encoded + self._json

    def decode(self, encoded_packet):
        """A packet whose JSON cannot be read (nested too deeply, say) keeps its
        event name and loses its arguments: the handler answers a call without
        them (a 400), where the error would have left the caller waiting for an
        acknowledgement forever, and put a traceback in the log."""
        try:
            return super().decode(encoded_packet)
        except BadJSON as exc:
            why = exc
        name = None
        match = EVENT_NAME.match(encoded_packet) if isinstance(encoded_packet, str) else None
        if match:
            try:
                name = json.loads(match.group(1))
            except ValueError:
                name = None
        log.warning("a Socket.IO packet whose JSON cannot be read (%s): %s", why,
                    f"event {name[:40]!r} called without its arguments" if name else "ignored")
        if self.packet_type in (socketio_packet.EVENT, socketio_packet.BINARY_EVENT):
            self.data = [name or ""]  # no handler has an empty name: a nameless event goes unanswered, as before
        elif self.packet_type in (socketio_packet.ACK, socketio_packet.BINARY_ACK):
            self.data = []
        else:  # CONNECT: no auth
            self.data = None
        attachments = ATTACHMENTS.match(encoded_packet) if isinstance(encoded_packet, str) else None
        return int(attachments.group(1)) if attachments and self.packet_type in (
            socketio_packet.BINARY_EVENT, socketio_packet.BINARY_ACK) else 0

    @classmethod
    def data_is_binary(cls, data):
        try:
            orjson.dumps(data, option=OPTIONS)
        except TypeError:  # bytes somewhere, or a value orjson refuses: look properly
            return super().data_is_binary(data)
        return False
