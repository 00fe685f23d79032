"""Roles: the teacher (holds the token) and viewers (everyone else).

Viewers may draw, predict and watch. Teacher actions (training, models) need
the token: from the teacher link once (it becomes a cookie), or as
`Authorization: Bearer`. Requests from this machine itself count as the
teacher unless NEURONLAB_TRUST_LOCALHOST=0, so a single user on localhost
needs no token; anyone on the LAN always does.
"""
import hmac
import ipaddress
from functools import wraps
from urllib.parse import urlencode

from flask import current_app, redirect, request

from webapp.web.lab import ApiError

COOKIE = "neuronlab_token"


def init_app(app):
    @app.before_request
    def accept_teacher_link():
        token = request.args.get("token")
        if token is None or request.path.startswith("/api/") or request.method != "GET":
            return None
        args = request.args.copy()
        args.pop("token")
        clean = request.path + ("?" + urlencode(list(args.items(multi=True))) if args else "")
        response = redirect(clean, code=303)
        if _matches(token):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", max_age=30 * 24 * 3600)
        return response


def _settings():
    return current_app.extensions["neuronlab"].settings


def _matches(token):
    expected = _settings().token or ""
    return isinstance(token, str) and bool(expected) and hmac.compare_digest(token.encode(), expected.encode())


def presented_token():
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE)


def is_local_request():
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def is_teacher():
    if _matches(presented_token()):
        return True
    return _settings().trust_localhost and is_local_request()


def role():
    return "teacher" if is_teacher() else "viewer"


def check_teacher():
    """Raise a 401 (no token) or 403 (wrong token) ApiError unless the caller is the teacher."""
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
