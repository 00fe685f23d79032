"""Every page, at every size, as a student and as the teacher: no sideways scrolling, a clean console,
and every control reachable with Tab, labelled, and showing its focus."""
import pytest

from conftest import LAPTOP, SIZES

PAGES = ["/", "/data", "/train", "/xor", "/share"]

# The page's controls that a keyboard user must be able to reach: visible and enabled.
CONTROLS_JS = """() => [...document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')]
  .filter((el) => !el.disabled && el.tabIndex >= 0 && !el.closest('[hidden], [inert], dialog:not([open])')
    && (el.getClientRects().length > 0 || el.matches('input[type=file]'))
    && getComputedStyle(el).visibility !== 'hidden'
    && !(el.closest('details:not([open])') && !el.matches('summary')))
  .map((el, i) => { el.dataset.controlIndex = i; return i; })"""

# A control's accessible name, roughly as a screen reader finds it.
NAME_JS = """(el) => (el.getAttribute('aria-label') || '').trim()
  || (el.getAttribute('aria-labelledby') || '').split(/\\s+/).map((id) => document.getElementById(id))
       .filter(Boolean).map((e) => e.textContent).join(' ').trim()
  || (el.labels && [...el.labels].map((l) => l.textContent).join(' ').trim())
  || (['BUTTON', 'A', 'SUMMARY'].includes(el.tagName) ? el.textContent.trim() : '')
  || (el.getAttribute('title') || '').trim()"""


def size_id(size):
    return f"{size[0]}x{size[1]}"


def watch_console(page):
    """Errors the console shows, and requests that failed or got 4xx/5xx."""
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}")
            if "socket.io" not in r.url else None)  # a socket closed by context.close() is not the page's fault
    page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
    return problems


@pytest.mark.parametrize("size", SIZES, ids=size_id)
@pytest.mark.parametrize("role", ["viewer", "teacher"])
def test_no_page_is_wider_than_the_screen(classroom, open_page, size, role):
    page = open_page(classroom.url + "/", size=size, token=classroom.token if role == "teacher" else None)
    widths = {}
    for path in PAGES:
        page.goto(classroom.url + path)
        page.wait_for_load_state("networkidle")
        widths[path] = page.evaluate("document.documentElement.scrollWidth")
    print(f"{role} {size_id(size)}: " + ", ".join(f"{p} {w} px" for p, w in widths.items()))
    assert all(width <= size[0] for width in widths.values()), widths


@pytest.mark.parametrize("path", PAGES)
def test_pages_log_no_error_and_ask_only_for_what_exists(classroom, open_page, path):
    for token in (None, classroom.token):
        page = open_page(classroom.url + "/healthz", token=token)  # a page with nothing to load or abort
        problems = watch_console(page)
        page.goto(classroom.url + path)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(500)
        assert problems == [], problems


def test_the_favicon_is_served(classroom):
    import requests

    response = requests.get(classroom.url + "/favicon.ico", timeout=30)
    assert response.ok and response.headers["Content-Type"].startswith("image/")


@pytest.mark.parametrize("path", PAGES)
def test_every_control_is_reached_with_tab_is_labelled_and_shows_focus(classroom, open_page, path):
    page = open_page(classroom.url + path, size=LAPTOP, token=classroom.token)
    page.wait_for_load_state("networkidle")
    controls = set(page.evaluate(CONTROLS_JS))
    assert controls, "no controls found"
    unnamed = page.eval_on_selector_all("[data-control-index]", f"els => els.filter((el) => !({NAME_JS})(el))"
                                        ".map((el) => el.outerHTML.slice(0, 120))")
    assert unnamed == [], unnamed

    reached, unfocused = set(), []
    page.locator("body").focus()
    for _ in range(len(controls) * 2 + 20):
        page.keyboard.press("Tab")
        info = page.evaluate("""() => { const el = document.activeElement;
            // a visually hidden file input shows its focus on the label around it
            const shown = el.matches('input[type=file]') && el.closest('label') || el;
            const style = getComputedStyle(shown);
            return {index: el.dataset.controlIndex, html: el.outerHTML.slice(0, 100),
                    shows: el.matches(':focus-visible') && (style.outlineStyle !== 'none' || style.boxShadow !== 'none')}; }""")
        if info["index"] is not None:
            reached.add(int(info["index"]))
            if not info["shows"]:
                unfocused.append(info["html"])
        if reached == controls:
            break
    missing = page.eval_on_selector_all("[data-control-index]", "els => els.filter((el) => !%s.includes("
                                        "Number(el.dataset.controlIndex))).map((el) => el.outerHTML.slice(0, 120))"
                                        % sorted(reached))
    assert missing == [], missing
    assert unfocused == [], unfocused
