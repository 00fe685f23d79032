# Two commands do all the set-up:
#   make run    create .venv, install the app, start it on http://localhost:5000
#   make test   create .venv, install the app and test tools (and Chromium, redis-server), run the whole suite
#   make screenshots   regenerate docs/screenshots/ (the README's pictures)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test screenshots setup setup-dev chromium redis-server

run: setup
	$(PY) -m webapp

# Test modules run in parallel, one per core (at most 4): most of a test's time is a server or a browser
# waiting, and a module keeps its servers to itself (--dist loadfile). PYTEST_ARGS= runs them one at a time.
PYTEST_ARGS ?= --numprocesses auto --maxprocesses 4 --dist loadfile --durations 25

test: setup-dev chromium redis-server
	$(PY) -m pytest $(PYTEST_ARGS)

# The README's pictures of every page, laptop and phone, from a server of its own (see tools/screenshots.py).
screenshots: setup-dev chromium
	$(PY) -m tools.screenshots $(SCREENSHOT_ARGS)

setup: $(VENV)/.app-installed
setup-dev: $(VENV)/.dev-installed

$(VENV)/.app-installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.app-installed requirements-dev.txt requirements-tensorboard.txt requirements-redis.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Browser tests use Debian's Chromium (Playwright cannot download its own here).
chromium:
	@test -x /usr/bin/chromium || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The distributed mode's tests start Debian's redis-server on a port of their own (never a system service).
redis-server:
	@command -v redis-server >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }
