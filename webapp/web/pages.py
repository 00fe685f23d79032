"""The HTML pages."""
from flask import Blueprint, current_app, render_template

from webapp.web import auth
from webapp.web.lab import current_lab

bp = Blueprint("pages", __name__)


def page(template, **context):
    lab = current_lab()
    endpoints = {rule.endpoint for rule in current_app.url_map.iter_rules()}
    return render_template(template, role=auth.role(), settings=lab.settings, url_map_endpoints=endpoints,
                           **context)


@bp.get("/")
def draw():
    return page("draw.html")


@bp.get("/train")
def train():
    return page("train.html")


@bp.get("/data")
def data():
    """The class gallery: a dataset's drawings by label, live (the teacher also manages them)."""
    return page("data.html")


@bp.get("/xor")
def xor():
    return page("xor.html")


@bp.get("/healthz")
def healthz():
    return {"ok": True}


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico whatever the page's <link rel=icon> says."""
    return current_app.send_static_file("favicon.svg")
