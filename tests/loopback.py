"""Clients that come from a loopback source address of their own (127.0.0.0/8), so that tests can play
several people, or one hostile address, against one server on this machine."""
import socket
from urllib.parse import urlsplit

import requests
import socketio
from requests.adapters import HTTPAdapter


class SourceAddress(HTTPAdapter):
    """requests from one loopback source address."""

    def __init__(self, address):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def session_from(address):
    session = requests.Session()
    session.mount("http://", SourceAddress(address))
    return session


class Refused(Exception):
    """The server refused a Socket.IO connection; args[0] is its reason."""


def connect_from(address, url, **kwargs):
    """A python-socketio client whose websocket comes from `address` (websocket-client takes a connected socket)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30, source_address=(address, 0))
    client = socketio.Client(reconnection=False, websocket_extra_options={"socket": sock})
    reasons = []
    client.on("connect_error", reasons.append)
    try:
        client.connect(url, transports=["websocket"], wait_timeout=20, **kwargs)
    except socketio.exceptions.ConnectionError:
        client.disconnect()
        sock.close()
        reason = reasons[0] if reasons else None
        raise Refused(reason.get("message") if isinstance(reason, dict) else reason) from None
    return client
