# Handoff: make run | make test | make demo | make bench
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test demo bench migrate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) bot.py migrate
	$(PY) bot.py doctor --before-serve
	$(PY) bot.py serve

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest

demo: $(STAMP)
	$(PY) bot.py demo

bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || (apt-get install -y -qq wrk >/dev/null 2>&1 || true)
	$(PY) -m bench.run

migrate: $(STAMP)
	$(PY) bot.py migrate

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis demo-output
