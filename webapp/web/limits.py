"""The prediction rate: one token bucket per client address.

Each address may make `rate` predictions a second on average, in bursts of up
to `burst`, over REST and over every Socket.IO connection it holds together:
a bucket per connection let 12 sockets from one student get 256 predictions a
second against a limit of 20. So one student hammering the server slows only
themselves, however many connections they open. A class behind one NAT address
shares one bucket: README.md says what to set. NEURONLAB_PREDICT_RATE=0 turns
the limit off.
"""
import math
import threading
import time

from flask import request

MAX_CLIENTS = 10_000  # buckets kept before idle ones are dropped


class RateLimiter:
    def __init__(self, rate, burst=None, clock=time.monotonic):
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(self.rate, 1.0))
        self.clock = clock
        self._buckets = {}  # client -> (tokens, last time)
        self._lock = threading.Lock()

    def allow(self, client):
        """(True, 0) and spend one token, or (False, seconds to wait)."""
        if self.rate <= 0 or not math.isfinite(self.rate):
            return True, 0.0
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                allowed, wait = True, 0.0
            else:
                self._buckets[client] = (tokens, now)
                allowed, wait = False, (1 - tokens) / self.rate
            if len(self._buckets) > MAX_CLIENTS:
                self._drop_idle(now)
        return allowed, wait

    def _drop_idle(self, now):
        """Forget clients whose bucket has filled up again: they lose nothing."""
        full_after = self.burst / self.rate
        for client, (_, last) in list(self._buckets.items()):
            if now - last >= full_after:
                del self._buckets[client]

    def forget(self, client):
        with self._lock:
            self._buckets.pop(client, None)


def predict_limiter():
    """The app's one prediction limiter (one bucket per address)."""
    from webapp.web.lab import current_lab

    return current_lab().limiter


def client_address():
    """The address a request or a Socket.IO connection comes from (its handshake's, in an event)."""
    return request.remote_addr or "unknown"


def allow_prediction(address=None):
    """(True, 0) and spend one of the address's tokens (the request's, unless given), or (False, seconds to wait).

    The one check for REST and Socket.IO predictions alike."""
    return predict_limiter().allow(("address", address or client_address()))


def too_many(wait):
    """The 429 message and how long to wait."""
    rate = predict_limiter().rate
    return {"error": f"too many predictions: at most {rate:g} a second from one address; try again shortly",
            "retry_after": round(wait, 3)}
