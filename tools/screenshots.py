"""Screenshots of every page, on a laptop (as the teacher) and on a phone (as a student), for the README.

    python -m tools.screenshots                        # starts its own server on the bundled sample
    python -m tools.screenshots --url http://HOST:5000 --token TOKEN   # a running server (the teacher's token)

Writes docs/screenshots/<page>-laptop.png and <page>-phone.png, and look-inside-*.png (the Draw page's "Look inside"
view open on the drawn digit). Uses Debian's Chromium through Playwright, as the
tests do. On its own server it first trains a small CNN on the sample so that /train has something to show.
"""
import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 393, "height": 851}
PAGES = {"draw": "/", "data": "/data", "train": "/train", "xor": "/xor", "share": "/share"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home, token):
    """`python -m webapp serve` on loopback with no localhost trust, so the phone is a viewer."""
    port = free_port()
    env = {**os.environ, "NEURONLAB_HOME": str(home), "NEURONLAB_TOKEN": token, "NEURONLAB_MNIST": "sample",
           "NEURONLAB_TRUST_LOCALHOST": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "webapp", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if requests.get(url + "/healthz", timeout=1).ok:
                return proc, url
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start")


def train_a_little(url, token):
    """A short CNN job on the sample; returns its id once it has finished."""
    headers = {"Authorization": f"Bearer {token}"}
    job = requests.post(url + "/api/jobs", headers=headers, timeout=30,
                        json={"net": "cnn", "epochs": 3, "data": "sample"}).json()["id"]
    while requests.get(f"{url}/api/jobs/{job}?after=999999", timeout=30).json()["state"] not in (
            "succeeded", "failed", "cancelled"):
        time.sleep(1)
    return job


def draw_digit(page, digit=3, seed=11):
    from bench.strokes import strokes

    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 280
    for line in strokes(digit, np.random.default_rng(seed)):
        page.mouse.move(box["x"] + line[0][0] * scale, box["y"] + line[0][1] * scale)
        page.mouse.down()
        for x, y in line[1:]:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.mouse.up()
    page.wait_for_function("document.querySelector('#digit').textContent !== '?'", timeout=30000)


def shoot(browser, url, token, device, out):
    phone = device == "phone"
    context = browser.new_context(viewport=PHONE if phone else LAPTOP, is_mobile=phone, has_touch=phone)
    page = context.new_page()
    if not phone:  # the teacher on the laptop; the student on the phone is a viewer
        page.goto(f"{url}/?token={token}")
    for name, path in PAGES.items():
        page.goto(url + path)
        page.wait_for_load_state("networkidle")
        if name == "draw":
            draw_digit(page)
        page.wait_for_timeout(800)  # charts and pickers settle
        target = out / f"{name}-{device}.png"
        page.screenshot(path=str(target))
        print(f"wrote {target.relative_to(ROOT)}")
        if name == "draw":
            look_inside(page, out / f"look-inside-{device}.png")
    context.close()


def look_inside(page, target):
    """The Draw page's "Look inside" open on the digit drawn, scrolled to its first layers."""
    page.click("#look-inside > summary")
    page.wait_for_function("document.querySelector('#look-inside').dataset.state === 'shown'", timeout=30000)
    page.wait_for_timeout(800)  # the grids reflow on the next frame
    page.locator("#look-inside").evaluate("(el) => el.scrollIntoView()")
    page.screenshot(path=str(target))
    print(f"wrote {target.relative_to(ROOT)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--token", help="the teacher token of that server")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    proc = None
    with tempfile.TemporaryDirectory() as home:
        url, token = args.url, args.token
        if url is None:
            token = secrets.token_urlsafe(12)
            proc, url = start_server(home, token)
        try:
            if proc is not None:
                train_a_little(url, token)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
                for device in ("laptop", "phone"):
                    shoot(browser, url.rstrip("/"), token, device, args.out)
                browser.close()
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(30)


if __name__ == "__main__":
    main()
