"""Open Socket.IO connections per client address, and the limit on them.

Each address may hold `max_sockets_per_address` connections at once
(NEURONLAB_MAX_SOCKETS_PER_ADDRESS, default 20: a student's few tabs, with room
to spare). One more is refused in the Socket.IO connect handler with a reason
the browser gets in `connect_error` (static/js/connection-status.js shows it),
so one address cannot hold hundreds of idle connections. A class behind one NAT
address needs a higher limit: README.md says what to set.

The connect handler calls `admit(sid, address)` and the disconnect handler
`release(sid)`. A refused connection never reaches the disconnect handler, so
only admitted ones are counted.
"""
import threading


from socketio.exceptions import ConnectionRefusedError  # the one whose message reaches the client


class Connections:
    """Which address each connection (sid) comes from, and how many each address holds."""

    def __init__(self, limit):
        self.limit = int(limit)
        self._sids_of = {}  # address -> set of sids
        self._address_of = {}  # sid -> address
        self._lock = threading.Lock()

    def admit(self, sid, address):
        """Count this connection, or raise ConnectionRefusedError with the reason when its address is full."""
        with self._lock:
            if sid in self._address_of:  # a second connect for the same sid counts once
                return
            sids = self._sids_of.get(address, set())
            if len(sids) >= self.limit:
                raise ConnectionRefusedError(refusal(self.limit))
            sids.add(sid)
            self._sids_of[address] = sids
            self._address_of[sid] = address

    def release(self, sid):
        """Forget a connection that closed; unknown sids (refused, or released already) are fine."""
        with self._lock:
            address = self._address_of.pop(sid, None)
            sids = self._sids_of.get(address)
            if sids is None:
                return
            sids.discard(sid)
            if not sids:
                del self._sids_of[address]  # no entry left behind per address ever seen

    def count(self, address):
        with self._lock:
            return len(self._sids_of.get(address, ()))

    def addresses(self):
        with self._lock:
            return len(self._sids_of)


def refusal(limit):
    """The reason a browser shows: what happened and what to do."""
    return (f"too many open connections from your address (the limit is {limit}): close other tabs of this "
            "app, or ask the teacher to raise NEURONLAB_MAX_SOCKETS_PER_ADDRESS")


def connections():
    """The app's one Connections."""
    from webapp.web.lab import current_lab

    return current_lab().connections


def admit(sid, address):
    """For the Socket.IO connect handler: raises ConnectionRefusedError(reason) beyond the address's limit."""
    connections().admit(sid, address or "unknown")


def release(sid):
    """For the Socket.IO disconnect handler."""
    connections().release(sid)
