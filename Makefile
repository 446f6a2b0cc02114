# Two entry points: `make demo` and `make test`. Everything lives in .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-test lint clean chromium

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test]"

demo: install
	$(BIN)/voxzarr demo

test: install-test chromium
	$(BIN)/python -m pytest -q -rs -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

# The browser tests (tests/viz/test_view.py) drive a headless Chromium. As root on a machine with
# apt-get and no Chromium, install it quietly; this step never fails, and without a browser
# those tests skip and say why.
chromium:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; \
	then \
	  echo "installing chromium (apt-get) for the browser tests"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; } \
	    >/dev/null 2>&1 || echo "could not install chromium: the browser tests will skip"; \
	fi; true

lint: install-test
	$(BIN)/ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) build dist demo-output
