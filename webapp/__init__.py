"""Neuron Lab: the "how a neural network works" tutorial as a web app.

`webapp.core` holds the neural-network code and never imports Flask;
`webapp.web` is the Flask/Socket.IO layer built on top of it.
"""
import os

# TensorFlow prints pages of C++ start-up notes; keep warnings and errors only.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def create_app(settings=None):
    """App factory (see webapp.web.create_app); imported lazily so that the
    core can be used without loading Flask."""
    from webapp.web import create_app as _create_app

    return _create_app(settings)
