"""Sharing the app on a classroom LAN: the viewer link, the teacher link and a QR code.

The viewer link is the plain address; anyone who opens it may draw, predict and
watch. The teacher link adds `?token=...` (as Jupyter does); opening it once
turns the token into a cookie (see webapp.web.auth). The QR code, drawn with
segno, encodes the viewer link only: it goes on the projector, so it must never
carry the token.
"""
import io
import socket

import segno
from flask import Blueprint, Response, jsonify, request

from webapp.web import auth
from webapp.web.lab import current_lab
from webapp.web.pages import page

bp = Blueprint("sharing", __name__)


def teacher_link(url, token):
    return f"{url}?token={token}"


def viewer_link(local_url, lan_urls):
    """The link to show the class: the first LAN address, else this computer's."""
    return lan_urls[0] if lan_urls else local_url


def terminal_qr(url):
    """The QR code of `url` as text for a terminal (two rows per line, so it stays square-ish)."""
    buffer = io.StringIO()
    segno.make(url, error="m").terminal(out=buffer, compact=True, border=2)
    return buffer.getvalue().rstrip("\n").splitlines()


def share_lines(settings, local_url, lan_urls):
    """The start-up banner's sharing part (called by webapp.web.server.banner)."""
    token = settings.token
    lines = [""]
    if lan_urls:
        lines.append("Students (viewers: draw, predict, watch) open:")
        lines += [f"  {url}" for url in lan_urls]
    else:
        lines.append("Only this computer can reach the app; start it with --host 0.0.0.0 to share it on the LAN.")
    if token:
        lines.append("The teacher (trains, manages models) opens, once; keep it secret:")
        lines += [f"  {teacher_link(url, token)}" for url in [local_url, *lan_urls]]
    if settings.trust_localhost:
        lines.append("  (on this computer itself you are the teacher even without the token)")
    if lan_urls:
        viewer = viewer_link(local_url, lan_urls)
        lines += ["", f"QR code of the viewer link {viewer}:"]
        lines += terminal_qr(viewer)
    return lines


def lan_addresses():
    """This machine's IPv4 addresses on its network interfaces (no traffic sent)."""
    import psutil

    found = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                found.append(address.address)
    return sorted(set(found))


def page_viewer_link():
    """The viewer link as the browser reached us: works for whoever sees this page.

    On localhost we prefer a LAN address (students can't open 'localhost')."""
    here = request.host_url
    if request.host.split(":")[0] in ("localhost", "127.0.0.1", "[::1]"):
        settings = current_lab().settings
        if settings.host in ("0.0.0.0", "::", ""):
            port = request.host.rsplit(":", 1)[1] if ":" in request.host else "80"
            addresses = lan_addresses()
            if addresses:
                return f"http://{addresses[0]}:{port}/"
    return here


@bp.get("/share")
def share_page():
    return page("share.html", viewer_link=page_viewer_link())


@bp.get("/api/share")
def share_info():
    """The viewer link and its QR code (SVG), for the Share page."""
    link = page_viewer_link()
    return jsonify({
        "viewer_link": link,
        "qr_svg": "/share.svg",
        "role": auth.role(),
        "note": "The QR code and this link are for viewers; the teacher link is printed in the server's terminal.",
    })


@bp.get("/share.svg")
def share_svg():
    buffer = io.BytesIO()
    segno.make(page_viewer_link(), error="m").save(buffer, kind="svg", scale=6, border=2, dark="#1d2330")
    return Response(buffer.getvalue(), mimetype="image/svg+xml", headers={"Cache-Control": "no-store"})
