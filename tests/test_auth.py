"""Roles on a server that trusts nobody's address (as on a classroom LAN), the
teacher link, the Socket.IO handshake, and the guards on localhost trust."""
import pytest
import requests
import socketio

from conftest import TOKEN, ServerProcess

TEACHER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def lan_server(tmp_path_factory):
    """Localhost is not trusted here: every client is a LAN client."""
    process = ServerProcess(tmp_path_factory.mktemp("lan"), env={"NEURONLAB_TRUST_LOCALHOST": "0"}).start()
    yield process
    process.stop()


def connect(url, **kwargs):
    client = socketio.Client(reconnection=False)
    client.connect(url, transports=["websocket"], wait_timeout=20, **kwargs)
    return client


def whoami(url, **kwargs):
    client = connect(url, **kwargs)
    try:
        return client.call("whoami", {}, timeout=10)["role"]
    finally:
        client.disconnect()


# -- the teacher link --------------------------------------------------------------

def test_teacher_link_sets_a_strict_httponly_cookie_and_redirects_to_a_clean_url(lan_server):
    response = requests.get(f"{lan_server.url}/share?token={TOKEN}&x=1", allow_redirects=False)
    assert response.status_code == 303
    assert response.headers["Location"] == "/share?x=1"
    cookie = response.headers["Set-Cookie"]
    assert f"neuronlab_token={TOKEN}" in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie

    session = requests.Session()
    page = session.get(f"{lan_server.url}/?token={TOKEN}")
    assert page.url == f"{lan_server.url}/"  # the token is gone from the address bar
    assert 'data-role="teacher"' in page.text
    assert 'data-role="viewer"' in requests.get(lan_server.url + "/").text


def test_a_wrong_teacher_link_sets_no_cookie(lan_server):
    response = requests.get(f"{lan_server.url}/?token=guess", allow_redirects=False)
    assert response.status_code == 303 and "Set-Cookie" not in response.headers
    assert response.headers["Location"] == "/"


# -- teacher-only actions -------------------------------------------------------------

TEACHER_ACTIONS = [
    ("POST", "/api/jobs", {"json": {"net": "mlp", "epochs": 1, "data": "sample"}}),
    ("POST", "/api/jobs", {"json": {"net": "xor", "epochs": 10}}),  # XOR training takes the accelerator too
    ("POST", "/api/xor/study", {"json": {"sizes": [2], "seeds": 2, "epochs": 10}}),
    ("DELETE", "/api/jobs/abc123", {}),
    ("POST", "/api/models/mlp/activate", {}),
    ("POST", "/api/models", {"files": {"file": ("m.keras", b"x")}}),
    ("DELETE", "/api/models/mlp", {}),
]


def test_viewers_get_401_and_wrong_tokens_403_for_every_teacher_action(lan_server):
    for method, path, kwargs in TEACHER_ACTIONS:
        anonymous = requests.request(method, lan_server.url + path, **kwargs)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert "teacher" in anonymous.json()["error"]
        wrong = requests.request(method, lan_server.url + path, headers={"Authorization": "Bearer nope"}, **kwargs)
        assert wrong.status_code == 403, (method, path, wrong.text)
        assert "wrong" in wrong.json()["error"]


def test_the_token_as_bearer_or_cookie_passes_the_role_check(lan_server):
    for headers, cookies in ((TEACHER, None), (None, {"neuronlab_token": TOKEN})):
        response = requests.post(lan_server.url + "/api/models/nosuchmodel/activate", headers=headers, cookies=cookies)
        assert response.status_code == 404, response.text  # past the role check, to the model lookup
        job = requests.delete(lan_server.url + "/api/jobs/nosuchjob", headers=headers, cookies=cookies)
        assert job.status_code == 404, job.text


def test_viewers_may_still_read_and_predict(lan_server):
    assert requests.get(lan_server.url + "/api/models").status_code == 200
    assert requests.get(lan_server.url + "/api/jobs").status_code == 200
    answer = requests.post(lan_server.url + "/api/predict", json={"image": "aGVsbG8="})
    assert answer.status_code == 400  # judged on its content, not refused for the role


