# The two set-up commands of the README: `make demo` and `make test`. Both install the pinned
# dependencies (requirements.lock) into .venv first, once.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test install lint

# pip's own chatter goes to a log, shown only if the install fails.
$(STAMP): requirements.lock pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	@echo "installing the pinned dependencies into $(VENV) (log: $(VENV)/install.log)"
	@( $(VENV)/bin/python -m pip install --upgrade pip \
	  && $(VENV)/bin/python -m pip install -r requirements.lock \
	  && $(VENV)/bin/python -m pip install --no-deps -e . ) > $(VENV)/install.log 2>&1 \
	  || { cat $(VENV)/install.log; exit 1; }
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hub demo

test: $(STAMP)
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
