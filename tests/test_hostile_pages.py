"""What pages show under the per-connection limits, in real Chromium: a refused
connection's banner with the server's reason, and a job shown twice on one
connection (which the server subscribes once) still shows all its events.

Wiring these need (files of others):
- the banner: templates/base.html includes js/connection-status.js right after
  the Socket.IO client, and events.py's connect handler calls connections.admit;
- the job shown twice: static/js/job-stream.js keeps the followed job's events
  and replays them when the same job is followed again.
"""

import pytest
import requests
import socketio
from playwright.sync_api import expect

from conftest import ServerProcess, wait_for_job
from test_train_page import wait_until_no_job_runs


def finished_xor_job(server, timeout=240):
    created = requests.post(server.url + "/api/jobs", json={"net": "xor", "epochs": 200, "seed": 3}, timeout=30)
    assert created.status_code == 202, created.text
    return wait_for_job(server, created.json()["id"], timeout)


def test_watching_the_same_job_again_shows_all_its_events(server, page):
    job = finished_xor_job(server)
    wait_until_no_job_runs(server)  # other tests share this server: the page must not follow one of theirs
    page.goto(server.url + "/train")
    page.wait_for_function(f"document.querySelector('#job-title').textContent.includes('{job['id']}')")
    page.wait_for_function("document.querySelector('#job-state').textContent === 'succeeded'", timeout=60_000)
    # the state comes with the job list, its events a moment later: wait until the stream has drawn its last one
    page.wait_for_function("document.querySelector('#progress-final').textContent !== ''", timeout=60_000)
    points = page.evaluate("window.trainCharts.loss.pointCount()")
    assert points > 1
    page.click(f"#history tr[data-job='{job['id']}'] button")  # "Watching": the same job, on the same connection
    page.wait_for_function("document.querySelector('#job-state').textContent === 'succeeded'", timeout=30_000)
    page.wait_for_timeout(500)  # (a server that resent events would add them meanwhile)
    assert page.evaluate("window.trainCharts.loss.pointCount()") == points


SOCKETS = 5  # small, yet the server's door (3 TCP connections per socket) leaves Chromium room to load the page


@pytest.fixture(scope="module")
def few_sockets_server(tmp_path_factory):
    process = ServerProcess(tmp_path_factory.mktemp("few-sockets"),
                            env={"NEURONLAB_MAX_SOCKETS_PER_ADDRESS": str(SOCKETS)}).start()
    yield process
    process.stop()


def test_a_refused_connection_shows_the_servers_reason_and_can_try_again(few_sockets_server, page):
    holders = []  # this address's places, taken before the page opens (Chromium comes from 127.0.0.1 too)
    try:
        for _ in range(SOCKETS):
            holder = socketio.Client(reconnection=False)
            holder.connect(few_sockets_server.url, transports=["websocket"], wait_timeout=20)
            holders.append(holder)
        page.goto(few_sockets_server.url + "/")
        banner = page.locator(".connection-status")
        expect(banner).to_be_visible(timeout=20_000)
        expect(banner).to_contain_text("refused")
        expect(banner).to_contain_text(f"too many open connections from your address (the limit is {SOCKETS})")
        assert banner.get_attribute("role") == "alert"
        holders.pop().disconnect()  # a place frees up
        page.wait_for_timeout(500)
        banner.get_by_role("button", name="Try again").click()
        expect(banner).to_contain_text("Connected again", timeout=20_000)
        expect(banner).to_be_hidden(timeout=20_000)
    finally:
        for holder in holders:
            holder.disconnect()
