"""The serving process's interpreter settings (webapp.web.server.tune_worker_process)."""
import logging
import sys
import threading

import pytest

from webapp.web import server


@pytest.fixture
def tuned():
    """Tuned, over a hook that records what reaches the usual handler (the traceback printer)."""
    interval, hook = sys.getswitchinterval(), threading.excepthook
    printed = []
    threading.excepthook = lambda args: printed.append((args.thread.name, args.exc_type))
    server.tune_worker_process()
    yield printed
    sys.setswitchinterval(interval)
    threading.excepthook = hook


def run_thread(target, name):
    thread = threading.Thread(target=target, name=name)
    thread.start()
    thread.join()


def fail_with(exc):
    def target():
        raise exc
    return target


def test_switch_interval(tuned):
    assert sys.getswitchinterval() == pytest.approx(server.SWITCH_INTERVAL_S)


def test_a_websocket_writer_finding_its_socket_closed_is_one_log_line(tuned, caplog):
    with caplog.at_level(logging.INFO, logger="webapp"):
        run_thread(fail_with(OSError(9, "Bad file descriptor")), "Thread-7 (writer)")
    assert "websocket closed" in caplog.text
    assert tuned == []


def test_other_thread_errors_still_reach_the_usual_handler(tuned):
    run_thread(fail_with(OSError(9, "Bad file descriptor")), "Thread-8 (relay)")
    run_thread(fail_with(ValueError("a bug")), "Thread-9 (writer)")
    assert tuned == [("Thread-8 (relay)", OSError), ("Thread-9 (writer)", ValueError)]