# -- Socket.IO ---------------------------------------------------------------------------

def test_socket_role_comes_from_auth_cookie_or_header(lan_server):
    assert whoami(lan_server.url) == "viewer"
    assert whoami(lan_server.url, auth={"token": "wrong"}) == "viewer"
    assert whoami(lan_server.url, auth={"token": TOKEN}) == "teacher"
    assert whoami(lan_server.url, headers={"Cookie": f"neuronlab_token={TOKEN}"}) == "teacher"
    assert whoami(lan_server.url, headers=TEACHER) == "teacher"


def test_socket_io_refuses_a_foreign_origin(lan_server):
    def connect_from(origin):  # long-polling: the only Origin header is ours
        client = socketio.Client(reconnection=False)
        client.connect(lan_server.url, headers={"Origin": origin}, transports=["polling"], wait_timeout=20)
        return client

    with pytest.raises(socketio.exceptions.ConnectionError):
        connect_from("http://evil.example")
    with pytest.raises(socketio.exceptions.ConnectionError):
        connect_from(f"http://127.0.0.1:{lan_server.port + 1}")
    same = connect_from(lan_server.url)
    assert same.connected
    same.disconnect()


# -- trusting localhost (the default) ---------------------------------------------------------

def test_localhost_is_the_teacher_by_default(server):
    assert 'data-role="teacher"' in requests.get(server.url + "/").text
    assert whoami(server.url) == "teacher"
    response = requests.post(server.url + "/api/models/nosuchmodel/activate")
    assert response.status_code == 404  # allowed through to the lookup


def test_a_web_page_on_another_site_cannot_borrow_localhost_trust(server):
    """CSRF: the browser adds the foreign Origin; the write is refused before any view runs."""
    response = requests.post(server.url + "/api/models/nosuchmodel/activate", headers={"Origin": "http://evil.example"})
    assert response.status_code == 403 and "cross-site" in response.json()["error"]
    fetch_metadata = requests.delete(server.url + "/api/models/x", headers={"Sec-Fetch-Site": "cross-site"})
    assert fetch_metadata.status_code == 403


FOREIGN_REFERERS = ["http://evil.example/page", "https://127.0.0.1.evil.example/", "http://user@evil.example:80/",
                    "http://[::1", "ftp://127.0.0.1/", "about:blank", "nonsense"]


def whoami_without_origin(url, headers):
    """websocket-client sends an Origin (this server's) unless told not to: browsers always send one."""
    client = socketio.Client(reconnection=False, websocket_extra_options={"suppress_origin": True})
    client.connect(url, transports=["websocket"], wait_timeout=20, headers=headers)
    try:
        return client.call("whoami", {}, timeout=10)["role"]
    finally:
        client.disconnect()


@pytest.mark.parametrize("referer", FOREIGN_REFERERS)
def test_no_origin_and_a_foreign_referer_is_not_the_teacher(server, referer):
    """Older browsers, and some requests, send a Referer but no Origin: it says where the request comes from."""
    headers = {"Referer": referer}
    assert 'data-role="viewer"' in requests.get(server.url + "/", headers=headers).text
    assert whoami_without_origin(server.url, headers) == "viewer"
    response = requests.post(server.url + "/api/models/nosuchmodel/activate", headers=headers)
    assert response.status_code == 403 and "cross-site" in response.json()["error"]


def test_no_origin_and_this_apps_own_referer_is_still_the_teacher(server):
    for referer in (server.url + "/train", server.url.upper().replace("HTTP", "http") + "/xor?x=1"):
        headers = {"Referer": referer}
        assert 'data-role="teacher"' in requests.get(server.url + "/", headers=headers).text
        assert whoami_without_origin(server.url, headers) == "teacher"
        response = requests.post(server.url + "/api/models/nosuchmodel/activate", headers=headers)
        assert response.status_code == 404  # allowed through to the lookup


