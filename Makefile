# The two commands of the README: `make run` and `make test`. Everything else is a step they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test lint bench install install-test clean browser vendor

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Runtime only: exactly what `pip install -e .` gives an operator.
$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Runtime plus what the tests need.
$(VENV)/.installed-test: setup.cfg pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/ozgflow init
	$(BIN)/ozgflow up --host $(HOST) --port $(PORT)

lint: install-test
	$(BIN)/ruff check engine web connectors ozgflow tests bench

test: lint browser
	$(BIN)/pytest

bench: install-test
	$(BIN)/python -m bench $(if $(BENCH),--scenario $(BENCH))

# Debian's chromium for the browser tests (Playwright drives it; no browser download). Idempotent.
browser:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

# bpmn-js for the case page's diagram, from the npm registry, served by the app itself (no CDN).
# The dist files are committed under web/static/vendor/bpmn-js; this target refreshes them.
# axe-core for the browser tests' accessibility check (tests/vendor/axe-core; not served by the app).
BPMN_JS ?= 18.31.1
AXE_CORE ?= 4.14.1
vendor:
	rm -rf build/npm && mkdir -p build/npm
	cd build/npm && npm pack --silent bpmn-js@$(BPMN_JS) && tar xzf bpmn-js-$(BPMN_JS).tgz
	cp build/npm/package/dist/bpmn-navigated-viewer.production.min.js build/npm/package/dist/assets/bpmn-js.css \
	   build/npm/package/dist/assets/diagram-js.css build/npm/package/LICENSE web/static/vendor/bpmn-js/
	echo "bpmn-js $(BPMN_JS) (npm registry), dist files unchanged; refresh with 'make vendor'." \
	   > web/static/vendor/bpmn-js/VERSION
	cd build/npm && npm pack --silent axe-core@$(AXE_CORE) && mkdir axe && tar xzf axe-core-$(AXE_CORE).tgz -C axe
	mkdir -p tests/vendor/axe-core
	cp build/npm/axe/package/axe.min.js build/npm/axe/package/LICENSE tests/vendor/axe-core/
	echo "axe-core $(AXE_CORE) (npm registry), axe.min.js unchanged; refresh with 'make vendor'." \
	   > tests/vendor/axe-core/VERSION

clean:
	rm -rf $(VENV) var build *.egg-info
