"""Roles: the teacher (holds the token) and viewers (everyone else).

Viewers may draw, predict and watch. Teacher actions (training, models) need
the token, presented in one of three ways:
- the teacher link `/?token=TOKEN`, opened once: it becomes an HttpOnly,
  SameSite=Strict cookie and the browser is redirected to the clean URL;
- the header `Authorization: Bearer TOKEN` (scripts, curl);
- for Socket.IO, the cookie or header on the handshake, or `auth={"token": TOKEN}`.
Tokens are compared in constant time.

Defaults: requests from this machine itself count as the teacher
(NEURONLAB_TRUST_LOCALHOST=1), so `python -m webapp` for one person on
localhost needs no token. Anyone on the LAN always needs it. Two guards keep
that trust from being borrowed by a web page the teacher happens to visit:
the Host header must be a loopback name (no DNS rebinding), and state-changing
requests carrying a foreign Origin are refused outright (no CSRF). A request
with no Origin is judged by its Referer: a foreign one is cross-site too.
"""
import hmac
import ipaddress
from functools import wraps
from urllib.parse import urlencode, urlsplit

from flask import jsonify, redirect, request

from webapp.web.lab import ApiError, current_lab

COOKIE = "neuronlab_token"
COOKIE_MAX_AGE = 30 * 24 * 3600
SOCKET_TOKEN = "neuronlab.socket_token"  # where a Socket.IO `auth` token is kept for the connection
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def init_app(app):
    @app.before_request
    def refuse_cross_site_writes():
        if request.method in SAFE_METHODS or same_origin():
            return None
        return jsonify({"error": "cross-site request refused: use this app's own pages"}), 403

    @app.before_request
    def accept_teacher_link():
        token = request.args.get("token")
        if token is None or request.path.startswith("/api/") or request.method != "GET":
            return None
        args = request.args.copy()
        args.pop("token")
        clean = request.path + ("?" + urlencode(list(args.items(multi=True))) if args else "")
        response = redirect(clean, code=303)  # the token must not linger in the address bar or history
        if _matches(token):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", max_age=COOKIE_MAX_AGE)
        return response


def _settings():
    return current_lab().settings


def _matches(token):
    expected = _settings().token or ""
    if not isinstance(token, str) or not expected:
        return False
    return hmac.compare_digest(token.encode("utf-8", "surrogatepass"), expected.encode())


def same_origin():
    """False only when the browser says the request comes from another site:
    Sec-Fetch-Site, else Origin, else (older browsers, some GETs) the Referer's origin."""
    if request.headers.get("Sec-Fetch-Site", "") == "cross-site":
        return False
    origin = request.headers.get("Origin") or referer_origin(request.headers.get("Referer"))
    if not origin:  # neither is sent by scripts and curl
        return True
    allowed = {request.host_url.rstrip("/"), *(o.rstrip("/") for o in _settings().allowed_origins)}
    return origin.rstrip("/").lower() in {o.lower() for o in allowed}


def referer_origin(referer):
    """scheme://host[:port] of a Referer; "null" (foreign to everyone) for one that is not an http(s) URL."""
    if not referer:
        return None
    try:
        parts = urlsplit(referer)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        return "null"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "null"
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def presented_token():
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.environ.get(SOCKET_TOKEN) or request.cookies.get(COOKIE)


def remember_socket_token(auth):
    """Called by the Socket.IO connect handler: keep an `auth` token for this connection.

    Flask-SocketIO rebuilds `request` from the handshake's environ for every
    event, so the token lives exactly as long as the connection."""
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        request.environ[SOCKET_TOKEN] = auth["token"][:512]


def is_local_request():
    """A request from this machine, addressed to a loopback name."""
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if getattr(address, "ipv4_mapped", None):
        address = address.ipv4_mapped
    hostname = urlsplit("//" + request.host).hostname or ""
    return address.is_loopback and hostname in LOOPBACK_NAMES


def is_teacher():
    if _matches(presented_token()):
        return True
    return _settings().trust_localhost and is_local_request() and same_origin()


def role():
    return "teacher" if is_teacher() else "viewer"


def check_teacher():
    """Raise a 401 (no token) or 403 (wrong token) ApiError unless the caller is the teacher.

    Works in views and in Socket.IO handlers alike."""
    if is_teacher():
        return
    if presented_token():
        raise ApiError(403, "the teacher token is wrong: only the teacher may do this")
    raise ApiError(401, "only the teacher may do this: open the teacher link or send the token "
                   "as 'Authorization: Bearer TOKEN'")


def teacher_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        check_teacher()
        return view(*args, **kwargs)

    return wrapper