def test_dns_rebinding_gets_no_localhost_trust(server):
    """A page on evil.example resolved to 127.0.0.1 sends Host: evil.example."""
    response = requests.post(server.url + "/api/models/nosuchmodel/activate", headers={"Host": "evil.example"})
    assert response.status_code == 401


# -- sharing ---------------------------------------------------------------------------------------

def test_share_lines_print_viewer_links_teacher_links_and_a_qr_of_the_viewer_link():
    from webapp.config import Settings
    from webapp.web.sharing import share_lines, terminal_qr

    settings = Settings(token="s3cret", trust_localhost=False)
    lines = share_lines(settings, "http://localhost:5000/", ["http://10.0.0.5:5000/", "http://192.168.1.9:5000/"])
    text = "\n".join(lines)
    assert "  http://10.0.0.5:5000/\n" in text and "  http://192.168.1.9:5000/\n" in text
    assert "http://10.0.0.5:5000/?token=s3cret" in text and "http://localhost:5000/?token=s3cret" in text
    qr = terminal_qr("http://10.0.0.5:5000/")
    assert "\n".join(qr) in text  # the QR code of the first viewer link...
    assert "\n".join(terminal_qr("http://10.0.0.5:5000/?token=s3cret")) not in text  # ...never of a teacher link
    assert len(qr) > 10


def test_the_share_page_shows_the_viewer_link_and_its_qr_code(lan_server):
    info = requests.get(lan_server.url + "/api/share").json()
    assert info["viewer_link"] == lan_server.url + "/" and TOKEN not in str(info)
    page = requests.get(lan_server.url + "/share").text
    assert info["viewer_link"] in page and "/share.svg" in page
    svg = requests.get(lan_server.url + "/share.svg")
    assert svg.headers["Content-Type"].startswith("image/svg+xml") and b"<svg" in svg.content


def test_the_server_log_prints_the_teacher_link(lan_server):
    log = lan_server.log.read_text()
    assert f"http://localhost:{lan_server.port}/?token={TOKEN}" in log


# -- what viewers and the teacher see, in Chromium --------------------------------------------------

def test_viewers_see_teacher_controls_disabled_with_a_note(lan_server, page):
    from playwright.sync_api import expect

    page.goto(lan_server.url + "/train")
    expect(page.locator("#start")).to_have_count(0)  # a viewer's form has no Start at all...
    expect(page.locator("#epochs")).to_be_disabled()  # ...and its fields are read-only
    page.click(".train-settings summary")  # folded away, with the note saying why
    expect(page.locator("#viewer-note")).to_be_visible()
    page.goto(lan_server.url + "/xor")
    expect(page.locator("#xor-train")).to_be_disabled()
    expect(page.locator("#xor-study-run")).to_be_disabled()
    expect(page.locator("#xor-study-note")).to_be_visible()
    page.goto(lan_server.url + "/share")
    expect(page.locator("#model-upload-button")).to_be_disabled()
    expect(page.locator("#models-note")).to_be_visible()
    expect(page.locator("#viewer-link")).to_have_text(lan_server.url + "/")


def test_the_teacher_link_enables_the_controls_and_uploads_a_model(lan_server, page, tmp_path):
    from playwright.sync_api import expect

    from digit_models import make_model_files

    files = make_model_files(tmp_path)
    page.goto(f"{lan_server.url}/share?token={TOKEN}")
    assert page.url == lan_server.url + "/share"  # the token left the address bar
    assert page.locator("body").get_attribute("data-role") == "teacher"
    page.set_input_files("#model-file", str(files["mlp_h5"]))
    page.click("#model-upload-button")
    # the name it gets, from the file; a first upload may wait for an inference worker to load TensorFlow
    expect(page.locator("#models-message")).to_contain_text("Added “mlp_digits_28x28.h5”", timeout=60_000)
    expect(page.locator('#model-list li[data-model="mlp_digits_28x28"]')).to_be_visible()  # via the `models` event
    page.goto(lan_server.url + "/train")
    expect(page.locator("#viewer-note")).to_be_hidden()
